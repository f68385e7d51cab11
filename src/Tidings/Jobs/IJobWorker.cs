using System.Security.Claims;
using System.Text.Json.Nodes;

namespace Tidings.Jobs;

/// <summary>
/// Runs the jobs of a queue in this process (declare it with <c>QueueBuilder.Worker</c>). Resolved in a DI scope
/// per job. Return the result (stored on the job as <c>result</c>); throw to fail the attempt (retried with
/// backoff until <c>maxAttempts</c>, then dead). The token fires when the job is cancelled or the app stops.
/// </summary>
public interface IJobWorker<TPayload>
{
    Task<JsonNode?> RunAsync(JobContext<TPayload> job, CancellationToken cancellationToken);
}

/// <summary>What a worker knows about the job it runs.</summary>
public sealed class JobContext<TPayload>
{
    private readonly Func<JsonNode?, Task> _reportProgress;

    internal JobContext(string queue, string id, TPayload payload, int attempt, string? requestedBy, ClaimsPrincipal requester,
        Func<JsonNode?, Task> reportProgress)
    {
        Queue = queue;
        Id = id;
        Payload = payload;
        Attempt = attempt;
        RequestedBy = requestedBy;
        Requester = requester;
        _reportProgress = reportProgress;
    }

    public string Queue { get; }
    public string Id { get; }
    public TPayload Payload { get; }

    /// <summary>1 on the first run, then 2, 3… (a lease that ran out counts).</summary>
    public int Attempt { get; }

    /// <summary>The name of the user who enqueued the job (null when server code or a signed-out caller did).</summary>
    public string? RequestedBy { get; }

    /// <summary>The requester as a principal (authenticated when <see cref="RequestedBy"/> is set), for access checks.</summary>
    public ClaimsPrincipal Requester { get; }

    /// <summary>Sets the job's <c>progress</c>; subscribers of the queue's jobs see it at once.</summary>
    public Task ReportProgressAsync(JsonNode? progress) => _reportProgress(progress);
}
