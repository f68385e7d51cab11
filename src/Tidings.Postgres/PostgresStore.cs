using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>
/// Collections in PostgreSQL, for several Tidings nodes on one database. A write is one transaction on a pooled
/// connection (its channel's counter row locked until commit); reads run on a repeatable-read snapshot; every
/// node learns every node's commits by tailing the log (<see cref="PostgresChangeSource"/>).
/// </summary>
public sealed partial class PostgresStore : ITidingsStore, IStoreHealth
{
    private readonly PostgresChangeSource _changes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writers;
    private readonly SemaphoreSlim _readers;
    private NpgsqlDataSource? _dataSource;
    private string _epoch = string.Empty;
    private long _lastAgeTrim;
    private int _waitingWrites;

    public PostgresStore(PostgresStoreOptions options, TimeProvider time, ILogger<PostgresStore>? logger = null)
    {
        Options = options;
        _time = time;
        _logger = logger ?? NullLogger<PostgresStore>.Instance;
        _writers = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentWrites));
        _readers = new SemaphoreSlim(Math.Max(1, options.MaxConcurrentReads));
        _changes = new PostgresChangeSource(this, time);
    }

    internal PostgresStoreOptions Options { get; }

    internal NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("The PostgreSQL store is not initialized.");

    public IChangeSource Changes => _changes;

    /// <summary>Writes waiting for one of the <see cref="PostgresStoreOptions.MaxConcurrentWrites"/> slots (for health checks).</summary>
    public StoreBacklog Backlog => new(Volatile.Read(ref _waitingWrites), 0, 0, 0);

    /// <summary>How long since this node's tail last finished a look at the shared log.</summary>
    public TimeSpan? TailLag => _changes.Lag;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(Options.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"The PostgreSQL connection string is not valid: {ex.Message}", ex);
        }

        if (!Options.ConnectionString.Contains("timeout", StringComparison.OrdinalIgnoreCase))
        {
            builder.Timeout = 3; // unreachable database: answer 503 within seconds, not hang requests
        }

        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);

        // Transactions run with blocking calls (see RunWriteAsync), up to MaxConcurrentWrites + MaxConcurrentReads at
        // once. The thread pool adds threads slowly (about one a second past its minimum), so a burst — a thousand
        // snapshot subscribes and writes at once — would starve every request for seconds: raise the minimum to match.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        var needed = Options.MaxConcurrentWrites + Options.MaxConcurrentReads + Environment.ProcessorCount;
        if (workers < needed)
        {
            ThreadPool.SetMinThreads(needed, completionPorts);
        }

        try
        {
            _epoch = await PostgresSchema.MigrateAsync(_dataSource, cancellationToken);
            await _changes.StartAsync(_dataSource, cancellationToken);
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new InvalidOperationException(
                $"Could not open the PostgreSQL database ({builder.Host}:{builder.Port}/{builder.Database}): {ex.Message}", ex);
        }
    }

    public async Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waitingWrites);
        try
        {
            await _writers.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waitingWrites);
        }

        try
        {
            // A deadlock, serialization failure or unique violation rolled everything back: running the work again is safe.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var result = await RunWriteAsync(work, cancellationToken);
                    _changes.Ring();
                    return result;
                }
                // A unique violation means another node inserted the same record or job key first: run again, and
                // the work finds it (an idempotent create, a job key that is already queued).
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
                    or PostgresErrorCodes.UniqueViolation && attempt < 3)
                {
                    PostgresStoreLog.WriteRetried(_logger, ex.SqlState, attempt);
                }
            }
        }
        catch (Exception ex) when (Unavailable(ex, cancellationToken))
        {
            throw new StoreUnavailableException("The PostgreSQL database cannot be reached.", ex);
        }
        finally
        {
            _writers.Release();
        }
    }

    /// <remarks>
    /// The whole transaction runs with blocking calls on one thread. The work is synchronous (it reads and writes inside
    /// the transaction), and mixing it with async calls on the same connection can leave a blocking read waiting for a
    /// socket completion that has to run on the very thread it blocks (seen with inline socket completions): every
    /// socket of the process then stops. Blocking calls are bounded by <see cref="PostgresStoreOptions.MaxConcurrentWrites"/>.
    /// </remarks>
    private Task<T> RunWriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            using var connection = DataSource.OpenConnection();
            using var transaction = connection.BeginTransaction();
            var access = new PostgresAccess(connection, transaction, _epoch, Options.RetainedChanges, _time);
            var result = work(access);
            access.EndWrite();
            TrimByAge(connection, transaction);
            transaction.Commit();
            return result;
        }, cancellationToken);

    public async Task<T> ReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken)
    {
        await _readers.WaitAsync(cancellationToken);
        try
        {
            // Blocking, on one thread, like a write (see RunWriteAsync).
            return await Task.Run(() =>
            {
                using var connection = DataSource.OpenConnection();
                using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
                var result = work(new PostgresAccess(connection, transaction, _epoch, Options.RetainedChanges, _time));
                transaction.Commit();
                return result;
            }, cancellationToken);
        }
        catch (Exception ex) when (Unavailable(ex, cancellationToken))
        {
            throw new StoreUnavailableException("The PostgreSQL database cannot be reached.", ex);
        }
        finally
        {
            _readers.Release();
        }
    }

    private void TrimByAge(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        // Age-based trimming runs at most once a minute per node; count-based trimming happens on append.
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var last = Interlocked.Read(ref _lastAgeTrim);
        if (now - last < 60_000 || Interlocked.CompareExchange(ref _lastAgeTrim, now, last) != last)
        {
            return;
        }

        using var command = new NpgsqlCommand("DELETE FROM tidings_changes WHERE at < $1;", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = now - (long)Options.RetainedAge.TotalMilliseconds });
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// The database could not be reached, the connection broke, or the server says it cannot serve now (starting up or
    /// recovering after a crash, shutting down, out of connections): not the caller's fault, and not a bug.
    /// </summary>
    /// <remarks>Any other error the server reported (<see cref="PostgresException"/>) stays what it is.</remarks>
    internal static bool Unavailable(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && ex switch
        {
            PostgresException server => server.SqlState.StartsWith("57P", StringComparison.Ordinal) // operator intervention: 57P01-57P03
                || server.SqlState.StartsWith("08", StringComparison.Ordinal)                       // connection exception
                || server.SqlState == PostgresErrorCodes.TooManyConnections,
            NpgsqlException => true,
            _ => false,
        };

    public async ValueTask DisposeAsync()
    {
        _changes.Close();
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        _writers.Dispose();
        _readers.Dispose();
    }
}

internal static partial class PostgresStoreLog
{
    [LoggerMessage(1, LogLevel.Warning, "A write failed with {SqlState} (attempt {Attempt}) and is run again.")]
    public static partial void WriteRetried(ILogger logger, string sqlState, int attempt);
}
