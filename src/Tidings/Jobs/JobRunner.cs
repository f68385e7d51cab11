using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
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

    /// <summary>The most finishes one transaction commits (see <see cref="Finisher"/>).</summary>
    private const int MaxFinishGroup = 256;

    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, WakeUp> _wakeUps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _available = new(StringComparer.Ordinal);
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
            _available[queue.Name] = JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["queue"] = queue.Name });
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
                bayeux.PublishRaw(queue.AvailableChannel, _available[queue.Name]);
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
        var finisher = new Finisher(jobs, queue.Name, logger);
        var finishing = Task.Run(finisher.RunAsync, CancellationToken.None);
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
                            await RunOneAsync(queue, job, finisher, stopping);
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
                break;
            }
            catch (Exception ex)
            {
                // The store may be down: look again later; the loop itself never dies.
                JobRunnerLog.ClaimFailed(logger, queue.Name, ex);
                await Task.Delay(PollInterval, time, stopping).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        // Finishes already handed over still commit; later ones find the finisher closed and leave the job to its lease.
        finisher.Close();
        await finishing;
    }

    private async Task RunOneAsync(QueueDefinition queue, ClaimedJob claimed, Finisher finisher, CancellationToken stopping)
    {
        var id = claimed.Job["id"]!.GetValue<string>();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _running[(queue.Name, id)] = cancel;
        using var heartbeat = time.CreateTimer(_ => _ = HeartbeatAsync(queue, id, claimed.Lease, cancel), null, queue.Lease / 3, queue.Lease / 3);
        try
        {
            var result = await InvokeWorkerAsync(queue, claimed, id, cancel.Token);
            // The slot is free once the finish is handed over: its commit need not hold up the next job. The job keeps its
            // lease until then (no one else runs it), and a finish lost in a crash leaves it to its lease, like a crash mid-job.
            await finisher.HandOverAsync(new JobFinish(id, claimed.Lease, result));
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

    /// <summary>
    /// Finishes of one queue's in-process jobs, committed in groups: while one group is in the store, the next gathers,
    /// so under load one transaction finishes many jobs, and a lone finish is written at once (no waiting to fill a
    /// group). Holds at most <see cref="MaxFinishGroup"/> waiting finishes; workers wait for room beyond that.
    /// </summary>
    private sealed class Finisher(JobService jobs, string queue, ILogger logger)
    {
        private readonly Channel<JobFinish> _pending =
            Channel.CreateBounded<JobFinish>(new BoundedChannelOptions(MaxFinishGroup) { SingleReader = true });

        /// <summary>Queues a finish (waiting while the finisher is full); throws when the runner is stopping.</summary>
        public ValueTask HandOverAsync(JobFinish finish) => _pending.Writer.WriteAsync(finish);

        /// <summary>No more finishes: <see cref="RunAsync"/> commits what it holds and ends.</summary>
        public void Close() => _pending.Writer.TryComplete();

        public async Task RunAsync()
        {
            var group = new List<JobFinish>(MaxFinishGroup);
            while (await _pending.Reader.WaitToReadAsync())
            {
                group.Clear();
                while (group.Count < MaxFinishGroup && _pending.Reader.TryRead(out var next))
                {
                    group.Add(next);
                }

                try
                {
                    // A finish that comes back stale (cancelled, or its lease lost meanwhile) has nothing to record.
                    await jobs.FinishManyAsync(queue, [.. group], CancellationToken.None);
                }
                catch (Exception ex)
                {
                    // Not recorded: these jobs stay running until their leases run out, then run again (as after a crash).
                    JobRunnerLog.FinishFailed(logger, queue, group.Count, ex);
                }
            }
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

    [LoggerMessage(5, LogLevel.Error, "Finishing {Count} jobs of queue {Queue} failed; they run again when their leases run out.")]
    public static partial void FinishFailed(ILogger logger, string queue, int count, Exception exception);
}
