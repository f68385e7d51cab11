using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Bayeux.Transports;
using Tidings.Changes;
using Tidings.Collections;
using Tidings.Storage;
using Tidings.Writes;

namespace Tidings.Http;

/// <summary>
/// The REST face of each collection, as the README's contract (docs/design.md) gives it: list (with seq and epoch),
/// catch-up (<c>?since=&amp;epoch=</c>, or 410), get, create (idempotent on a client id), replace and patch
/// (<c>If-Match</c>), delete. Errors are RFC 9457 problem+json with per-field messages.
/// </summary>
internal sealed class CollectionEndpoints(CollectionDefinition collection, ITidingsStore store, CollectionWriter writer, TidingsOptions options,
    Identity.OriginPolicy origins)
{
    public static void Map(IEndpointRouteBuilder endpoints, CollectionDefinition collection)
    {
        var services = endpoints.ServiceProvider;
        var handler = new CollectionEndpoints(collection, services.GetRequiredService<ITidingsStore>(),
            services.GetRequiredService<CollectionWriter>(), services.GetRequiredService<TidingsOptions>(),
            services.GetRequiredService<Identity.OriginPolicy>());
        var template = collection.Route.Template;
        var group = endpoints.MapGroup(template).RequireRateLimiting(TidingsServiceCollectionExtensions.RateLimitPolicy)
            .ExcludeFromDescription(); // described from the declarations instead (Http/OpenApiDescription)
        group.MapGet("/", handler.ListAsync);
        group.MapGet("/{id}", handler.GetAsync);
        if (collection.Queue is not null)
        {
            return; // a queue's jobs are written through the job API (Jobs/JobEndpoints)
        }

        group.MapPost("/", handler.CreateAsync);
        group.MapPut("/{id}", (HttpContext c) => handler.UpdateAsync(c, patch: false));
        group.MapPatch("/{id}", (HttpContext c) => handler.UpdateAsync(c, patch: true));
        group.MapDelete("/{id}", handler.DeleteAsync);
        if (collection.IsSorted)
        {
            group.MapPost("/{id}/move", handler.MoveAsync);
        }
    }

    private async Task ListAsync(HttpContext context)
    {
        if (Target(context) is not { } target)
        {
            await Problems.InvalidPath(context);
            return;
        }

        if (await ListDecisionsAsync(context, target) is not { } decisions)
        {
            await Problems.Refused(context);
            return;
        }

        var query = context.Request.Query;
        if (query.ContainsKey("since"))
        {
            await ChangesAsync(context, target, decisions, query["since"].ToString(), query["epoch"].ToString());
            return;
        }

        // One more than the limit tells whether the list is whole; a partial one says "truncated": true.
        var (items, position, epoch) = await store.ReadAsync(r => (r.List(target.Path, options.MaxListItems + 1), r.GetPosition(target.Path), r.Epoch),
            context.RequestAborted);
        var truncated = items.Count > options.MaxListItems;
        var visible = Visibility.Records(target, context.User, decisions, truncated ? [.. items.Take(options.MaxListItems)] : items);
        await WriteJsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartArray("items");
            foreach (var item in visible)
            {
                w.WriteRawValue(item.Json, skipInputValidation: true);
            }

            w.WriteEndArray();
            w.WriteNumber("seq", position.Seq);
            w.WriteString("epoch", epoch);
            if (truncated)
            {
                w.WriteBoolean("truncated", true);
            }

            if (collection.IsSorted)
            {
                w.WriteBoolean("sorted", true); // items in the collection's order; clients sort by "position"
            }
        });
    }

    private async Task ChangesAsync(HttpContext context, CollectionTarget target, PolicyDecisions decisions, string sinceText, string epoch)
    {
        if (!long.TryParse(sinceText, out var since) || since < 0)
        {
            await Problems.Write(context, StatusCodes.Status400BadRequest, "Invalid since", "'since' must be a non-negative integer.");
            return;
        }

        var (changes, position, currentEpoch, gone) = await store.ReadAsync(r =>
        {
            var position = r.GetPosition(target.Path);
            var gone = r.Epoch != epoch || !position.CanReplayFrom(since) || position.Seq - since > options.MaxReplay;
            return (gone ? [] : r.ChangesSince(target.Path, since, position.Seq, options.MaxReplay), position, r.Epoch, gone);
        }, context.RequestAborted);
        if (gone)
        {
            await Problems.Write(context, StatusCodes.Status410Gone, "Changes no longer available",
                "The change log does not reach back to 'since' for this epoch; reload the collection.",
                new Dictionary<string, object?> { ["seq"] = position.Seq, ["epoch"] = currentEpoch });
            return;
        }

        await WriteJsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartArray("changes");
            foreach (var change in changes)
            {
                // The same view a subscriber gets: the event, a removal, or a skip that keeps seq contiguous.
                if (Visibility.ChangeEvent(target, context.User, decisions, change) is { } visible)
                {
                    w.WriteRawValue(visible, skipInputValidation: true);
                }
            }

            w.WriteEndArray();
            w.WriteNumber("seq", position.Seq);
            w.WriteString("epoch", currentEpoch);
        });
    }

    private async Task GetAsync(HttpContext context)
    {
        if (Target(context) is not { } target || RecordId(context) is not { } id)
        {
            await Problems.InvalidPath(context);
            return;
        }

        var record = await store.ReadAsync(r => r.Get(target.Path, id), context.RequestAborted);
        if (record is null || await ListDecisionsAsync(context, target) is not { } decisions
            || Visibility.Records(target, context.User, decisions, [record]).Count == 0)
        {
            await Problems.NotFound(context);
            return;
        }

        await WriteRecordAsync(context, StatusCodes.Status200OK, record);
    }

    /// <summary>
    /// The List rule for this request, its policies (if any) evaluated through the app's <see cref="IAuthorizationService"/>:
    /// the decisions the synchronous record filter then uses, or null when the caller may not list the partition.
    /// </summary>
    private async Task<PolicyDecisions?> ListDecisionsAsync(HttpContext context, CollectionTarget target)
    {
        var list = collection.Access.List;
        var asked = new AccessContext(context.User, target.RouteValues) { Path = target.Path, Operation = TidingsOperations.List };
        var decisions = list.UsesPolicies
            ? await list.DecideAsync(asked, context.RequestServices.GetService<IAuthorizationService>())
            : PolicyDecisions.None;
        return list.Allows(asked.With(decisions)) ? decisions : null;
    }

    /// <summary>Cookie-authenticated writes must come from this site (see <see cref="Identity.OriginPolicy"/>).</summary>
    private Task<bool> RefuseCrossSiteAsync(HttpContext context) => RequestChecks.RefuseCrossSiteAsync(context, origins);

    private async Task CreateAsync(HttpContext context)
    {
        if (await RefuseCrossSiteAsync(context))
        {
            return;
        }

        if (Target(context) is not { } target)
        {
            await Problems.InvalidPath(context);
            return;
        }

        if (await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        // A sorted collection's create may name its place in the query: ?before=id, ?after=id or ?to=start|end.
        Placement? placement = null;
        var query = context.Request.Query;
        if (query.ContainsKey("before") || query.ContainsKey("after") || query.ContainsKey("to"))
        {
            if (!Placement.TryParse(Param("before"), Param("after"), Param("to"), null, out var parsed, out var error))
            {
                await Problems.Validation(context, new Dictionary<string, string[]> { ["position"] = [error] });
                return;
            }

            placement = parsed;
        }

        string? Param(string name) => query.TryGetValue(name, out var value) ? value.ToString() : null;

        var outcome = await writer.CreateAsync(target, body, new WriteContext(context.User), context.RequestAborted, placement);
        if (outcome.Status == WriteStatus.Created)
        {
            context.Response.Headers.Location = target.Path + "/" + outcome.Record!.Id;
        }

        await AnswerAsync(context, outcome);
    }

    private async Task UpdateAsync(HttpContext context, bool patch)
    {
        if (await BeginRecordWriteAsync(context) is not { } write || await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        var outcome = await writer.UpdateAsync(write.Target, write.Id, body, write.ExpectedVersion, patch, new WriteContext(context.User),
            context.RequestAborted);
        await AnswerAsync(context, outcome);
    }

    /// <summary><c>POST P/{id}/move {"before": id} | {"after": id} | {"to": "start" | "end"}</c>: 200 with the moved record.</summary>
    private async Task MoveAsync(HttpContext context)
    {
        if (await BeginRecordWriteAsync(context) is not { } write || await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        var errors = new Dictionary<string, string[]>();
        foreach (var (name, _) in body)
        {
            if (name is not ("before" or "after" or "to"))
            {
                errors[name] = ["A move names only \"before\", \"after\" or \"to\"."];
            }
        }

        if (!Placement.TryParse(Text(body["before"]), Text(body["after"]), Text(body["to"]), null, out var placement, out var error))
        {
            errors["position"] = [error];
        }

        if (errors.Count > 0)
        {
            await Problems.Validation(context, errors);
            return;
        }

        await AnswerAsync(context, await writer.MoveAsync(write.Target, write.Id, placement, write.ExpectedVersion, new WriteContext(context.User),
            context.RequestAborted));
    }

    /// <summary>A JSON string's text; anything else (a number, an object) as its JSON, so it is refused as an id.</summary>
    internal static string? Text(JsonNode? node) =>
        node is null ? null : node is JsonValue v && v.TryGetValue<string>(out var s) ? s : node.ToJsonString();

    private async Task DeleteAsync(HttpContext context)
    {
        if (await BeginRecordWriteAsync(context) is not { } write)
        {
            return;
        }

        await AnswerAsync(context, await writer.DeleteAsync(write.Target, write.Id, write.ExpectedVersion, new WriteContext(context.User),
            context.RequestAborted));
    }

    /// <summary>The checks every write to one record shares: same-site, a valid path and id, a readable If-Match.</summary>
    private async Task<RecordWrite?> BeginRecordWriteAsync(HttpContext context)
    {
        if (await RefuseCrossSiteAsync(context))
        {
            return null;
        }

        if (Target(context) is not { } target || RecordId(context) is not { } id)
        {
            await Problems.InvalidPath(context);
            return null;
        }

        if (!TryReadIfMatch(context, out var expected))
        {
            await Problems.Write(context, StatusCodes.Status400BadRequest, "Invalid If-Match", "If-Match must be a quoted record version, e.g. \"3\".");
            return null;
        }

        return new RecordWrite(target, id, expected);
    }

    private sealed record RecordWrite(CollectionTarget Target, string Id, long? ExpectedVersion);

    private static Task AnswerAsync(HttpContext context, WriteOutcome outcome) => outcome.Status switch
    {
        WriteStatus.Created => WriteRecordAsync(context, StatusCodes.Status201Created, outcome.Record!),
        WriteStatus.AlreadyExists or WriteStatus.Updated => WriteRecordAsync(context, StatusCodes.Status200OK, outcome.Record!),
        WriteStatus.Deleted => NoContent(context),
        WriteStatus.NotFound => Problems.NotFound(context),
        WriteStatus.Forbidden => Problems.Refused(context),
        WriteStatus.VersionMismatch => Problems.Write(context, StatusCodes.Status412PreconditionFailed, "Version mismatch",
            $"The record is at version {outcome.Record!.Version}; reload it and try again."),
        WriteStatus.Conflict => Problems.Write(context, StatusCodes.Status409Conflict, "Conflict",
            "The record kept changing while this write was checked; try again."),
        _ => Problems.Validation(context, outcome.Errors!),
    };

    private static Task NoContent(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    private CollectionTarget? Target(HttpContext context)
    {
        var values = context.Request.RouteValues;
        return collection.Route.TryBuildPath(name => values[name]?.ToString(), out var path)
            && collection.Route.TryMatch(path, out var routeValues)
            ? new CollectionTarget(collection, path, routeValues)
            : null;
    }

    private static string? RecordId(HttpContext context) => CollectionWriter.NormalizeId(context.Request.RouteValues["id"]?.ToString());

    /// <summary>
    /// Reads <c>If-Match</c>: absent or <c>*</c>, or exactly one strong ETag as this API sends it — a version in plain
    /// decimal digits, <c>"3"</c>. Strong comparison is byte for byte (RFC 9110 8.8.3.2), so anything that would only
    /// parse to the same number (<c>" 3"</c>, <c>"+3"</c>, <c>"03"</c>) is not that ETag; it is refused as not one of ours.
    /// </summary>
    private static bool TryReadIfMatch(HttpContext context, out long? expected)
    {
        expected = null;
        var header = context.Request.Headers.IfMatch.ToString();
        if (header.Length == 0 || header == "*")
        {
            return true;
        }

        var tag = header.AsSpan();
        if (tag.Length < 3 || tag[0] != '"' || tag[^1] != '"')
        {
            return false;
        }

        var digits = tag[1..^1];
        if ((digits.Length > 1 && digits[0] == '0') || digits.ContainsAnyExceptInRange('0', '9')
            || !long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
        {
            return false;
        }

        expected = version;
        return true;
    }

    private Task<JsonObject?> ReadBodyAsync(HttpContext context) => RequestChecks.ReadObjectAsync(context, options.MaxBodyBytes);

    private static Task WriteRecordAsync(HttpContext context, int status, StoredRecord record)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.ETag = $"\"{record.Version}\"";
        return context.Response.WriteAsync(record.Json, Encoding.UTF8, context.RequestAborted);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }
}
