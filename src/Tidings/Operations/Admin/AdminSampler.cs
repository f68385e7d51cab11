using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tidings.Bayeux;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Storage;

namespace Tidings.Operations.Admin;

/// <summary>
/// Samples the server once a second for the admin page and publishes each sample on <see cref="Channel"/> — only while
/// someone watches: an admin subscribed to the channel, or a <c>GET /tidings/admin/stats</c> in the last
/// <see cref="JsonLease"/>. Nobody watching costs nothing: no timer runs and no meter listener is attached, so publishing
/// and committing pay nothing extra. While watched, rates come from the existing <c>Tidings.Bayeux</c> and
/// <c>Tidings.Store</c> meters through a <see cref="MeterListener"/>, and session figures from one walk over the sessions.
/// </summary>
internal sealed partial class AdminSampler : IDisposable
{
    public const string Channel = "/tidings/admin/stats";

    /// <summary>Samples kept for the charts: five minutes at one a second.</summary>
    public const int HistoryLength = 300;

    /// <summary>Change logs and job counts are read from the store every this many samples (they cost a query each).</summary>
    public const int StoreEvery = 5;

    /// <summary>The change logs listed, most written first.</summary>
    public const int MaxChangeLogs = 20;

    /// <summary>How long a <c>GET /tidings/admin/stats</c> keeps the sampler running, so the next one has rates.</summary>
    public static readonly TimeSpan JsonLease = TimeSpan.FromMinutes(2);

    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly BayeuxServer _bayeux;
    private readonly ITidingsStore _store;
    private readonly TimeProvider _time;
    private readonly IMeterFactory? _meters;
    private readonly ILogger _logger;
    private readonly string? _node;
    private readonly Lock _gate = new();

    /// <summary>The sessions subscribed to <see cref="Channel"/> through the admin check: the only recipients of samples.</summary>
    private readonly ConcurrentDictionary<string, byte> _watchers = new(StringComparer.Ordinal);
    private readonly Queue<AdminStats> _history = new();
    private readonly WatchersOnly _filter;
    private ITimer? _timer;
    private MeterListener? _listener;
    private long _leaseUntil;
    private long _lastTick;
    private int _ticks;
    private int _reading;
    private (IReadOnlyList<ChangeLogFigures> Logs, IReadOnlyList<JobQueueFigures> Jobs) _storeFigures = ([], []);

    // Summed by the meter listener between two samples, taken (and zeroed) by each sample.
    private long _published;
    private long _delivered;
    private long _closed;
    private long _ownPublished; // the sampler's own publishes and their deliveries, left out of the rates
    private long _ownDelivered;
    private long _commits;
    private long _commitWrites;
    private long _commitMicroseconds;
    private bool _commitsMeasured; // the store has a commit meter (SQLite does; PostgreSQL does not)

    public AdminSampler(BayeuxServer bayeux, ITidingsStore store, TimeProvider time, IOptions<BayeuxOptions> bayeuxOptions,
        ILogger<AdminSampler> logger, IServiceProvider services)
    {
        _bayeux = bayeux;
        _store = store;
        _time = time;
        _meters = services.GetService<IMeterFactory>();
        _logger = logger;
        _node = bayeuxOptions.Value.NodeId;
        _filter = new WatchersOnly(_watchers);
        _bayeux.Unsubscribed += (session, patterns) =>
        {
            if (patterns.Contains(Channel) && _watchers.TryRemove(session.Id, out _))
            {
                StopIfUnwatched();
            }
        };
    }

