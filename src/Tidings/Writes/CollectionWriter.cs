using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Tidings.Access;
using Tidings.Collections;
using Tidings.Observability;
using Tidings.Storage;

namespace Tidings.Writes;

/// <summary>What a write needs to know about its caller.</summary>
/// <param name="User">The caller, whose access rules apply and whom stamps see.</param>
/// <param name="Trusted">Server code acting for itself: access rules are skipped (schema, writable fields and stamps still apply).</param>
public sealed record WriteContext(System.Security.Claims.ClaimsPrincipal? User, bool Trusted = false)
{
    /// <summary>Server code acting for itself (a hosted service, a job that already checked its requester).</summary>
    public static readonly WriteContext Server = new(null, Trusted: true);
}

/// <summary>One write of a transaction: a create, an update (replace or merge patch) or a delete on a concrete path.</summary>
public abstract record WriteRequest(string Path)
{
    /// <param name="placement">Where the record goes in a sorted collection (null: at the end).</param>
    public static WriteRequest Create(string path, JsonObject body, Placement? placement = null) => new CreateRequest(path, body, placement);

    public static WriteRequest Update(string path, string id, JsonObject body, bool patch = true, long? expectedVersion = null) =>
        new UpdateRequest(path, id, body, patch, expectedVersion);

    public static WriteRequest Delete(string path, string id, long? expectedVersion = null) => new DeleteRequest(path, id, expectedVersion);

    internal sealed record CreateRequest(string Path, JsonObject Body, Placement? Placement) : WriteRequest(Path);

    internal sealed record UpdateRequest(string Path, string Id, JsonObject Body, bool Patch, long? ExpectedVersion) : WriteRequest(Path);

    internal sealed record DeleteRequest(string Path, string Id, long? ExpectedVersion) : WriteRequest(Path);
}

/// <summary>The result of a transaction: every write's outcome when it committed, or the one that refused it all.</summary>
/// <param name="Committed">True when every write was applied, atomically.</param>
/// <param name="Outcomes">Each write's outcome when committed; otherwise only the refusing write's, at its index (the rest null).</param>
public sealed record TransactionOutcome(bool Committed, IReadOnlyList<WriteOutcome?> Outcomes);

/// <summary>
/// Creates, replaces, patches and deletes records. REST, socket writes and server code all come here, so the same
/// rules, validation and events apply whichever way a change arrives.
/// </summary>
/// <remarks>
/// Two phases. First, outside the store's transaction, each write's schema, stamps and access rules are checked
/// against the record as read (a plan). Then one transaction does only what must be atomic: every record is still at
/// the version its plan saw, put or delete, append the change. A record that changed in between is planned again (a
/// few times, then 409), or answered 412 when the caller named the version it expected: never overwritten silently.
/// Several writes in one transaction commit together or not at all.
/// </remarks>
/// <param name="authorization">Evaluates access rules that defer to the app's authorization policies (may do I/O: awaited before the transaction).</param>
public sealed class CollectionWriter(ITidingsStore store, TimeProvider time, CollectionRegistry registry, IAuthorizationService? authorization = null)
{
    /// <summary>How often a write is planned again when its record keeps changing under it, before it answers Conflict.</summary>
    private const int Attempts = 5;

    private readonly ChangeTraces _traces = ChangeTraces.For(store);

    /// <param name="placement">Where the record goes in a sorted collection (null: at the end); must be null for an unsorted one.</param>
    public async Task<WriteOutcome> CreateAsync(CollectionTarget target, JsonObject body, WriteContext context, CancellationToken cancellationToken,
        Placement? placement = null)
    {
        var outcome = await SingleAsync(target, WriteRequest.Create(target.Path, body, placement), context, cancellationToken);

        // The repeat of an optimistic create; the caller may see it only if it may read it.
        return outcome.Status == WriteStatus.AlreadyExists && !context.Trusted && !await CanReadAsync(target, context, Parse(outcome.Record!))
            ? new WriteOutcome(WriteStatus.Forbidden)
            : outcome;
    }

    /// <summary>PUT (<paramref name="patch"/> false: writable fields replaced) or PATCH (merge patch).</summary>
    public Task<WriteOutcome> UpdateAsync(CollectionTarget target, string id, JsonObject body, long? expectedVersion, bool patch,
        WriteContext context, CancellationToken cancellationToken) =>
        SingleAsync(target, WriteRequest.Update(target.Path, id, body, patch, expectedVersion), context, cancellationToken);

