using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Tidings.Access;
using Tidings.Storage;

namespace Tidings.Jobs;

/// <summary>What became of a job call; REST and in-process workers answer from it alike.</summary>
public enum JobStatus
{
    Created,

    /// <summary>A job with the same key is queued or running: nothing was enqueued, here is that one.</summary>
    Existing,
    Updated,
    NotFound,
    Forbidden,
    Invalid,

    /// <summary>The lease is not (or no longer) the job's: another worker has it, it ran out, or the job was cancelled.</summary>
    StaleLease,

    /// <summary>The job is in a state where this cannot be done (cancel a finished job, re-drive a running one).</summary>
    WrongState,
}

/// <summary>A job call's result: the job record as subscribers see it, and for a claim the lease that works it.</summary>
public sealed record JobOutcome(JobStatus Status, JsonObject? Job = null, IReadOnlyDictionary<string, string[]>? Errors = null)
{
    public bool Succeeded => Status is JobStatus.Created or JobStatus.Existing or JobStatus.Updated;

    internal static JobOutcome Invalid(string field, string message) => new(JobStatus.Invalid, Errors: new Dictionary<string, string[]> { [field] = [message] });
}

/// <summary>
/// A bulk enqueue's result: each job's outcome (<see cref="JobStatus.Created"/> or <see cref="JobStatus.Existing"/>) in
/// request order, or — when one request was refused and so nothing was enqueued — that refusal and its index.
/// </summary>
public sealed record JobBatchOutcome(IReadOnlyList<JobOutcome> Jobs, int RefusedIndex = -1)
{
    /// <summary>The refusal that left the whole batch out, or null when it was enqueued.</summary>
    public JobOutcome? Refusal => RefusedIndex < 0 ? null : Jobs[0];

    internal static JobBatchOutcome Refused(int index, JobOutcome refusal) => new([refusal], index);
}

/// <summary>One finish of <see cref="JobService.FinishManyAsync"/>: the job, the lease that works it, its result.</summary>
public sealed record JobFinish(string Id, string Lease, JsonNode? Result);

/// <summary>A claimed job and the lease token its worker must show to heartbeat, finish or fail it.</summary>
public sealed record ClaimedJob(JsonObject Job, string Lease);

