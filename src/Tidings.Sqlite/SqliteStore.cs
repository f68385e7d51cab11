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
/// undo its neighbours), commits with a full sync, completes the writers, then hands the commit's changes to
/// its <see cref="Changes"/> source. Nothing is published on the writer. Reads use their own pooled
/// connections and see a consistent snapshot.
/// </summary>
public sealed partial class SqliteStore : ITidingsStore, IStoreHealth
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
    private readonly SqliteChangeSource _changes;
    private readonly CancellationTokenSource _stopping = new();
    private SqliteConnection? _writeConnection;
    private SqliteStatements? _writeStatements;
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
        _changes = new SqliteChangeSource(this, options.ChangeBufferCapacity);
    }

    public IChangeSource Changes => _changes;

    /// <summary>Writes queued for the writer loop and commits not yet taken by the change feed (for health checks).</summary>
    public StoreBacklog Backlog => new(_queue.Reader.Count, _options.QueueCapacity, _changes.Queued, _options.ChangeBufferCapacity);

    /// <summary>No tail: the writer hands its own commits to the feed.</summary>
    public TimeSpan? TailLag => null;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(_options.Path));
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        Execute(connection, SqliteSchema.Pragmas);
        Execute(connection, SqliteSchema.Create);
        SqliteSchema.Migrate(connection);
        _epoch = SqliteSchema.EnsureEpoch(connection);
        _writeConnection = connection;
        _writeStatements = new SqliteStatements(connection);
        _loop = Task.Run(WriterLoop, CancellationToken.None);
    }

    public async Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken)
    {
        var item = new WorkItem<T>(access => work(access));
        await _queue.Writer.WriteAsync(item, cancellationToken);

        // A write cancelled while queued may still commit: the caller stops waiting, the store does not pretend.
        return await item.Completion.Task.WaitAsync(cancellationToken);
    }

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
            using var statements = new SqliteStatements(connection);
            var result = work(new SqliteAccess(statements, transaction, this));
            transaction.Commit();
            return result;
        }
        finally
        {
            _readers.Release();
        }
    }

    private async Task WriterLoop()
    {
        var reader = _queue.Reader;
        var batch = new List<WorkItem>(_options.MaxBatch);
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < _options.MaxBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            if (CommitGroup(batch) is { Count: > 0 } committed)
            {
                try
                {
                    // Waits only when the change feed is a whole buffer behind: writes then slow to its pace.
                    await _changes.CommittedAsync(committed, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: what was not handed over is in the log, where a restarted feed finds it.
                }
            }
        }
    }

    /// <summary>Commits a group of writes; returns the changes it committed (in seq order per channel).</summary>
    private List<ChangeEntry>? CommitGroup(List<WorkItem> batch)
    {
        var started = _time.GetTimestamp();
        var connection = _writeConnection!;
        var statements = _writeStatements!;
        var changes = new List<ChangeEntry>();
        try
        {
            using var transaction = connection.BeginTransaction(deferred: false);
            var access = new SqliteAccess(statements, transaction, this);
            foreach (var item in batch)
            {
                statements.Execute("SAVEPOINT w;", transaction);
                access.BeginWrite();
                try
                {
                    item.Run(access);
                    access.EndWrite();
                    statements.Execute("RELEASE w;", transaction);
                    changes.AddRange(access.Appended);
                }
                catch (Exception ex)
                {
                    // Told after the commit, like the others: a caller that retries then reads what its neighbours wrote
                    // (a write that failed because a record changed would otherwise re-read the old one, again and again).
                    statements.Execute("ROLLBACK TO w;", transaction);
                    statements.Execute("RELEASE w;", transaction);
                    item.Refuse(ex);
                }
            }

            // Changes come in seq order per channel: the last one of each channel says where its log is trimmed to.
            var newest = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var change in changes)
            {
                newest[change.Path] = change.Seq;
            }

            foreach (var (path, seq) in newest)
            {
                access.TrimChanges(path, seq);
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

            SqliteStoreLog.CommitFailed(_logger, batch.Count, ex);
            return null;
        }

        // Durable: the writers hear so now, whatever the feed's pace.
        foreach (var item in batch)
        {
            item.Complete();
        }

        return changes;
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
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }

        _changes.Complete();
        _stopping.Dispose();

        _writeStatements?.Dispose();
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

    private abstract class WorkItem
    {
        public abstract void Run(SqliteAccess access);

        public abstract void Complete();

        public abstract void Fail(Exception exception);

        /// <summary>The work threw and was rolled back to its savepoint; the caller hears it with <see cref="Complete"/>.</summary>
        public abstract void Refuse(Exception exception);
    }

    private sealed class WorkItem<T>(Func<SqliteAccess, T> work) : WorkItem
    {
        private T? _result;
        private Exception? _refusal;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Run(SqliteAccess access) => _result = work(access);

        public override void Complete()
        {
            if (_refusal is { } refusal)
            {
                Completion.TrySetException(refusal);
            }
            else
            {
                Completion.TrySetResult(_result!);
            }
        }

        public override void Refuse(Exception exception) => _refusal = exception;

        public override void Fail(Exception exception) => Completion.TrySetException(exception);
    }
}

internal static partial class SqliteStoreLog
{
    [LoggerMessage(2, LogLevel.Error, "A commit of {Writes} writes failed; none of them was stored.")]
    public static partial void CommitFailed(ILogger logger, int writes, Exception exception);
}