    public Task<WriteOutcome> DeleteAsync(CollectionTarget target, string id, long? expectedVersion, WriteContext context,
        CancellationToken cancellationToken) =>
        SingleAsync(target, WriteRequest.Delete(target.Path, id, expectedVersion), context, cancellationToken);

    /// <summary>
    /// Several writes, possibly on several collections, in one transaction: each checked like its REST call, then all
    /// applied together (each its own change and event, in order) or none. For server code: a job moving a task from one
    /// list to another, an endpoint that writes a record and its audit entry.
    /// </summary>
    public async Task<TransactionOutcome> TransactAsync(IReadOnlyList<WriteRequest> writes, WriteContext context, CancellationToken cancellationToken)
    {
        var targets = new CollectionTarget[writes.Count];
        for (var i = 0; i < writes.Count; i++)
        {
            if (registry.Resolve(writes[i].Path) is not { } target)
            {
                return Refused(writes.Count, i, new WriteOutcome(WriteStatus.NotFound));
            }

            targets[i] = target;
        }

        return await RunAsync(targets, writes, context, cancellationToken);
    }

    private async Task<WriteOutcome> SingleAsync(CollectionTarget target, WriteRequest request, WriteContext context, CancellationToken cancellationToken)
    {
        var result = await RunAsync([target], [request], context, cancellationToken);
        return result.Outcomes[0]!;
    }

    private async Task<TransactionOutcome> RunAsync(CollectionTarget[] targets, IReadOnlyList<WriteRequest> requests, WriteContext context,
        CancellationToken cancellationToken)
    {
        using var trace = StartWriteTrace(requests[0].Path, MethodOf(requests[0]), requests.Count);
        var result = await RunAttemptsAsync(targets, requests, context, cancellationToken);
        trace?.SetTag(TidingsTracing.StatusTag, result.Committed ? "committed" : result.Outcomes.First(o => o is not null)!.Status.ToString());
        return result;
    }

    private static Activity? StartWriteTrace(string path, string method, int writes)
    {
        var activity = TidingsTracing.Source.StartActivity(TidingsTracing.Write);
        activity?.SetTag(TidingsTracing.PathTag, path).SetTag(TidingsTracing.MethodTag, method).SetTag(TidingsTracing.WritesTag, writes);
        return activity;
    }

    private static string MethodOf(WriteRequest request) => request switch
    {
        WriteRequest.CreateRequest => ChangeMethods.Post,
        WriteRequest.UpdateRequest { Patch: true } => "PATCH",
        WriteRequest.UpdateRequest => ChangeMethods.Put,
        _ => ChangeMethods.Delete,
    };

    /// <summary>Inside the transaction, before the commit (so before the feed can see it): where each change's publish continues the trace.</summary>
    private void RememberTrace(Activity? commit, string path, long? seq)
    {
        if (commit is not null && seq is { } committed)
        {
            _traces.Remember(path, committed, commit.Context);
        }
    }

    private async Task<TransactionOutcome> RunAttemptsAsync(CollectionTarget[] targets, IReadOnlyList<WriteRequest> requests, WriteContext context,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var plans = new Plan[requests.Count];
            for (var i = 0; i < requests.Count; i++)
            {
                plans[i] = await PlanAsync(targets[i], requests[i], context, cancellationToken);
                if (plans[i] is Refusal refusal)
                {
                    return Refused(requests.Count, i, refusal.Outcome);
                }
            }

            using var commit = TidingsTracing.Source.StartActivity(TidingsTracing.Commit);
            try
            {
                var outcomes = await store.WriteAsync(writer =>
                {
                    var applied = plans.Select((plan, i) => Apply(writer, plan, i)).ToArray();
                    for (var i = 0; i < applied.Length; i++)
                    {
                        RememberTrace(commit, requests[i].Path, applied[i].Seq);
                    }

                    return applied;
                }, cancellationToken);
                return new TransactionOutcome(true, outcomes);
            }
            catch (RefusedInTransactionException refused)
            {
                return Refused(requests.Count, refused.Index, refused.Outcome);
            }
            catch (StaleRecordException stale)
            {
                // Someone else changed a record between the plan and the commit; nothing of this transaction is stored.
                if (stale.Current is null)
                {
                    return Refused(requests.Count, stale.Index, new WriteOutcome(WriteStatus.NotFound));
                }

                if (requests[stale.Index] is WriteRequest.UpdateRequest { ExpectedVersion: not null } or WriteRequest.DeleteRequest { ExpectedVersion: not null })
                {
                    return Refused(requests.Count, stale.Index, new WriteOutcome(WriteStatus.VersionMismatch, stale.Current));
                }
            }
        }