/// <summary>
/// Durable job queues on the app's store. A job is an ordinary record of its queue's jobs collection
/// (<c>/api/queues/{queue}/jobs</c>), so every state change — <c>queued → running → succeeded | failed (→ queued again
/// with a later runAt, or dead) | cancelled</c>, and progress — is an event subscribers see live; beside it the store keeps
/// a job index to claim from. Each call is one store transaction: a job is never claimed twice, never lost.
/// </summary>
/// <param name="authorization">Evaluates queue rules that defer to the app's authorization policies, before each transaction.</param>
public sealed class JobService(ITidingsStore store, QueueRegistry queues, TimeProvider time, IAuthorizationService? authorization = null)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Dead = "dead";
    public const string Cancelled = "cancelled";

    private const int MaxKeyLength = 200;
    private static readonly IReadOnlyDictionary<string, string> NoRoute = new Dictionary<string, string>();

    /// <summary>What a queue rule sees: the caller, the operation and the job or payload; <c>Path</c> is the queue's jobs collection.</summary>
    private static AccessContext QueueContext(QueueDefinition queue, ClaimsPrincipal? user, string operation, JsonObject? record = null,
        PolicyDecisions? decisions = null) =>
        new(user, NoRoute, record) { Path = queue.Path, Operation = operation, Decisions = decisions };

    /// <summary>Raised after a commit that left jobs of a queue queued (enqueue, retry, a requeued failure).</summary>
    public event Action<string>? JobsQueued;

    /// <summary>Raised after a running job was cancelled on this node: its in-process worker's token fires.</summary>
    public event Action<string, string>? JobCancelled;

    /// <summary>
    /// Enqueues a job: <c>{"payload": {...}, "priority"?, "runAt"?, "key"?, "maxAttempts"?}</c>. With a key, while a
    /// job with that key is queued or running, returns it (<see cref="JobStatus.Existing"/>) and enqueues nothing.
    /// <paramref name="user"/> null is server code (trusted); a principal is checked against the queue's Enqueue rule.
    /// </summary>
    public async Task<JobOutcome> EnqueueAsync(string queueName, JsonObject request, ClaimsPrincipal? user, bool trusted, CancellationToken cancellationToken)
    {
        var batch = await EnqueueManyAsync(queueName, [request], user, trusted, cancellationToken);
        return batch.Refusal ?? batch.Jobs[0];
    }

    /// <summary>
    /// Enqueues several jobs in one transaction (one commit instead of one per job): all of them, or — when one request
    /// is refused (unknown queue, invalid, forbidden) — none, with that refusal and its index. Each request is what
    /// <see cref="EnqueueAsync"/> takes, and each gets the outcome it would get there (a key already queued or running,
    /// also earlier in the same batch, answers <see cref="JobStatus.Existing"/>). Every new job is its own event.
    /// </summary>
    public async Task<JobBatchOutcome> EnqueueManyAsync(string queueName, IReadOnlyList<JsonObject> requests, ClaimsPrincipal? user, bool trusted,
        CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return JobBatchOutcome.Refused(0, new JobOutcome(JobStatus.NotFound));
        }

        // Checked and serialized before the transaction: the store's writer only stores.
        var now = time.GetUtcNow();
        var prepared = new NewJob[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            // An Enqueue policy may do I/O: decided here, before the transaction, with the job's payload.
            var decisions = !trusted && queue.Access.Enqueue.UsesPolicies && requests[i]["payload"] is JsonObject payload
                ? await queue.Access.Enqueue.DecideAsync(QueueContext(queue, user, TidingsOperations.Enqueue, payload), authorization)
                : null;
            var (job, refusal) = Prepare(queue, requests[i], user, trusted, now, decisions);
            if (job is null)
            {
                return JobBatchOutcome.Refused(i, refusal!);
            }

            prepared[i] = job;
        }

        var outcomes = await store.WriteAsync(writer =>
        {
            var results = new JobOutcome[prepared.Length];
            for (var i = 0; i < prepared.Length; i++)
            {
                var job = prepared[i];
                if (job.Entry.Key is { } key && writer.Jobs.ActiveByKey(queue.Name, key) is { } active && writer.Get(queue.Path, active.Id) is { } existing)
                {
                    results[i] = new JobOutcome(JobStatus.Existing, Parse(existing.Json));
                    continue;
                }

                writer.Put(queue.Path, new StoredRecord(job.Entry.Id, 1, job.Json));
                writer.Append(queue.Path, ChangeMethods.Post, job.Json);
                writer.Jobs.Put(job.Entry);
                results[i] = new JobOutcome(JobStatus.Created, job.Record);
            }

            return results;
        }, cancellationToken);

        if (Array.Exists(outcomes, o => o.Status == JobStatus.Created))
        {
            JobsQueued?.Invoke(queue.Name);
        }

        return new JobBatchOutcome(outcomes);
    }

    /// <summary>A checked enqueue request: the new job's record, its JSON and its index entry.</summary>
    private sealed record NewJob(JsonObject Record, string Json, JobEntry Entry);

    /// <summary>Checks an enqueue request and builds the job it asks for, or says why not.</summary>
    private (NewJob? Job, JobOutcome? Refusal) Prepare(QueueDefinition queue, JsonObject request, ClaimsPrincipal? user, bool trusted, DateTimeOffset now,
        PolicyDecisions? decisions)
    {
        if (request["payload"] is not JsonObject payload)
        {
            return (null, JobOutcome.Invalid("payload", "'payload' must be a JSON object."));
        }

        foreach (var (name, _) in request)
        {
            if (name is not ("payload" or "priority" or "runAt" or "key" or "maxAttempts"))
            {
                return (null, JobOutcome.Invalid(name, $"'{name}' is not a job field (payload, priority, runAt, key, maxAttempts)."));
            }
        }

        if (!TryInt(request["priority"], 0, -1000, 1000, out var priority))
        {
            return (null, JobOutcome.Invalid("priority", "'priority' must be an integer from -1000 to 1000 (higher runs first)."));
        }

        if (!TryInt(request["maxAttempts"], queue.MaxAttempts, 1, 100, out var maxAttempts))
        {
            return (null, JobOutcome.Invalid("maxAttempts", "'maxAttempts' must be an integer from 1 to 100."));
        }

        var runAt = now;
        if (request["runAt"] is { } runAtNode
            && (runAtNode.GetValueKind() != JsonValueKind.String || !DateTimeOffset.TryParse(runAtNode.GetValue<string>(), out runAt)))
        {
            return (null, JobOutcome.Invalid("runAt", "'runAt' must be an ISO 8601 date and time."));
        }

        string? key = null;
        if (request["key"] is { } keyNode
            && (keyNode.GetValueKind() != JsonValueKind.String || (key = keyNode.GetValue<string>()).Length is 0 or > MaxKeyLength))
        {
            return (null, JobOutcome.Invalid("key", $"'key' must be a string of 1 to {MaxKeyLength} characters."));
        }

        if (!trusted && !queue.Access.Enqueue.Allows(QueueContext(queue, user, TidingsOperations.Enqueue, payload, decisions)))
        {
            return (null, new JobOutcome(JobStatus.Forbidden));
        }

        if (queue.PayloadSchema is { } schema && schema.Validate(payload.ToJsonString()) is { Count: > 0 } errors)
        {
            return (null, new JobOutcome(JobStatus.Invalid, Errors: new Dictionary<string, string[]>
            {
                ["payload"] = [.. errors.Select(e => $"{(string.IsNullOrEmpty(e.Path) ? "payload" : e.Path.TrimStart('#', '/'))}: {e.Kind}")],
            }));
        }

        var requestedBy = user?.Identity?.IsAuthenticated == true ? user.Identity.Name : null;
        var id = Guid.CreateVersion7(now).ToString("D");
        var job = new JsonObject
        {
            ["id"] = id,
            ["payload"] = payload.DeepClone(),
            ["state"] = Queued,
            ["attempts"] = 0,
            ["maxAttempts"] = maxAttempts,
            ["priority"] = priority,
            ["runAt"] = runAt,
            ["progress"] = null,
            ["result"] = null,
            ["error"] = null,
            ["requestedBy"] = requestedBy,
            ["key"] = key,
            ["createdAt"] = now,
            ["updatedAt"] = now,
            ["startedAt"] = null,
            ["finishedAt"] = null,
            ["version"] = 1,
        };
        return (new NewJob(job, job.ToJsonString(), new JobEntry(queue.Name, id, Queued, priority, runAt.ToUnixTimeMilliseconds(), key, null, 0, 0)), null);
    }

    /// <summary>Claims up to <paramref name="max"/> due jobs, highest priority first, each under a new lease.</summary>
    public async Task<(JobStatus Status, IReadOnlyList<ClaimedJob> Jobs)> ClaimAsync(string queueName, int max, TimeSpan lease, ClaimsPrincipal? user,
        bool trusted, CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return (JobStatus.NotFound, []);
        }

        if (!trusted && !await queue.Access.Work.AllowsAsync(QueueContext(queue, user, TidingsOperations.Work), authorization))
        {
            return (JobStatus.Forbidden, []);
        }

        var claimed = await store.WriteAsync(writer =>
        {
            var now = time.GetUtcNow();
            var jobs = new List<ClaimedJob>();
            foreach (var entry in writer.Jobs.Due(queue.Name, now.ToUnixTimeMilliseconds(), max))
            {
                var token = NewLease();
                var job = Change(writer, queue, entry.Id, now, job =>
                {
                    job["state"] = Running;
                    job["attempts"] = (job["attempts"]?.GetValue<int>() ?? 0) + 1;
                    job["startedAt"] = now;
                    job["progress"] = null;
                });
                if (job is null)
                {
                    writer.Jobs.Delete(queue.Name, entry.Id); // an index entry without its record: nothing to run
                    continue;
                }

                writer.Jobs.Put(entry with { State = Running, Lease = token, LeaseUntil = now.Add(lease).ToUnixTimeMilliseconds() });
                jobs.Add(new ClaimedJob(job, token));
            }

            return jobs;
        }, cancellationToken);
        return (JobStatus.Updated, claimed);
    }

    /// <summary>Extends a running job's lease (and sets its progress when given).</summary>
    public Task<JobOutcome> HeartbeatAsync(string queueName, string id, string lease, TimeSpan extension, JsonNode? progress, bool setProgress,
        CancellationToken cancellationToken) =>
        WithLeaseAsync(queueName, id, lease, (writer, queue, entry, now) =>
        {
            writer.Jobs.Put(entry with { LeaseUntil = now.Add(extension).ToUnixTimeMilliseconds() });
            var job = setProgress ? Change(writer, queue, id, now, j => j["progress"] = progress?.DeepClone()) : Get(writer, queue, id);
            return new JobOutcome(JobStatus.Updated, job);
        }, null, cancellationToken);

    /// <summary>Finishes a running job with its result. Repeating a finish of the same lease answers the finished job.</summary>
    public Task<JobOutcome> FinishAsync(string queueName, string id, string lease, JsonNode? result, CancellationToken cancellationToken) =>
        WithLeaseAsync(queueName, id, lease, (writer, queue, entry, now) => Finish(writer, queue, entry, now, result), Succeeded, cancellationToken);

    /// <summary>
    /// Finishes several running jobs of a queue in one transaction (one commit instead of one per job). Each finish is
    /// checked on its own, as <see cref="FinishAsync"/> checks it — a stale lease answers <see cref="JobStatus.StaleLease"/>
    /// for that job and does not hold back the others — and each finished job is its own event.
    /// </summary>
    public async Task<IReadOnlyList<JobOutcome>> FinishManyAsync(string queueName, IReadOnlyList<JobFinish> finishes, CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return [.. finishes.Select(_ => new JobOutcome(JobStatus.NotFound))];
        }

        return await store.WriteAsync(writer =>
        {
            var now = time.GetUtcNow();
            var outcomes = new JobOutcome[finishes.Count];
            for (var i = 0; i < finishes.Count; i++)
            {
                var finish = finishes[i];
                outcomes[i] = UnderLease(writer, queue, finish.Id, finish.Lease, (w, q, entry, _) => Finish(w, q, entry, now, finish.Result), Succeeded);
            }

            return outcomes;
        }, cancellationToken);
    }

    private static JobOutcome Finish(IStoreWriter writer, QueueDefinition queue, JobEntry entry, DateTimeOffset now, JsonNode? result)
    {
        var job = Change(writer, queue, entry.Id, now, j =>
        {
            j["state"] = Succeeded;
            j["result"] = result?.DeepClone();
            j["error"] = null;
            j["finishedAt"] = now;
        });
        writer.Jobs.Put(entry with { State = Succeeded, LeaseUntil = 0, FinishedAt = now.ToUnixTimeMilliseconds() });
        return new JobOutcome(JobStatus.Updated, job);
    }

    /// <summary>Fails a running job's attempt: queued again after a backoff while attempts remain and <paramref name="retry"/>, else dead.</summary>
    public async Task<JobOutcome> FailAsync(string queueName, string id, string lease, JsonNode? error, bool retry, CancellationToken cancellationToken)
    {
        var outcome = await WithLeaseAsync(queueName, id, lease,
            (writer, queue, entry, now) => new JobOutcome(JobStatus.Updated, FailAttempt(writer, queue, entry, now, error, retry)), null, cancellationToken);
        if (outcome.Job?["state"]?.GetValue<string>() == Queued)
        {
            JobsQueued?.Invoke(queueName);
        }

        return outcome;
    }

    /// <summary>Cancels a queued or running job (a running in-process worker sees its token fire; an external one, 409 on its next call).</summary>
    public async Task<JobOutcome> CancelAsync(string queueName, string id, ClaimsPrincipal? user, bool trusted, CancellationToken cancellationToken)
    {
        var outcome = await ChangeStateAsync(queueName, id, user, trusted, [Queued, Running], (writer, queue, entry, now) =>
        {
            var job = Change(writer, queue, id, now, j =>
            {
                j["state"] = Cancelled;
                j["finishedAt"] = now;
            });
            writer.Jobs.Put(entry with { State = Cancelled, Lease = null, LeaseUntil = 0, FinishedAt = now.ToUnixTimeMilliseconds() });
            return job;
        }, cancellationToken);
        if (outcome.Status == JobStatus.Updated)
        {
            JobCancelled?.Invoke(queueName, id);
        }

        return outcome;
    }

    /// <summary>Re-drives a dead or cancelled job: queued again now, with its attempts counted from zero.</summary>
    public async Task<JobOutcome> RetryAsync(string queueName, string id, ClaimsPrincipal? user, bool trusted, CancellationToken cancellationToken)
    {
        var outcome = await ChangeStateAsync(queueName, id, user, trusted, [Dead, Cancelled, Failed], (writer, queue, entry, now) =>
        {
            var job = Change(writer, queue, id, now, j =>
            {
                j["state"] = Queued;
                j["attempts"] = 0;
                j["runAt"] = now;
                j["finishedAt"] = null;
            });
            writer.Jobs.Put(entry with { State = Queued, RunAt = now.ToUnixTimeMilliseconds(), Lease = null, LeaseUntil = 0, FinishedAt = 0 });
            return job;
        }, cancellationToken);
        if (outcome.Status == JobStatus.Updated)
        {
            JobsQueued?.Invoke(queueName);
        }

        return outcome;
    }

    /// <summary>A job as <paramref name="user"/> may see it, or null.</summary>
    public async Task<JsonObject?> GetAsync(string queueName, string id, CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return null;
        }

        var stored = await store.ReadAsync(r => r.Get(queue.Path, id), cancellationToken);
        return stored is null ? null : Parse(stored.Json);
    }

    /// <summary>
    /// Housekeeping, run by every node every second: takes back jobs whose lease ran out (each counts as an attempt),
    /// deletes finished jobs past their queue's retention, and fires recurring jobs that are due (once per tick across
    /// nodes: the schedule moves on in the same transaction that enqueues).
    /// </summary>
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var requeued = await store.WriteAsync(writer =>
        {
            var now = time.GetUtcNow();
            var queuedAgain = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in writer.Jobs.LeaseExpired(now.ToUnixTimeMilliseconds(), 100))
            {
                if (queues.Find(entry.Queue) is not { } queue)
                {
                    continue;
                }

                var job = FailAttempt(writer, queue, entry, now, JsonValue.Create("the worker's lease ran out"), retry: true);
                if (job?["state"]?.GetValue<string>() == Queued)
                {
                    queuedAgain.Add(queue.Name);
                }
            }

            foreach (var queue in queues.Queues)
            {
                foreach (var entry in writer.Jobs.FinishedBefore(queue.Name, now.Add(-queue.Retention).ToUnixTimeMilliseconds(), 100))
                {
                    if (writer.Get(queue.Path, entry.Id) is { } stored)
                    {
                        writer.Delete(queue.Path, entry.Id);
                        writer.Append(queue.Path, ChangeMethods.Delete, stored.Json);
                    }

                    writer.Jobs.Delete(queue.Name, entry.Id);
                }
            }

            return queuedAgain;
        }, cancellationToken);

        foreach (var queue in queues.Queues)
        {
            foreach (var recurring in queue.Recurring)
            {
                if (await FireIfDueAsync(queue, recurring, cancellationToken))
                {
                    requeued.Add(queue.Name);
                }
            }
        }

        foreach (var name in requeued)
        {
            JobsQueued?.Invoke(name);
        }
    }

    private async Task<bool> FireIfDueAsync(QueueDefinition queue, RecurringJob recurring, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var due = await store.WriteAsync(writer =>
        {
            if (writer.Jobs.ScheduleDue(recurring.Name) is not { } at)
            {
                // First sight: the schedule starts at its next tick (a node starting up does not fire a missed one).
                writer.Jobs.TryAdvanceSchedule(recurring.Name, -1, recurring.Schedule.Next(now).ToUnixTimeMilliseconds());
                return (long?)null;
            }

            return at <= now.ToUnixTimeMilliseconds()
                && writer.Jobs.TryAdvanceSchedule(recurring.Name, at, recurring.Schedule.Next(now).ToUnixTimeMilliseconds()) ? at : null;
        }, cancellationToken);
        if (due is not { } tick)
        {
            return false;
        }

        // The tick is this node's alone now; its key keeps a retry of this call from enqueuing it twice.
        var request = new JsonObject { ["payload"] = recurring.Payload.DeepClone(), ["key"] = $"{recurring.Name}@{tick}" };
        var outcome = await EnqueueAsync(queue.Name, request, null, trusted: true, cancellationToken);
        return outcome.Status == JobStatus.Created;
    }

    /// <summary>Inside a transaction: one failed attempt (event <c>failed</c>), then <c>queued</c> after a backoff or <c>dead</c>.</summary>
    private JsonObject? FailAttempt(IStoreWriter writer, QueueDefinition queue, JobEntry entry, DateTimeOffset now, JsonNode? error, bool retry)
    {
        var failed = Change(writer, queue, entry.Id, now, j =>
        {
            j["state"] = Failed;
            j["error"] = error?.DeepClone();
        });
        if (failed is null)
        {
            return null;
        }

        var attempts = failed["attempts"]?.GetValue<int>() ?? 1;
        var maxAttempts = failed["maxAttempts"]?.GetValue<int>() ?? queue.MaxAttempts;
        if (retry && attempts < maxAttempts)
        {
            var runAt = now.Add(Backoff(queue, attempts));
            writer.Jobs.Put(entry with { State = Queued, RunAt = runAt.ToUnixTimeMilliseconds(), Lease = null, LeaseUntil = 0 });
            return Change(writer, queue, entry.Id, now, j =>
            {
                j["state"] = Queued;
                j["runAt"] = runAt;
            });
        }

        writer.Jobs.Put(entry with { State = Dead, Lease = null, LeaseUntil = 0, FinishedAt = now.ToUnixTimeMilliseconds() });
        return Change(writer, queue, entry.Id, now, j =>
        {
            j["state"] = Dead;
            j["finishedAt"] = now;
        });
    }

    /// <summary>Exponential backoff with ±20% jitter, so jobs that failed together do not retry together.</summary>
    private static TimeSpan Backoff(QueueDefinition queue, int attempts)
    {
        var exponential = queue.Backoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempts - 1, 30));
        var capped = Math.Min(exponential, queue.MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.8 + (0.4 * Random.Shared.NextDouble())));
    }

    private async Task<JobOutcome> WithLeaseAsync(string queueName, string id, string lease,
        Func<IStoreWriter, QueueDefinition, JobEntry, DateTimeOffset, JobOutcome> work, string? repeatOf, CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return new JobOutcome(JobStatus.NotFound);
        }

        return await store.WriteAsync(writer => UnderLease(writer, queue, id, lease, work, repeatOf), cancellationToken);
    }

    /// <summary>Inside a transaction: runs <paramref name="work"/> when <paramref name="lease"/> holds the running job.</summary>
    private JobOutcome UnderLease(IStoreWriter writer, QueueDefinition queue, string id, string lease,
        Func<IStoreWriter, QueueDefinition, JobEntry, DateTimeOffset, JobOutcome> work, string? repeatOf)
    {
        if (writer.Jobs.Get(queue.Name, id) is not { } entry)
        {
            return new JobOutcome(JobStatus.NotFound);
        }

        if (entry.Lease is not null && CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(entry.Lease), System.Text.Encoding.UTF8.GetBytes(lease)))
        {
            if (entry.State == Running)
            {
                return work(writer, queue, entry, time.GetUtcNow());
            }

            if (entry.State == repeatOf)
            {
                return new JobOutcome(JobStatus.Updated, Get(writer, queue, id)); // the same call again: harmless
            }
        }

        return new JobOutcome(JobStatus.StaleLease, Get(writer, queue, id));
    }

    private async Task<JobOutcome> ChangeStateAsync(string queueName, string id, ClaimsPrincipal? user, bool trusted, string[] from,
        Func<IStoreWriter, QueueDefinition, JobEntry, DateTimeOffset, JsonObject?> work, CancellationToken cancellationToken)
    {
        if (queues.Find(queueName) is not { } queue)
        {
            return new JobOutcome(JobStatus.NotFound);
        }

        // Policies may do I/O, and the store's writer never waits on one: decided before the transaction, on the job as read.
        var rules = queue.Access.List.And(queue.Access.Cancel);
        PolicyDecisions? decisions = null;
        if (!trusted && rules.UsesPolicies && await store.ReadAsync(r => r.Get(queue.Path, id), cancellationToken) is { } read)
        {
            decisions = await rules.DecideAsync(QueueContext(queue, user, TidingsOperations.Cancel, Parse(read.Json)), authorization);
        }

        return await store.WriteAsync(writer =>
        {
            if (writer.Jobs.Get(queue.Name, id) is not { } entry || Get(writer, queue, id) is not { } job)
            {
                return new JobOutcome(JobStatus.NotFound);
            }

            if (!trusted)
            {
                var context = QueueContext(queue, user, TidingsOperations.Cancel, job, decisions);
                if (!(queue.Access.List.Allows(context) && queue.Access.Read.Allows(context)))
                {
                    return new JobOutcome(JobStatus.NotFound); // what one may not see, one cannot find
                }

                if (!queue.Access.Cancel.Allows(context))
                {
                    return new JobOutcome(JobStatus.Forbidden);
                }
            }

            return Array.IndexOf(from, entry.State) < 0
                ? new JobOutcome(JobStatus.WrongState, job)
                : new JobOutcome(JobStatus.Updated, work(writer, queue, entry, time.GetUtcNow()));
        }, cancellationToken);
    }

    /// <summary>Inside a transaction: changes a job's record, bumps its version and appends the change (an event).</summary>
    private static JsonObject? Change(IStoreWriter writer, QueueDefinition queue, string id, DateTimeOffset now, Action<JsonObject> change)
    {
        if (writer.Get(queue.Path, id) is not { } stored)
        {
            return null;
        }

        var job = Parse(stored.Json);
        change(job);
        job["updatedAt"] = now;
        job["version"] = stored.Version + 1;
        var json = job.ToJsonString();
        writer.Put(queue.Path, new StoredRecord(id, stored.Version + 1, json));
        writer.Append(queue.Path, ChangeMethods.Put, json, stored.Json);
        return job;
    }

    private static JsonObject? Get(IStoreWriter writer, QueueDefinition queue, string id) =>
        writer.Get(queue.Path, id) is { } stored ? Parse(stored.Json) : null;

    private static JsonObject Parse(string json) => JsonNode.Parse(json)!.AsObject();

    private static string NewLease() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');

    private static bool TryInt(JsonNode? node, int fallback, int min, int max, out int value)
    {
        value = fallback;
        if (node is null)
        {
            return true;
        }

        return node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue(out value) && value >= min && value <= max;
    }
}

/// <summary>The declared queues, by name.</summary>
public sealed class QueueRegistry
{
    private readonly Dictionary<string, QueueDefinition> _queues = new(StringComparer.Ordinal);

    public IReadOnlyCollection<QueueDefinition> Queues => _queues.Values;

    public QueueDefinition? Find(string name) => _queues.GetValueOrDefault(name);

    internal void Add(QueueDefinition queue)
    {
        if (!_queues.TryAdd(queue.Name, queue))
        {
            throw new InvalidOperationException($"Queue '{queue.Name}' is declared twice.");
        }
    }
}
