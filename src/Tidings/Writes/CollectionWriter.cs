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

    public Task<WriteOutcome> CreateAsync(CollectionTarget target, JsonObject body, WriteContext context, CancellationToken cancellationToken)
    {
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

        return CommitCreateAsync(target, id, fields, context, cancellationToken);
    }

    private async Task<WriteOutcome> CommitCreateAsync(CollectionTarget target, string id, JsonObject fields, WriteContext context,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var record = Compose(id, 1, fields, now, now);
        var outcome = await store.WriteAsync(writer =>
        {
            if (writer.Get(target.Path, id) is { } existing)
            {
                return new WriteOutcome(WriteStatus.AlreadyExists, existing);
            }

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
            var record = Compose(id, current.Version + 1, fields, createdAt, time.GetUtcNow());
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

    private static StoredRecord Compose(string id, long version, JsonObject fields, DateTimeOffset createdAt, DateTimeOffset updatedAt)
    {
        var record = WithId(id, fields);
        record["version"] = version;
        record["createdAt"] = createdAt;
        record["updatedAt"] = updatedAt;
        return new StoredRecord(id, version, record.ToJsonString());
    }

    private static WriteOutcome Invalid(Dictionary<string, List<string>> errors) =>
        new(WriteStatus.Invalid, Errors: errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));
}
