using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Writes;

/// <summary>
/// A write through the socket: a publish on a collection channel with data <c>{method: POST|PUT|PATCH|DELETE|MOVE,
/// body: {...}, version?}</c> (a sorted collection's POST and MOVE also take <c>before|after|to</c>, as REST's move), under REST's rules. The publish reply carries the outcome (<c>ext.tidings:
/// {status, record, seq}</c>) or a <c>code:args:message</c> error; the event itself goes out like any other change.
/// </summary>
internal sealed class SocketWrites(CollectionRegistry registry, CollectionWriter writer)
{
    private static readonly JsonDocumentOptions BodyOptions = new() { AllowDuplicateProperties = false };

    public async ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken)
    {
        if (registry.Resolve(call.Channel) is not { } target)
        {
            call.Fail(BayeuxError.ChannelUnknown(call.Channel));
            return;
        }

        var data = call.Data;
        if (data.ValueKind != JsonValueKind.Object
            || !data.TryGetProperty("method", out var methodField) || methodField.ValueKind != JsonValueKind.String
            || !data.TryGetProperty("body", out var bodyField) || bodyField.ValueKind != JsonValueKind.Object)
        {
            call.Fail(BayeuxError.Format(400, "data", "a write is an object with method (POST PUT PATCH DELETE or MOVE) and body"));
            return;
        }

        // A version that is not an integer is refused: ignoring it would turn a conditional write into an unconditional one.
        // (null means no version, as absent does.)
        long? expectedVersion = null;
        if (data.TryGetProperty("version", out var v) && v.ValueKind != JsonValueKind.Null)
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var version))
            {
                call.Fail(BayeuxError.Format(400, "version", "version must be an integer (the record's version)"));
                return;
            }

            expectedVersion = version;
        }

        JsonObject body;
        try
        {
            body = JsonNode.Parse(bodyField.GetRawText(), documentOptions: BodyOptions)!.AsObject();
        }
        catch (JsonException)
        {
            // As over REST: "the last key wins" would store something the client did not mean.
            call.Fail(BayeuxError.Format(400, "body", "the body has a duplicate key"));
            return;
        }

        var context = new WriteContext(call.Session.User);
        var method = methodField.GetString();
        string? Id() => CollectionWriter.NormalizeId(body["id"] is JsonValue idValue && idValue.TryGetValue<string>(out var s) ? s : null);

        string? Field(string name) => data.TryGetProperty(name, out var f)
            ? f.ValueKind == JsonValueKind.String ? f.GetString() : f.GetRawText()
            : null;
        var placed = Placement.TryParse(Field("before"), Field("after"), Field("to"), Placement.End, out var placement, out var placementError);
        var named = data.TryGetProperty("before", out _) || data.TryGetProperty("after", out _) || data.TryGetProperty("to", out _);

        WriteOutcome outcome;
        try
        {
            switch (method)
            {
            case "POST":
                outcome = !placed ? WriteOutcome.Invalid("position", placementError)
                    : await writer.CreateAsync(target, body, context, cancellationToken, named ? placement : null);
                break;
            case "MOVE":
                outcome = !placed || !named ? WriteOutcome.Invalid("position", named ? placementError : "A move names \"before\", \"after\" or \"to\".")
                    : Id() is { } moveId ? await writer.MoveAsync(target, moveId, placement, expectedVersion, context, cancellationToken)
                    : WriteOutcome.Invalid("id", "'id' must be the UUID of the record to move.");
                break;
            case "PUT" or "PATCH":
                outcome = Id() is { } updateId
                    ? await writer.UpdateAsync(target, updateId, body, expectedVersion, method == "PATCH", context, cancellationToken)
                    : WriteOutcome.Invalid("id", "'id' must be the UUID of the record to change.");
                break;
            case "DELETE":
                outcome = Id() is { } deleteId
                    ? await writer.DeleteAsync(target, deleteId, expectedVersion, context, cancellationToken)
                    : WriteOutcome.Invalid("id", "'id' must be the UUID of the record to delete.");
                break;
            default:
                call.Fail(BayeuxError.Format(400, "method", "method must be POST, PUT, PATCH, DELETE or MOVE"));
                return;
            }
        }
        catch (StoreUnavailableException)
        {
            call.Fail(BayeuxError.Format(503, string.Empty, "the store cannot be reached right now; nothing was changed"));
            return;
        }

        var result = new JsonObject { ["status"] = outcome.Status.ToString() };
        if (outcome.Record is { } record && outcome.Status != WriteStatus.Deleted)
        {
            result["record"] = JsonNode.Parse(record.Json);
        }

        if (outcome.Seq is { } seq)
        {
            result["seq"] = seq;
        }

        call.ReplyExt("tidings", result);
        if (!outcome.Succeeded)
        {
            call.Fail(ToBayeuxError(outcome));
        }
    }

    private static string ToBayeuxError(WriteOutcome outcome) => outcome.Status switch
    {
        WriteStatus.NotFound => BayeuxError.Format(404, "id", "no such record"),
        WriteStatus.Forbidden => BayeuxError.Format(403, string.Empty, "not allowed to make this change"),
        WriteStatus.VersionMismatch => BayeuxError.Format(412, "version", "the record has changed - reload it and try again"),
        WriteStatus.Conflict => BayeuxError.Format(409, "id", "the record kept changing while this write was checked - try again"),
        _ => BayeuxError.Format(422, string.Join(',', outcome.Errors?.Keys ?? []),
            string.Join(" ", outcome.Errors?.Values.SelectMany(m => m) ?? ["invalid record"])),
    };
}
