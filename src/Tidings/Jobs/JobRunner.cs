using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tidings.Bayeux.Server;

namespace Tidings.Jobs;

/// <summary>
/// Runs the queues' in-process workers and every node's housekeeping. Wakes when jobs are queued on any node: each
/// node publishes every change of a queue's jobs collection (from the store's log), so a <c>queued</c> event there wakes
/// the local workers and tells idle external workers on <c>/api/queues/{queue}/available</c>. Otherwise it looks every
/// <see cref="PollInterval"/> (scheduled <c>runAt</c>s come due without an event).
/// </summary>
internal sealed partial class JobRunner(JobService jobs, QueueRegistry queues, BayeuxServer bayeux, IServiceScopeFactory scopes, TimeProvider time,
    ILogger<JobRunner> logger) : IHostedService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, WakeUp> _wakeUps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Queue, string Id), CancellationTokenSource> _running = new();
    private readonly List<Task> _loops = [];
    private readonly List<IDisposable> _subscriptions = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        jobs.JobsQueued += Wake;
        jobs.JobCancelled += CancelRunning;
        foreach (var queue in queues.Queues)
        {
            _wakeUps[queue.Name] = new WakeUp();
            _subscriptions.Add(bayeux.Subscribe(queue.Path, delivery => OnJobEvent(queue, delivery)));
            if (queue.WorkerType is not null)
            {
                _loops.Add(Task.Run(() => WorkLoopAsync(queue, _stopping.Token), CancellationToken.None));
            }
        }

        _loops.Add(Task.Run(() => SweepLoopAsync(_stopping.Token), CancellationToken.None));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        jobs.JobsQueued -= Wake;
        jobs.JobCancelled -= CancelRunning;
        foreach (var subscription in _subscriptions)
        {
            subscription.Dispose();
        }

        await _stopping.CancelAsync();
        await Task.WhenAll(_loops).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private void Wake(string queue)
    {
        if (_wakeUps.TryGetValue(queue, out var wakeUp))
        {
            wakeUp.Ring();
        }
    }

    private void CancelRunning(string queue, string id)
    {
        if (_running.TryGetValue((queue, id), out var cancel))
        {
            cancel.Cancel();
        }
    }

    /// <summary>A change of a queue's jobs, published on this node whichever node made it.</summary>
    private void OnJobEvent(QueueDefinition queue, Bayeux.Protocol.Delivery delivery)
    {
        var data = delivery.Data;
        if (!data.TryGetProperty("body", out var body) || !body.TryGetProperty("state", out var state))
        {
            return;
        }

        switch (state.GetString())
        {
            case JobService.Queued:
                Wake(queue.Name);
                bayeux.PublishRaw(queue.AvailableChannel, JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["queue"] = queue.Name }));
                break;
            case JobService.Cancelled when body.TryGetProperty("id", out var id):
                CancelRunning(queue.Name, id.GetString()!); // cancelled on another node
                break;
        }
    }

    private async Task WorkLoopAsync(QueueDefinition queue, CancellationToken stopping)
    {
        var wakeUp = _wakeUps[queue.Name];
        var slots = new SemaphoreSlim(queue.Concurrency);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var free = slots.CurrentCount;
                var claimed = free == 0 ? [] : (await jobs.ClaimAsync(queue.Name, free, queue.Lease, null, trusted: true, stopping)).Jobs;
                foreach (var job in claimed)
                {
                    await slots.WaitAsync(stopping);
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await RunOneAsync(queue, job, stopping);
                        }
                        finally
                        {
                            slots.Release();
                            wakeUp.Ring(); // a slot is free: look for more
                        }
                    }, CancellationToken.None);
                }

                if (claimed.Count == 0 || slots.CurrentCount == 0)
                {
                    await wakeUp.WaitAsync(PollInterval, time, stopping);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The store may be down: look again later; the loop itself never dies.
                JobRunnerLog.ClaimFailed(logger, queue.Name, ex);
                await Task.Delay(PollInterval, time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task RunOneAsync(QueueDefinition queue, ClaimedJob claimed, CancellationToken stopping)
    {
        var id = claimed.Job["id"]!.GetValue<string>();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _running[(queue.Name, id)] = cancel;
        using var heartbeat = time.CreateTimer(_ => _ = HeartbeatAsync(queue, id, claimed.Lease, cancel), null, queue.Lease / 3, queue.Lease / 3);
        try
        {
            var result = await InvokeWorkerAsync(queue, claimed, id, cancel.Token);
            await jobs.FinishAsync(queue.Name, id, claimed.Lease, result, CancellationToken.None);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested && !stopping.IsCancellationRequested)
        {
            // Cancelled (or its lease was lost): nothing to record, the job's state already says so.
        }
        catch (Exception ex) when (!stopping.IsCancellationRequested)
        {
            JobRunnerLog.JobFailed(logger, queue.Name, id, ex);
            await jobs.FailAsync(queue.Name, id, claimed.Lease, JsonValue.Create(ex.Message), retry: true, CancellationToken.None);
        }
        catch (Exception) when (stopping.IsCancellationRequested)
        {
            // The app is stopping: the job's lease runs out and another run (here or on another node) takes it.
        }
        finally
        {
            _running.TryRemove((queue.Name, id), out _);
        }
    }

    private async Task<JsonNode?> InvokeWorkerAsync(QueueDefinition queue, ClaimedJob claimed, string id, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var requestedBy = claimed.Job["requestedBy"]?.GetValue<string>();
        var requester = requestedBy is null
            ? new ClaimsPrincipal(new ClaimsIdentity())
            : new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, requestedBy)], "tidings-job"));
        var job = new JobInvocation(queue.Name, id, claimed.Job["payload"]!.AsObject(), claimed.Job["attempts"]!.GetValue<int>(), requestedBy,
            requester, p => jobs.HeartbeatAsync(queue.Name, id, claimed.Lease, queue.Lease, p, setProgress: true, cancellationToken));
        return await queue.Invoke!(scope.ServiceProvider, job, cancellationToken);
    }

    private async Task HeartbeatAsync(QueueDefinition queue, string id, string lease, CancellationTokenSource cancel)
    {
        try
        {
            var outcome = await jobs.HeartbeatAsync(queue.Name, id, lease, queue.Lease, null, setProgress: false, CancellationToken.None);
            if (outcome.Status is JobStatus.StaleLease or JobStatus.NotFound)
            {
                await cancel.CancelAsync(); // cancelled elsewhere, or the lease was lost: stop working on it
            }
        }
        catch (Exception ex) when (ex is not ObjectDisposedException)
        {
            JobRunnerLog.HeartbeatFailed(logger, queue.Name, id, ex);
        }
        catch (ObjectDisposedException)
        {
            // The job ended meanwhile.
        }
    }

    private async Task SweepLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await jobs.SweepAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                JobRunnerLog.SweepFailed(logger, ex);
            }

            await Task.Delay(PollInterval, time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>A reusable wake-up: rung any number of times, waited for by one loop.</summary>
    private sealed class WakeUp
    {
        private TaskCompletionSource _rung = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Ring() => Volatile.Read(ref _rung).TrySetResult();

        public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
        {
            var rung = Volatile.Read(ref _rung);
            await Task.WhenAny(rung.Task, Task.Delay(timeout, time, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
            if (rung.Task.IsCompleted)
            {
                Interlocked.CompareExchange(ref _rung, new(TaskCreationOptions.RunContinuationsAsynchronously), rung);
            }
        }
    }
}

internal static partial class JobRunnerLog
{
    [LoggerMessage(1, LogLevel.Warning, "Claiming jobs of queue {Queue} failed; trying again shortly.")]
    public static partial void ClaimFailed(ILogger logger, string queue, Exception exception);

    [LoggerMessage(2, LogLevel.Warning, "Job {Id} of queue {Queue} failed.")]
    public static partial void JobFailed(ILogger logger, string queue, string id, Exception exception);

    [LoggerMessage(3, LogLevel.Warning, "A heartbeat of job {Id} of queue {Queue} failed.")]
    public static partial void HeartbeatFailed(ILogger logger, string queue, string id, Exception exception);

    [LoggerMessage(4, LogLevel.Error, "Job housekeeping failed; trying again shortly.")]
    public static partial void SweepFailed(ILogger logger, Exception exception);
}
