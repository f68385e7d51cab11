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
/// rules, validation and events apply whichever way a change arrives. Each write runs inside one store
/// transaction that also appends its change: the record and its event commit together or not at all.
/// </summary>
public sealed class CollectionWriter(ITidingsStore store, TimeProvider time)
{
    public const string Post = "POST";
    public const string Put = "PUT";
    public const string Delete = "DELETE";

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

        return store.WriteAsync(writer =>
        {
            if (writer.Get(target.Path, id) is { } existing)
            {
                // The repeat of an optimistic create; the caller may see it only if it may read it.
                return access.CanRead(new AccessContext(context.User, target.RouteValues, JsonNode.Parse(existing.Json)!.AsObject()))
                    ? new WriteOutcome(WriteStatus.AlreadyExists, existing)
                    : new WriteOutcome(WriteStatus.Forbidden);
            }

            var now = time.GetUtcNow();
            var record = Compose(id, 1, fields, now, now);
            writer.Put(target.Path, record);
            var change = writer.Append(target.Path, Post, record.Json);
            return new WriteOutcome(WriteStatus.Created, record, Seq: change.Seq);
        }, cancellationToken);
    }

    /// <summary>PUT (<paramref name="patch"/> false: writable fields replaced) or PATCH (merge patch).</summary>
    public Task<WriteOutcome> UpdateAsync(CollectionTarget target, string id, JsonObject body, long? expectedVersion, bool patch,
        WriteContext context, CancellationToken cancellationToken)
    {
        if (body["id"] is { } bodyId && !(bodyId.GetValueKind() == JsonValueKind.String && Guid.TryParse(bodyId.GetValue<string>(), out var g) && g.ToString("D") == id))
        {
            return Task.FromResult(WriteOutcome.Invalid("id", "'id' in the body must match the record's id."));
        }

        return store.WriteAsync(writer =>
        {
            if (writer.Get(target.Path, id) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = JsonNode.Parse(current.Json)!.AsObject();
            var access = target.Collection.Access;
            if (!access.CanRead(new AccessContext(context.User, target.RouteValues, existing)))
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
            writer.Put(target.Path, record);
            var change = writer.Append(target.Path, Put, record.Json, current.Json);
            return new WriteOutcome(WriteStatus.Updated, record, Seq: change.Seq);
        }, cancellationToken);
    }

    public Task<WriteOutcome> DeleteAsync(CollectionTarget target, string id, long? expectedVersion, WriteContext context,
        CancellationToken cancellationToken) =>
        store.WriteAsync(writer =>
        {
            if (writer.Get(target.Path, id) is not { } current)
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            var existing = JsonNode.Parse(current.Json)!.AsObject();
            var access = target.Collection.Access;
            if (!access.CanRead(new AccessContext(context.User, target.RouteValues, existing)))
            {
                return new WriteOutcome(WriteStatus.NotFound);
            }

            if (expectedVersion is { } expected && expected != current.Version)
            {
                return new WriteOutcome(WriteStatus.VersionMismatch, current);
            }

            if (!access.Delete.Allows(new AccessContext(context.User, target.RouteValues, null, existing)))
            {
                return new WriteOutcome(WriteStatus.Forbidden);
            }

            writer.Delete(target.Path, id);
            var change = writer.Append(target.Path, Delete, current.Json);
            return new WriteOutcome(WriteStatus.Deleted, current, Seq: change.Seq);
        }, cancellationToken);

    /// <summary>Normalizes a record id from a URL or body: a UUID in its canonical form, or null.</summary>
    public static string? NormalizeId(string? id) => Guid.TryParse(id, out var parsed) ? parsed.ToString("D") : null;

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
        var record = new JsonObject { ["id"] = id };
        foreach (var (name, value) in fields)
        {
            record[name] = value?.DeepClone();
        }

        record["version"] = version;
        record["createdAt"] = createdAt;
        record["updatedAt"] = updatedAt;
        return new StoredRecord(id, version, record.ToJsonString());
    }

    private static WriteOutcome Invalid(Dictionary<string, List<string>> errors) =>
        new(WriteStatus.Invalid, Errors: errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));
}
