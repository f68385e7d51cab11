using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Access;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Writes;

/// <summary>What a write needs to know about its caller.</summary>
public sealed record WriteContext(System.Security.Claims.ClaimsPrincipal? User);

/// <summary>
/// Creates, replaces, patches and deletes records. REST and socket writes both come here, so the same
/// rules, validation and events apply whichever way a change arrives.
/// </summary>
/// <remarks>
/// Rules run outside the store's transaction: schema, stamps and access are checked against the record as read,
/// then the transaction only does what must be atomic — checks that the record is still at the version the
/// rules saw, puts it and appends its change. A record that changed in between is checked again (a few times),
/// or answered 412 when the caller named the version it expected: never overwritten silently.
/// </remarks>
public sealed class CollectionWriter(ITidingsStore store, TimeProvider time)
{
    /// <summary>How often a write is re-checked when its record keeps changing under it, before it answers Conflict.</summary>
    private const int Attempts = 5;

    /// <param name="placement">Where the record goes in a sorted collection (null: at the end); must be null for an unsorted one.</param>
    public Task<WriteOutcome> CreateAsync(CollectionTarget target, JsonObject body, WriteContext context, CancellationToken cancellationToken,
        Placement? placement = null)
    {
        if (placement is not null && !target.Collection.IsSorted)
        {
            return Task.FromResult(WriteOutcome.Invalid("position", "This collection is not sorted: a create cannot name a place."));
        }

        string id;
        if (body["id"] is { } suppliedId)
        {
            // Client-generated UUIDs make optimistic creates idempotent: a retry or echo creates nothing new.
            if (suppliedId.GetValueKind() != JsonValueKind.String || !Guid.TryParse(suppliedId.GetValue<string>(), out var parsed))
            {
                return Task.FromResult(WriteOutcome.Invalid("id", "'id' must be a UUID string."));
            }

            id = parsed.ToString("D");
        }
        else
        {
            id = Guid.CreateVersion7(time.GetUtcNow()).ToString("D");
        }

        var stampContext = new StampContext(context.User, target.RouteValues, null);
        var errors = new Dictionary<string, List<string>>();
        var fields = RecordRules.Apply(target.Collection, body, null, RecordRules.Mode.Create, stampContext, errors);
        var access = target.Collection.Access;
        if (!access.Create.Allows(new AccessContext(context.User, target.RouteValues, WithId(id, fields))))
        {
            return Task.FromResult(new WriteOutcome(WriteStatus.Forbidden));
        }

        if (errors.Count > 0)
        {
            return Task.FromResult(Invalid(errors));
        }

        return CommitCreateAsync(target, id, fields, context, target.Collection.IsSorted ? placement ?? Placement.End : null, cancellationToken);
    }

    private async Task<WriteOutcome> CommitCreateAsync(CollectionTarget target, string id, JsonObject fields, WriteContext context,
        Placement? placement, CancellationToken cancellationToken)
    {
        if (placement is { Anchor: { } anchor } && await AnchorProblemAsync(target, anchor, context, cancellationToken) is { } problem)
        {
            return problem;
        }

        var now = time.GetUtcNow();
        var outcome = await store.WriteAsync(writer =>
        {
            if (writer.Get(target.Path, id) is { } existing)
            {
                return new WriteOutcome(WriteStatus.AlreadyExists, existing);
            }

            string? position = null;
            if (placement is { } place)
            {
                writer.LockOrder(target.Path);
                if (Place(writer, target.Path, place, id) is not ({ } key, _))
                {
                    return AnchorGone();
                }

                position = key;
            }

            var record = Compose(id, 1, fields, now, now, position);
            writer.Put(target.Path, record);
            var change = writer.Append(target.Path, ChangeMethods.Post, record.Json);
            return new WriteOutcome(WriteStatus.Created, record, Seq: change.Seq);
        }, cancellationToken);

        // The repeat of an optimistic create; the caller may see it only if it may read it.
        return outcome.Status == WriteStatus.AlreadyExists && !CanRead(target, context, Parse(outcome.Record!))
            ? new WriteOutcome(WriteStatus.Forbidden)
            : outcome;
    }