        return Refused(requests.Count, 0, new WriteOutcome(WriteStatus.Conflict));
    }

    /// <summary>Outside the transaction: the write's rules against the record as read now.</summary>
    private async Task<Plan> PlanAsync(CollectionTarget target, WriteRequest request, WriteContext context, CancellationToken cancellationToken)
    {
        if (target.Collection.Queue is not null)
        {
            return new Refusal(new WriteOutcome(WriteStatus.Forbidden)); // a queue's jobs change only through the job API
        }

        switch (request)
        {
            case WriteRequest.CreateRequest create:
                {
                    if (create.Placement is not null && !target.Collection.IsSorted)
                    {
                        return new Refusal(WriteOutcome.Invalid("position", "This collection is not sorted: a create cannot name a place."));
                    }

                    if (create.Placement is { Anchor: { } anchor } && await AnchorProblemAsync(target, anchor, context, cancellationToken) is { } problem)
                    {
                        return new Refusal(problem);
                    }

                    return await PlanCreateAsync(target, create.Body, target.Collection.IsSorted ? create.Placement ?? Placement.End : null, context);
                }
            case WriteRequest.UpdateRequest update:
                {
                    if (update.Body["id"] is { } bodyId && !(bodyId.GetValueKind() == JsonValueKind.String
                        && Guid.TryParse(bodyId.GetValue<string>(), out var g) && g.ToString("D") == update.Id))
                    {
                        return new Refusal(WriteOutcome.Invalid("id", "'id' in the body must match the record's id."));
                    }

                    var current = await store.ReadAsync(r => r.Get(target.Path, update.Id), cancellationToken);
                    return await PlanUpdateAsync(target, update, current, context);
                }

            case WriteRequest.DeleteRequest delete:
                {
                    var current = await store.ReadAsync(r => r.Get(target.Path, delete.Id), cancellationToken);
                    return await PlanDeleteAsync(target, delete, current, context);
                }

            default:
                throw new ArgumentException($"Unknown write {request.GetType().Name}.", nameof(request));
        }
    }

    private async Task<Plan> PlanCreateAsync(CollectionTarget target, JsonObject body, Placement? placement, WriteContext context)
    {
        string id;
        if (body["id"] is { } suppliedId)
        {
            // Client-generated UUIDs make optimistic creates idempotent: a retry or echo creates nothing new.
            if (suppliedId.GetValueKind() != JsonValueKind.String || !Guid.TryParse(suppliedId.GetValue<string>(), out var parsed))
            {
                return new Refusal(WriteOutcome.Invalid("id", "'id' must be a UUID string."));
            }

            id = parsed.ToString("D");
        }
        else
        {
            id = Guid.CreateVersion7(time.GetUtcNow()).ToString("D");
        }

        var errors = new Dictionary<string, List<string>>();
        var fields = RecordRules.Apply(target.Collection, body, null, RecordRules.Mode.Create, new StampContext(context.User, target.RouteValues, null), errors);
        if (!context.Trusted && !await AllowsAsync(target.Collection.Access.Create, target, context, TidingsOperations.Create, WithId(id, fields)))
        {
            return new Refusal(new WriteOutcome(WriteStatus.Forbidden));
        }

        if (errors.Count > 0)
        {
            return new Refusal(Invalid(errors));
        }

        var now = time.GetUtcNow();
        return new Put(target.Path, id, null, Compose(id, 1, fields, now, now), ChangeMethods.Post, placement);
    }

    private async Task<Plan> PlanUpdateAsync(CollectionTarget target, WriteRequest.UpdateRequest update, StoredRecord? current, WriteContext context)
    {
        if (current is null)
        {
            return new Refusal(new WriteOutcome(WriteStatus.NotFound));
        }

        var existing = Parse(current);
        var access = target.Collection.Access;
        if (!context.Trusted && !await CanReadAsync(target, context, existing))
        {
            return new Refusal(new WriteOutcome(WriteStatus.NotFound)); // what one may not read, one cannot find
        }

        if (update.ExpectedVersion is { } expected && expected != current.Version)
        {
            return new Refusal(new WriteOutcome(WriteStatus.VersionMismatch, current));
        }

        var errors = new Dictionary<string, List<string>>();
        var fields = RecordRules.Apply(target.Collection, update.Body, existing, update.Patch ? RecordRules.Mode.Patch : RecordRules.Mode.Replace,
            new StampContext(context.User, target.RouteValues, existing), errors);
        if (!context.Trusted && !await AllowsAsync(access.Update, target, context, TidingsOperations.Update, WithId(update.Id, fields), existing))
        {
            return new Refusal(new WriteOutcome(WriteStatus.Forbidden));
        }

        if (errors.Count > 0)
        {
            return new Refusal(Invalid(errors));
        }

        var createdAt = existing["createdAt"]?.GetValue<DateTimeOffset>() ?? time.GetUtcNow();
        return new Put(target.Path, update.Id, current,
            Compose(update.Id, current.Version + 1, fields, createdAt, time.GetUtcNow(), current.Position), ChangeMethods.Put);
    }

    private async Task<Plan> PlanDeleteAsync(CollectionTarget target, WriteRequest.DeleteRequest delete, StoredRecord? current, WriteContext context)
    {
        if (current is null)
        {
            return new Refusal(new WriteOutcome(WriteStatus.NotFound));
        }

        var existing = Parse(current);
        if (!context.Trusted && !await CanReadAsync(target, context, existing))
        {
            return new Refusal(new WriteOutcome(WriteStatus.NotFound));
        }

        if (delete.ExpectedVersion is { } expected && expected != current.Version)
        {
            return new Refusal(new WriteOutcome(WriteStatus.VersionMismatch, current));
        }

        return !context.Trusted && !await AllowsAsync(target.Collection.Access.Delete, target, context, TidingsOperations.Delete, null, existing)
            ? new Refusal(new WriteOutcome(WriteStatus.Forbidden))
            : new Removal(target.Path, current);
    }

    /// <summary>Inside the transaction: the record is still the one planned against (else throw, undoing it all), then write.</summary>
    private static WriteOutcome Apply(IStoreWriter writer, Plan plan, int index)
    {
        switch (plan)
        {
            case Put { CheckedAgainst: null } create:
                if (writer.Get(create.Path, create.Id) is { } existing)
                {
                    return new WriteOutcome(WriteStatus.AlreadyExists, existing); // an idempotent repeat: nothing written
                }

                var record = create.Record;
                if (create.Placement is { } place)
                {
                    // Sorted: a key between its new neighbours, taken with the collection's order locked.
                    writer.LockOrder(create.Path);
                    if (Place(writer, create.Path, place, create.Id) is not ({ } key, _))
                    {
                        throw new RefusedInTransactionException(index, AnchorGone());
                    }

                    var json = JsonNode.Parse(record.Json)!.AsObject();
                    json[CollectionDefinition.PositionField] = key;
                    record = new StoredRecord(record.Id, record.Version, json.ToJsonString(), key);
                }

                writer.Put(create.Path, record);
                return new WriteOutcome(WriteStatus.Created, record, Seq: writer.Append(create.Path, create.Method, record.Json).Seq);
            case Put update:
                EnsureUnchanged(writer, update.Path, update.CheckedAgainst!, index);
                writer.Put(update.Path, update.Record);
                var changed = writer.Append(update.Path, update.Method, update.Record.Json, update.CheckedAgainst!.Json);
                return new WriteOutcome(WriteStatus.Updated, update.Record, Seq: changed.Seq);
            case Removal removal:
                EnsureUnchanged(writer, removal.Path, removal.CheckedAgainst, index);
                writer.Delete(removal.Path, removal.CheckedAgainst.Id);
                var deleted = writer.Append(removal.Path, ChangeMethods.Delete, removal.CheckedAgainst.Json);
                return new WriteOutcome(WriteStatus.Deleted, removal.CheckedAgainst, Seq: deleted.Seq);
            default:
                throw new InvalidOperationException("A refused write is never applied.");
        }
    }

    private static void EnsureUnchanged(IStoreWriter writer, string path, StoredRecord checkedAgainst, int index)
    {
        var now = writer.Get(path, checkedAgainst.Id);
        if (now?.Version != checkedAgainst.Version)
        {
            throw new StaleRecordException(index, now);
        }
    }

    /// <summary>
    /// Moves a record of a sorted collection (an update: the Update rule decides, with the record). It gets a new position
    /// key between its new neighbours — no other record changes — and a <c>MOVE</c> change carrying the record as after
    /// the move and the id it now follows.
    /// </summary>
    public async Task<WriteOutcome> MoveAsync(CollectionTarget target, string id, Placement placement, long? expectedVersion, WriteContext context,
        CancellationToken cancellationToken)
    {
        if (!target.Collection.IsSorted)
        {
            return WriteOutcome.Invalid("position", "This collection is not sorted: its records cannot be moved.");
        }

        if (placement.Anchor == id)
        {
            return WriteOutcome.Invalid(placement.Kind == PlacementKind.Before ? "before" : "after", "A record cannot be placed next to itself.");
        }

        using var trace = StartWriteTrace(target.Path, ChangeMethods.Move, 1);
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            if (await store.ReadAsync(r => r.Get(target.Path, id), cancellationToken) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = Parse(current);
            if (!await CanReadAsync(target, context, existing))
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            if (expectedVersion is { } expected && expected != current.Version)
            {
                return new WriteOutcome(WriteStatus.VersionMismatch, current);
            }

            if (!await AllowsAsync(target.Collection.Access.Update, target, context, TidingsOperations.Update, existing, existing))
            {
                return new WriteOutcome(WriteStatus.Forbidden);
            }

            if (placement.Anchor is { } anchor && await AnchorProblemAsync(target, anchor, context, cancellationToken) is { } problem)
            {
                return problem;
            }

            var fields = existing.DeepClone().AsObject();
            foreach (var field in CollectionDefinition.ServerFields.Append(CollectionDefinition.PositionField))
            {
                fields.Remove(field);
            }

            var createdAt = existing["createdAt"]?.GetValue<DateTimeOffset>() ?? time.GetUtcNow();
            var now = time.GetUtcNow();
            using var commit = TidingsTracing.Source.StartActivity(TidingsTracing.Commit);
            var outcome = await store.WriteAsync(writer =>
            {
                writer.LockOrder(target.Path); // first: then the version check below sees any move committed meanwhile
                if (Changed(writer, target.Path, current) is { } changed)
                {
                    return changed;
                }

                if (Place(writer, target.Path, placement, id) is not ({ } key, var follows))
                {
                    return AnchorGone();
                }

                var record = Compose(id, current.Version + 1, fields, createdAt, now, key);
                writer.Put(target.Path, record);
                var change = writer.Append(target.Path, ChangeMethods.Move, record.Json, current.Json, follows);
                RememberTrace(commit, target.Path, change.Seq);
                return new WriteOutcome(WriteStatus.Updated, record, Seq: change.Seq);
            }, cancellationToken);
            if (Settled(outcome, expectedVersion) is { } settled)
            {
                return settled;
            }
        }

        return new WriteOutcome(WriteStatus.Conflict);
    }

    /// <summary>Before the transaction: the anchor of a placement must be a record the caller can read (else 422, saying no more).</summary>
    private async Task<WriteOutcome?> AnchorProblemAsync(CollectionTarget target, string anchor, WriteContext context, CancellationToken cancellationToken)
    {
        var record = await store.ReadAsync(r => r.Get(target.Path, anchor), cancellationToken);
        return record is not null && await CanReadAsync(target, context, Parse(record)) ? null : AnchorGone();
    }

    private static WriteOutcome AnchorGone() =>
        WriteOutcome.Invalid("position", "The record to place it next to does not exist (or has no place in the order).");

    /// <summary>
    /// Inside the transaction (order locked): the key for <paramref name="placement"/> of record <paramref name="id"/>,
    /// between its new neighbours, and the id it then follows; null key when the anchor is gone.
    /// </summary>
    private static (string? Key, string? Follows) Place(IStoreWriter writer, string path, Placement placement, string id)
    {
        switch (placement.Kind)
        {
        case PlacementKind.Start:
            return (PositionKeys.Between(null, writer.NeighborPosition(path, null, after: true, id)?.Position), null);
        case PlacementKind.End:
            var last = writer.NeighborPosition(path, null, after: false, id);
            return (PositionKeys.Between(last?.Position, null), last?.Id);
        default:
            if (writer.Get(path, placement.Anchor!) is not { Position: { } anchor })
            {
                return (null, null);
            }

            if (placement.Kind == PlacementKind.After)
            {
                return (PositionKeys.Between(anchor, writer.NeighborPosition(path, anchor, after: true, id)?.Position), placement.Anchor);
            }

            var before = writer.NeighborPosition(path, anchor, after: false, id);
            return (PositionKeys.Between(before?.Position, anchor), before?.Id);
        }
    }

    /// <summary>Inside the transaction: null when the record is still the one the rules were checked against.</summary>
    private static WriteOutcome? Changed(IStoreWriter writer, string path, StoredRecord checkedAgainst) =>
        writer.Get(path, checkedAgainst.Id) switch
        {
            null => new WriteOutcome(WriteStatus.NotFound),
            { Version: var version } now when version != checkedAgainst.Version => new WriteOutcome(WriteStatus.Conflict, now),
            _ => null,
        };

    /// <summary>The answer to give, or null to check the write again against the record as it is now.</summary>
    private static WriteOutcome? Settled(WriteOutcome outcome, long? expectedVersion) => outcome.Status switch
    {
        // The caller named a version and the record has moved past it: that is theirs to resolve.
        WriteStatus.Conflict when expectedVersion is not null => new WriteOutcome(WriteStatus.VersionMismatch, outcome.Record),
        WriteStatus.Conflict => null,
        _ => outcome,
    };

    /// <summary>Normalizes a record id from a URL or body: a UUID in its canonical form, or null.</summary>
    public static string? NormalizeId(string? id) => Guid.TryParse(id, out var parsed) ? parsed.ToString("D") : null;

    private static TransactionOutcome Refused(int count, int index, WriteOutcome outcome)
    {
        var outcomes = new WriteOutcome?[count];
        outcomes[index] = outcome;
        return new TransactionOutcome(false, outcomes);
    }

    private ValueTask<bool> CanReadAsync(CollectionTarget target, WriteContext context, JsonObject record) =>
        target.Collection.Access.CanReadAsync(new AccessContext(context.User, target.RouteValues, record) { Path = target.Path, Operation = TidingsOperations.Read },
            authorization);

    /// <summary>A write rule, its policies (if any) awaited here, before the transaction: the store's writer never waits on one.</summary>
    private ValueTask<bool> AllowsAsync(AccessRule rule, CollectionTarget target, WriteContext context, string operation, JsonObject? record,
        JsonObject? existing = null) =>
        rule.AllowsAsync(new AccessContext(context.User, target.RouteValues, record, existing) { Path = target.Path, Operation = operation }, authorization);

    private static JsonObject Parse(StoredRecord record) => JsonNode.Parse(record.Json)!.AsObject();

    private static JsonObject WithId(string id, JsonObject fields)
    {
        var record = new JsonObject { ["id"] = id };
        foreach (var (name, value) in fields)
        {
            record[name] = value?.DeepClone();
        }

        return record;
    }

    private static StoredRecord Compose(string id, long version, JsonObject fields, DateTimeOffset createdAt, DateTimeOffset updatedAt,
        string? position = null)
    {
        var record = WithId(id, fields);
        record["version"] = version;
        record["createdAt"] = createdAt;
        record["updatedAt"] = updatedAt;
        if (position is not null)
        {
            record[CollectionDefinition.PositionField] = position;
        }

        return new StoredRecord(id, version, record.ToJsonString(), position);
    }

    private static WriteOutcome Invalid(Dictionary<string, List<string>> errors) =>
        new(WriteStatus.Invalid, Errors: errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));

    /// <summary>What one write will do, decided outside the transaction.</summary>
    private abstract record Plan;

    private sealed record Refusal(WriteOutcome Outcome) : Plan;

    /// <summary>A create (<see cref="CheckedAgainst"/> null; <see cref="Placement"/> in a sorted collection) or an update of the
    /// record as it was when planned.</summary>
    private sealed record Put(string Path, string Id, StoredRecord? CheckedAgainst, StoredRecord Record, string Method, Placement? Placement = null) : Plan;

    private sealed record Removal(string Path, StoredRecord CheckedAgainst) : Plan;

    /// <summary>Thrown inside the transaction to undo all of it: write <see cref="Index"/> turned out impossible (a placement's anchor is gone).</summary>
    private sealed class RefusedInTransactionException(int index, WriteOutcome outcome) : Exception("A write was refused inside its transaction.")
    {
        public int Index { get; } = index;
        public WriteOutcome Outcome { get; } = outcome;
    }

    /// <summary>Thrown inside the transaction to undo all of it: write <see cref="Index"/>'s record changed since it was planned.</summary>
    private sealed class StaleRecordException(int index, StoredRecord? current) : Exception("A record changed between its check and its write.")
    {
        public int Index { get; } = index;
        public StoredRecord? Current { get; } = current;
    }
}