    public bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _timer is not null;
            }
        }
    }

    /// <summary>Starts sampling for an admin's session subscribed to <see cref="Channel"/>.</summary>
    public void Watch(BayeuxSession session)
    {
        _watchers[session.Id] = 0;
        Start();
        if (session.IsClosed && _watchers.TryRemove(session.Id, out _))
        {
            StopIfUnwatched(); // closed while subscribing: its unsubscribe may have come first
        }
    }

    /// <summary>The kept samples, oldest first (what a new watcher's charts start from).</summary>
    public IReadOnlyList<AdminStats> History()
    {
        lock (_gate)
        {
            return [.. _history];
        }
    }

    /// <summary>The figures now, for <c>GET /tidings/admin/stats</c>; keeps the sampler running for <see cref="JsonLease"/>.</summary>
    public async Task<AdminStats> CurrentAsync(CancellationToken cancellationToken)
    {
        bool running;
        lock (_gate)
        {
            Volatile.Write(ref _leaseUntil, _time.GetTimestamp() + (long)(JsonLease.TotalSeconds * _time.TimestampFrequency));
            running = _timer is not null;
            if (running && _history.Count > 0)
            {
                return _history.Last();
            }
        }

        // Not sampled yet: gauges now, rates from the next sample on.
        var figures = await _store.ReadAsync(ReadStoreFigures, cancellationToken);
        Start();
        return Sample(rates: null, figures);
    }

    private void Start()
    {
        lock (_gate)
        {
            if (_timer is not null)
            {
                return;
            }

            _listener = Listen();
            _lastTick = _time.GetTimestamp();
            _ticks = 0;
            _timer = _time.CreateTimer(static s => ((AdminSampler)s!).Tick(), this, Interval, Interval);
            Log.Started(_logger);
        }
    }

    private void StopIfUnwatched()
    {
        lock (_gate)
        {
            if (_timer is null || !_watchers.IsEmpty || _time.GetTimestamp() < Volatile.Read(ref _leaseUntil))
            {
                return;
            }

            _timer.Dispose();
            _timer = null;
            _listener?.Dispose();
            _listener = null;
            _history.Clear(); // the next watcher's charts must not join two distant stretches as if adjacent
            Interlocked.Exchange(ref _published, 0);
            Interlocked.Exchange(ref _delivered, 0);
            Interlocked.Exchange(ref _closed, 0);
            Interlocked.Exchange(ref _ownPublished, 0);
            Interlocked.Exchange(ref _ownDelivered, 0);
            Interlocked.Exchange(ref _commits, 0);
            Interlocked.Exchange(ref _commitWrites, 0);
            Interlocked.Exchange(ref _commitMicroseconds, 0);
            Log.Stopped(_logger);
        }
    }

    /// <summary>Listens to this app's Tidings meters (scoped to its meter factory, so other apps in the process do not count).</summary>
    private MeterListener Listen()
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, _meters) && instrument.Meter.Name is "Tidings.Bayeux" or "Tidings.Store")
                {
                    l.EnableMeasurementEvents(instrument, this);
                    if (instrument.Name == "tidings.store.commit.duration")
                    {
                        Volatile.Write(ref _commitsMeasured, true);
                    }
                }
            },
        };
        listener.SetMeasurementEventCallback<long>(static (instrument, value, _, state) =>
        {
            var sampler = (AdminSampler)state!;
            switch (instrument.Name)
            {
                case "tidings.bayeux.messages.published":
                    Interlocked.Add(ref sampler._published, value);
                    break;
                case "tidings.bayeux.messages.delivered":
                    Interlocked.Add(ref sampler._delivered, value);
                    break;
                case "tidings.bayeux.sessions.closed":
                    Interlocked.Add(ref sampler._closed, value);
                    break;
            }
        });
        listener.SetMeasurementEventCallback<double>(static (instrument, value, _, state) =>
        {
            if (instrument.Name == "tidings.store.commit.duration")
            {
                var sampler = (AdminSampler)state!;
                Interlocked.Increment(ref sampler._commits);
                Interlocked.Add(ref sampler._commitMicroseconds, (long)(value * 1_000_000));
            }
        });
        listener.SetMeasurementEventCallback<int>(static (instrument, value, _, state) =>
        {
            if (instrument.Name == "tidings.store.commit.writes")
            {
                Interlocked.Add(ref ((AdminSampler)state!)._commitWrites, value);
            }
        });
        listener.Start();
        return listener;
    }

    private void Tick()
    {
        try
        {
            var now = _time.GetTimestamp();
            var seconds = Math.Max(0.001, _time.GetElapsedTime(Interlocked.Exchange(ref _lastTick, now), now).TotalSeconds);
            var commits = Interlocked.Exchange(ref _commits, 0);
            var writes = Interlocked.Exchange(ref _commitWrites, 0);
            var micros = Interlocked.Exchange(ref _commitMicroseconds, 0);
            var published = Interlocked.Exchange(ref _published, 0) - Interlocked.Exchange(ref _ownPublished, 0);
            var delivered = Interlocked.Exchange(ref _delivered, 0) - Interlocked.Exchange(ref _ownDelivered, 0);
            var rates = new Rates(
                Math.Max(0, published) / seconds,
                Math.Max(0, delivered) / seconds,
                Interlocked.Exchange(ref _closed, 0),
                Volatile.Read(ref _commitsMeasured) ? commits / seconds : null,
                commits > 0 ? micros / 1000.0 / commits : null,
                commits > 0 ? (double)writes / commits : null);

            if (_ticks++ % StoreEvery == 0)
            {
                _ = RefreshStoreFiguresAsync();
            }

            var sample = Sample(rates, _storeFigures);
            lock (_gate)
            {
                if (_timer is null)
                {
                    return;
                }

                _history.Enqueue(sample);
                while (_history.Count > HistoryLength)
                {
                    _history.Dequeue();
                }
            }

            if (!_watchers.IsEmpty)
            {
                var data = JsonSerializer.SerializeToUtf8Bytes(new AdminStatsEvent("SAMPLE", Sample: sample), AdminJson.Default.AdminStatsEvent);
                var reached = _bayeux.Publish(Delivery.CreateRaw(Channel, data).WithFilter(_filter));
                Interlocked.Increment(ref _ownPublished);
                Interlocked.Add(ref _ownDelivered, reached);
            }

            StopIfUnwatched();
        }
        catch (Exception ex)
        {
            // A failed sample must not stop the timer: the next one tries again.
            Log.SampleFailed(_logger, ex);
        }
    }

    /// <summary>Reads the store's figures off the timer's thread; one read at a time, a failed one keeps the last figures.</summary>
    private async Task RefreshStoreFiguresAsync()
    {
        if (Interlocked.Exchange(ref _reading, 1) == 1)
        {
            return;
        }

        try
        {
            _storeFigures = await _store.ReadAsync(ReadStoreFigures, CancellationToken.None);
        }
        catch (Exception ex)
        {
            Log.SampleFailed(_logger, ex);
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    private static (IReadOnlyList<ChangeLogFigures>, IReadOnlyList<JobQueueFigures>) ReadStoreFigures(IStoreReader reader)
    {
        var logs = reader.ChannelLogs(MaxChangeLogs).Select(l => new ChangeLogFigures(l.Path, l.Seq, l.OldestSeq, l.Entries)).ToList();
        var jobs = reader.JobCounts().GroupBy(c => c.Queue, StringComparer.Ordinal).Select(g =>
        {
            long Count(string state) => g.Where(c => c.State == state).Sum(c => c.Count);
            return new JobQueueFigures(g.Key, Count(Jobs.JobService.Queued), Count(Jobs.JobService.Running), Count(Jobs.JobService.Failed),
                Count(Jobs.JobService.Dead), Count(Jobs.JobService.Succeeded), Count(Jobs.JobService.Cancelled));
        }).ToList();
        return (logs, jobs);
    }

    private AdminStats Sample(Rates? rates, (IReadOnlyList<ChangeLogFigures> Logs, IReadOnlyList<JobQueueFigures> Jobs) storeFigures)
    {
        int total = 0, sockets = 0, subscriptions = 0;
        long queued = 0;
        foreach (var session in _bayeux.Sessions)
        {
            total++;
            sockets += session.HasSocket ? 1 : 0;
            subscriptions += session.SubscriptionCount;
            queued += session.QueuedBytes;
        }

        var health = _store as IStoreHealth;
        var backlog = health?.Backlog;
        var store = new StoreFigures(rates?.Commits, rates?.CommitMilliseconds, rates?.WritesPerCommit,
            backlog?.QueuedWrites, backlog?.WriteCapacity, backlog?.QueuedChangeBatches, backlog?.ChangeBufferCapacity,
            health?.TailLag?.TotalMilliseconds);
        return new AdminStats(_node, _time.GetUtcNow(), new SessionFigures(total, sockets, total - sockets, rates?.Closed), subscriptions,
            _bayeux.SubscribedChannelCount, rates?.Published, rates?.Delivered, queued, store, storeFigures.Logs, storeFigures.Jobs);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
            _listener?.Dispose();
            _listener = null;
        }
    }

    private sealed record Rates(double Published, double Delivered, long Closed, double? Commits, double? CommitMilliseconds, double? WritesPerCommit);

    /// <summary>Samples reach only the sessions that subscribed through the admin check, never a wildcard subscriber.</summary>
    private sealed class WatchersOnly(ConcurrentDictionary<string, byte> watchers) : IDeliveryFilter
    {
        public Delivery? Select(BayeuxSession recipient, Delivery delivery) => watchers.ContainsKey(recipient.Id) ? delivery : null;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1501, Level = LogLevel.Debug, Message = "Admin stats sampler started.")]
        public static partial void Started(ILogger logger);

        [LoggerMessage(EventId = 1502, Level = LogLevel.Debug, Message = "Admin stats sampler stopped: nobody watches.")]
        public static partial void Stopped(ILogger logger);

        [LoggerMessage(EventId = 1503, Level = LogLevel.Warning, Message = "An admin stats sample failed.")]
        public static partial void SampleFailed(ILogger logger, Exception exception);
    }
}