    /// <summary>PUT (<paramref name="patch"/> false: writable fields replaced) or PATCH (merge patch).</summary>
    public async Task<WriteOutcome> UpdateAsync(CollectionTarget target, string id, JsonObject body, long? expectedVersion, bool patch,
        WriteContext context, CancellationToken cancellationToken)
    {
        if (body["id"] is { } bodyId && !(bodyId.GetValueKind() == JsonValueKind.String && Guid.TryParse(bodyId.GetValue<string>(), out var g) && g.ToString("D") == id))
        {
            return WriteOutcome.Invalid("id", "'id' in the body must match the record's id.");
        }

        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            if (await store.ReadAsync(r => r.Get(target.Path, id), cancellationToken) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = Parse(current);
            var access = target.Collection.Access;
            if (!CanRead(target, context, existing))
            {
                return new WriteOutcome(WriteStatus.NotFound); // what one may not read, one cannot find
            }

            if (expectedVersion is { } expected && expected != current.Version)
            {
                return new WriteOutcome(WriteStatus.VersionMismatch, current);
            }

            var errors = new Dictionary<string, List<string>>();
            var stampContext = new StampContext(context.User, target.RouteValues, existing);
            var fields = RecordRules.Apply(target.Collection, body, existing, patch ? RecordRules.Mode.Patch : RecordRules.Mode.Replace, stampContext, errors);
            if (!access.Update.Allows(new AccessContext(context.User, target.RouteValues, WithId(id, fields), existing)))
            {
                return new WriteOutcome(WriteStatus.Forbidden);
            }

            if (errors.Count > 0)
            {
                return Invalid(errors);
            }

            var createdAt = existing["createdAt"]?.GetValue<DateTimeOffset>() ?? time.GetUtcNow();
            var record = Compose(id, current.Version + 1, fields, createdAt, time.GetUtcNow(), current.Position);
            var outcome = await store.WriteAsync(writer =>
            {
                if (Changed(writer, target.Path, current) is { } changed)
                {
                    return changed;
                }

                writer.Put(target.Path, record);
                var change = writer.Append(target.Path, ChangeMethods.Put, record.Json, current.Json);
                return new WriteOutcome(WriteStatus.Updated, record, Seq: change.Seq);
            }, cancellationToken);
            if (Settled(outcome, expectedVersion) is { } settled)
            {
                return settled;
            }
        }

        return new WriteOutcome(WriteStatus.Conflict);
    }

    public async Task<WriteOutcome> DeleteAsync(CollectionTarget target, string id, long? expectedVersion, WriteContext context,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            if (await store.ReadAsync(r => r.Get(target.Path, id), cancellationToken) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = Parse(current);
            if (!CanRead(target, context, existing))
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            if (expectedVersion is { } expected && expected != current.Version)
            {
                return new WriteOutcome(WriteStatus.VersionMismatch, current);
            }

            if (!target.Collection.Access.Delete.Allows(new AccessContext(context.User, target.RouteValues, null, existing)))
            {
                return new WriteOutcome(WriteStatus.Forbidden);
            }

            var outcome = await store.WriteAsync(writer =>
            {
                if (Changed(writer, target.Path, current) is { } changed)
                {
                    return changed;
                }

                writer.Delete(target.Path, current.Id);
                var change = writer.Append(target.Path, ChangeMethods.Delete, current.Json);
                return new WriteOutcome(WriteStatus.Deleted, current, Seq: change.Seq);
            }, cancellationToken);
            if (Settled(outcome, expectedVersion) is { } settled)
            {
                return settled;
            }
        }

        return new WriteOutcome(WriteStatus.Conflict);
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

        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            if (await store.ReadAsync(r => r.Get(target.Path, id), cancellationToken) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = Parse(current);
            if (!CanRead(target, context, existing))
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            if (expectedVersion is { } expected && expected != current.Version)
            {
                return new WriteOutcome(WriteStatus.VersionMismatch, current);
            }

            if (!target.Collection.Access.Update.Allows(new AccessContext(context.User, target.RouteValues, existing, existing)))
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
        return record is not null && CanRead(target, context, Parse(record)) ? null : AnchorGone();
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

    private static bool CanRead(CollectionTarget target, WriteContext context, JsonObject record) =>
        target.Collection.Access.CanRead(new AccessContext(context.User, target.RouteValues, record));

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
}
