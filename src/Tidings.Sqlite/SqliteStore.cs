using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tidings.Storage;

namespace Tidings.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode. A single writer loop owns the write connection and
/// groups queued writes into one transaction (each in its own savepoint, so one failing write does not
/// undo its neighbours), commits with a full sync, hands the changes to the sink, then completes the
/// writers. Reads use their own pooled connections and see a consistent snapshot.
/// </summary>
public sealed partial class SqliteStore : ITidingsStore
{
    /// <summary>The meter of the store's instruments (commit duration and group size).</summary>
    public const string MeterName = "Tidings.Store";

    private readonly SqliteStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly string _connectionString;
    private readonly Channel<WorkItem> _queue;

    // SQLite calls block their thread. Reads beyond this many wait their turn asynchronously instead of
    // taking every thread-pool thread (a reconnect storm of snapshot subscribes would otherwise starve the
    // HTTP requests and the writer's completions).
    private readonly SemaphoreSlim _readers = new(Math.Max(2, Environment.ProcessorCount));
    private SqliteConnection? _writeConnection;
    private IChangeSink? _sink;
    private Task? _loop;
    private string _epoch = string.Empty;
    private long _lastAgeTrim;
    private int _disposed;
    private readonly ILogger _logger;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<double> _commitDuration;
    private readonly Histogram<int> _commitWrites;

    public SqliteStore(SqliteStoreOptions options, TimeProvider time, ILogger<SqliteStore>? logger = null, IMeterFactory? meterFactory = null)
    {
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger<SqliteStore>.Instance;
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _commitDuration = _meter.CreateHistogram<double>("tidings.store.commit.duration", "s",
            "Time from the start of a grouped commit to its durable end (fsync included).");
        _commitWrites = _meter.CreateHistogram<int>("tidings.store.commit.writes", "{write}",
            "Writes grouped into one commit.");
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        _queue = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public async Task InitializeAsync(IChangeSink sink, CancellationToken cancellationToken)
    {
        _sink = sink;
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path));
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        Execute(connection, SqliteSchema.Pragmas);
        Execute(connection, SqliteSchema.Create);
        _epoch = SqliteSchema.EnsureEpoch(connection);
        _writeConnection = connection;
        _loop = Task.Factory.StartNew(WriterLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    public Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken) =>
        EnqueueAsync<T>(access => work(access), sequenced: false, cancellationToken);

    public Task<T> SequencedReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken) =>
        EnqueueAsync<T>(access => work(access), sequenced: true, cancellationToken);

    public async Task<T> ReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken)
    {
        await _readers.WaitAsync(cancellationToken);
        try
        {
            await using var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken);
            Execute(connection, "PRAGMA query_only = ON;");
            // A deferred transaction pins one WAL snapshot for every statement the work runs.
            using var transaction = connection.BeginTransaction(deferred: true);
            var result = work(new SqliteAccess(connection, transaction, this));
            transaction.Commit();
            return result;
        }
        finally
        {
            _readers.Release();
        }
    }

    private async Task<T> EnqueueAsync<T>(Func<SqliteAccess, T> work, bool sequenced, CancellationToken cancellationToken)
    {
        var item = new WorkItem<T>(work, sequenced);
        await _queue.Writer.WriteAsync(item, cancellationToken);
        return await item.Completion.Task.WaitAsync(cancellationToken);
    }

    private async Task WriterLoop()
    {
        var reader = _queue.Reader;
        var batch = new List<WorkItem>(_options.MaxBatch);
        WorkItem? carried = null;
        while (carried is not null || await reader.WaitToReadAsync())
        {
            batch.Clear();
            if (carried is not null)
            {
                batch.Add(carried);
                carried = null;
            }

            // A batch is either one sequenced read or a group of writes, never both.
            while (batch.Count < _options.MaxBatch && !(batch.Count > 0 && batch[0].Sequenced) && reader.TryRead(out var next))
            {
                if (next.Sequenced && batch.Count > 0)
                {
                    // A sequenced read must see the writes before it committed and published: stop the group here.
                    carried = next;
                    break;
                }

                batch.Add(next);
                if (next.Sequenced)
                {
                    break;
                }
            }

            if (batch.Count == 0)
            {
                continue;
            }

            if (batch[0].Sequenced)
            {
                RunSequenced(batch[0]);
            }
            else
            {
                CommitGroup(batch);
            }
        }
    }

    private void RunSequenced(WorkItem item)
    {
        var connection = _writeConnection!;
        try
        {
            using var transaction = connection.BeginTransaction(deferred: true);
            item.Run(new SqliteAccess(connection, transaction, this));
            transaction.Commit();
            item.Complete();
        }
        catch (Exception ex)
        {
            item.Fail(ex);
        }
    }

    private void CommitGroup(List<WorkItem> batch)
    {
        var started = _time.GetTimestamp();
        var connection = _writeConnection!;
        var changes = new List<ChangeEntry>();
        try
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var access = new SqliteAccess(connection, transaction, this);
            foreach (var item in batch)
            {
                Execute(connection, "SAVEPOINT w;", transaction);
                access.Appended.Clear();
                try
                {
                    item.Run(access);
                    Execute(connection, "RELEASE w;", transaction);
                    changes.AddRange(access.Appended);
                }
                catch (Exception ex)
                {
                    Execute(connection, "ROLLBACK TO w; RELEASE w;", transaction);
                    access.ForgetAppended();
                    item.Fail(ex);
                }
            }

            TrimByAge(connection, transaction);
            transaction.Commit();
            _commitDuration.Record(_time.GetElapsedTime(started).TotalSeconds);
            _commitWrites.Record(batch.Count);
        }
        catch (Exception ex)
        {
            // The commit itself failed: none of the group is stored.
            foreach (var item in batch)
            {
                item.Fail(ex);
            }

            return;
        }

        if (changes.Count > 0)
        {
            try
            {
                _sink!.Committed(changes);
            }
            catch (Exception ex)
            {
                // The writes are durable; a subscriber that misses an event sees the gap in seq and catches up.
                SqliteStoreLog.PublishFailed(_logger, ex);
            }
        }

        foreach (var item in batch)
        {
            item.Complete();
        }
    }

    private void TrimByAge(SqliteConnection connection, SqliteTransaction transaction)
    {
        // Age-based trimming runs at most once a minute; count-based trimming happens on append.
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (now - _lastAgeTrim < 60_000)
        {
            return;
        }

        _lastAgeTrim = now;
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "DELETE FROM changes WHERE at < $cutoff;";
        command.Parameters.AddWithValue("$cutoff", now - (long)_options.RetainedAge.TotalMilliseconds);
        command.ExecuteNonQuery();
    }

    internal static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        if (_loop is not null)
        {
            await _loop;
        }

        if (_writeConnection is not null)
        {
            await _writeConnection.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private abstract class WorkItem(bool sequenced)
    {
        public bool Sequenced { get; } = sequenced;

        public abstract void Run(SqliteAccess access);

        public abstract void Complete();

        public abstract void Fail(Exception exception);
    }

    private sealed class WorkItem<T>(Func<SqliteAccess, T> work, bool sequenced) : WorkItem(sequenced)
    {
        private T? _result;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Run(SqliteAccess access) => _result = work(access);

        public override void Complete() => Completion.TrySetResult(_result!);

        public override void Fail(Exception exception) => Completion.TrySetException(exception);
    }
}

internal static partial class SqliteStoreLog
{
    [LoggerMessage(1, LogLevel.Error, "Publishing committed changes failed.")]
    public static partial void PublishFailed(ILogger logger, Exception exception);
}
