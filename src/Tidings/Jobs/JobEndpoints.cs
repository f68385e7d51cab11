using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Bayeux.Transports;
using Tidings.Http;
using Tidings.Identity;

namespace Tidings.Jobs;

/// <summary>
/// The REST face of queues (the jobs collection's GETs and catch-up are the ordinary collection endpoints):
/// <list type="bullet">
/// <item><c>POST /api/queues/{queue}/jobs</c> enqueue → 201 (200 for a key already queued or running)</item>
/// <item><c>POST …/jobs/{id}/cancel</c>, <c>POST …/jobs/{id}/retry</c></item>
/// <item>external workers: <c>POST /api/queues/{queue}/claim {"max", "leaseSeconds"}</c> → <c>{"jobs": [...]}</c> each with a
/// <c>lease</c>; <c>POST …/jobs/{id}/heartbeat {"lease", "progress"?}</c>, <c>…/finish {"lease", "result"}</c>,
/// <c>…/fail {"lease", "error", "retry"?}</c>; a stale or foreign lease → 409</item>
/// </list>
/// </summary>
internal sealed class JobEndpoints(JobService jobs, TidingsOptions options, OriginPolicy origins)
{
    private const int MaxClaim = 100;
    private static readonly TimeSpan MaxLease = TimeSpan.FromHours(1);

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var handler = new JobEndpoints(endpoints.ServiceProvider.GetRequiredService<JobService>(),
            endpoints.ServiceProvider.GetRequiredService<TidingsOptions>(), endpoints.ServiceProvider.GetRequiredService<OriginPolicy>());
        var group = endpoints.MapGroup("/api/queues/{queue}").RequireRateLimiting(TidingsServiceCollectionExtensions.RateLimitPolicy)
            .ExcludeFromDescription(); // described from the declarations instead (Http/OpenApiDescription)
        group.MapPost("/jobs", handler.EnqueueAsync);
        group.MapPost("/claim", handler.ClaimAsync);
        group.MapPost("/jobs/{id}/cancel", (HttpContext c, string queue, string id) => handler.ByUserAsync(c, queue, id, retry: false));
        group.MapPost("/jobs/{id}/retry", (HttpContext c, string queue, string id) => handler.ByUserAsync(c, queue, id, retry: true));
        group.MapPost("/jobs/{id}/heartbeat", (HttpContext c, string queue, string id) => handler.ByLeaseAsync(c, queue, id, "heartbeat"));
        group.MapPost("/jobs/{id}/finish", (HttpContext c, string queue, string id) => handler.ByLeaseAsync(c, queue, id, "finish"));
        group.MapPost("/jobs/{id}/fail", (HttpContext c, string queue, string id) => handler.ByLeaseAsync(c, queue, id, "fail"));
    }

    private async Task EnqueueAsync(HttpContext context, string queue)
    {
        if (await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        var outcome = await jobs.EnqueueAsync(queue, body, context.User, trusted: false, context.RequestAborted);
        await AnswerAsync(context, outcome, outcome.Status == JobStatus.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    private async Task ClaimAsync(HttpContext context, string queue)
    {
        if (await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        if (!TryNumber(body["max"], 1, 1, MaxClaim, out var max) || !TryNumber(body["leaseSeconds"], 30, 1, (int)MaxLease.TotalSeconds, out var seconds))
        {
            await Problems.Validation(context, new Dictionary<string, string[]>
            {
                ["max"] = [$"'max' must be an integer from 1 to {MaxClaim}."],
                ["leaseSeconds"] = [$"'leaseSeconds' must be an integer from 1 to {(int)MaxLease.TotalSeconds}."],
            });
            return;
        }

        var (status, claimed) = await jobs.ClaimAsync(queue, max, TimeSpan.FromSeconds(seconds), context.User, trusted: false, context.RequestAborted);
        if (status != JobStatus.Updated)
        {
            await AnswerAsync(context, new JobOutcome(status), StatusCodes.Status200OK);
            return;
        }

        var array = new JsonArray();
        foreach (var job in claimed)
        {
            var item = job.Job.DeepClone().AsObject();
            item["lease"] = job.Lease;
            array.Add(item);
        }

        await Results.Json(new JsonObject { ["jobs"] = array }).ExecuteAsync(context);
    }

    private async Task ByUserAsync(HttpContext context, string queue, string id, bool retry)
    {
        if (await RefuseCrossSiteAsync(context))
        {
            return;
        }

        var outcome = retry
            ? await jobs.RetryAsync(queue, id, context.User, trusted: false, context.RequestAborted)
            : await jobs.CancelAsync(queue, id, context.User, trusted: false, context.RequestAborted);
        await AnswerAsync(context, outcome, StatusCodes.Status200OK);
    }

    private async Task ByLeaseAsync(HttpContext context, string queue, string id, string action)
    {
        if (await ReadBodyAsync(context) is not { } body)
        {
            return;
        }

        if (body["lease"] is not JsonValue leaseValue || !leaseValue.TryGetValue<string>(out var lease) || lease.Length is 0 or > 100)
        {
            await Problems.Validation(context, new Dictionary<string, string[]> { ["lease"] = ["'lease' must be the token the claim gave."] });
            return;
        }

        JobOutcome outcome;
        switch (action)
        {
            case "heartbeat":
                if (!TryNumber(body["leaseSeconds"], 30, 1, (int)MaxLease.TotalSeconds, out var seconds))
                {
                    await Problems.Validation(context, new Dictionary<string, string[]> { ["leaseSeconds"] = ["'leaseSeconds' must be an integer from 1 to 3600."] });
                    return;
                }

                outcome = await jobs.HeartbeatAsync(queue, id, lease, TimeSpan.FromSeconds(seconds), body["progress"], body.ContainsKey("progress"),
                    context.RequestAborted);
                break;
            case "finish":
                outcome = await jobs.FinishAsync(queue, id, lease, body["result"], context.RequestAborted);
                break;
            default:
                var retry = body["retry"] is not JsonValue retryValue || !retryValue.TryGetValue<bool>(out var r) || r;
                outcome = await jobs.FailAsync(queue, id, lease, body["error"], retry, context.RequestAborted);
                break;
        }

        await AnswerAsync(context, outcome, StatusCodes.Status200OK);
    }

    /// <summary>The request's JSON object, or null after answering 400/403/413/415.</summary>
    private async Task<JsonObject?> ReadBodyAsync(HttpContext context)
    {
        if (await RefuseCrossSiteAsync(context))
        {
            return null;
        }

        // Job calls are always JSON: a body without a content type is refused rather than guessed.
        if (context.Request.ContentType is null)
        {
            await Problems.Write(context, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send application/json.");
            return null;
        }

        return await RequestChecks.ReadObjectAsync(context, options.MaxBodyBytes);
    }

    private Task<bool> RefuseCrossSiteAsync(HttpContext context) => RequestChecks.RefuseCrossSiteAsync(context, origins);

    private static Task AnswerAsync(HttpContext context, JobOutcome outcome, int success) => outcome.Status switch
    {
        JobStatus.Created or JobStatus.Existing or JobStatus.Updated => Results.Json(outcome.Job, statusCode: success).ExecuteAsync(context),
        JobStatus.NotFound => Problems.NotFound(context),
        JobStatus.Forbidden => Problems.Refused(context),
        JobStatus.StaleLease => Problems.Write(context, StatusCodes.Status409Conflict, "Stale lease",
            "This lease does not hold the job: another worker has it, the lease ran out, or the job was cancelled."),
        JobStatus.WrongState => Problems.Write(context, StatusCodes.Status409Conflict, "Not in this state",
            $"The job is {outcome.Job?["state"]?.GetValue<string>()}; that cannot be done now."),
        _ => Problems.Validation(context, outcome.Errors!),
    };

    private static bool TryNumber(JsonNode? node, int fallback, int min, int max, out int value)
    {
        value = fallback;
        return node is null || (node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue(out value) && value >= min && value <= max);
    }
}
