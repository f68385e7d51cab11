using System.Runtime.CompilerServices;
using Npgsql;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>
/// Tails the change log of every node by transaction snapshot. Each look runs one statement that returns the rows
/// committed since the previous look — those whose transaction was not yet visible in the previous look's snapshot —
/// and its own snapshot, which becomes the next look's starting point.
/// </summary>
/// <remarks>
/// Why not a cursor on an increasing id: a transaction can take its id early and commit late, and a cursor that
/// moved past it skips its rows for good (Marten's lost events). Visibility in a snapshot is exactly "committed
/// before", so nothing is skipped and nothing from a rolled-back transaction is ever seen; a long transaction
/// delays none of the others. Why not LISTEN/NOTIFY: it serializes commits under load and caps payloads. Why not
/// logical decoding: it needs <c>wal_level = logical</c> and a replication slot on the operator's server; this
/// needs nothing but the tables. Rows from transactions still running at the previous look are read again until
/// they commit; the change feed drops what it has already published.
/// </remarks>
internal sealed class PostgresChangeSource(PostgresStore store, TimeProvider time) : IChangeSource
{
    private readonly CancellationTokenSource _closing = new();
    private TaskCompletionSource _doorbell = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _startSnapshot;
    private string? _snapshot;
    private long _lastLook;

    /// <summary>How long since a look last finished: the idle interval at most while the tail keeps up; it grows while the
    /// database cannot be reached or the feed is slow to take what was found.</summary>
    internal TimeSpan Lag => time.GetElapsedTime(Volatile.Read(ref _lastLook));

    /// <summary>Where the stream starts: the snapshot taken when the store opened.</summary>
    internal async Task StartAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("SELECT pg_current_snapshot()::text;");
        _startSnapshot = _snapshot = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        Volatile.Write(ref _lastLook, time.GetTimestamp());
    }

    /// <summary>A commit on this node: look now rather than at the next interval.</summary>
    internal void Ring() => Volatile.Read(ref _doorbell).TrySetResult();

    /// <summary>The store is closing: the stream ends.</summary>
    internal void Close() => _closing.Cancel();

    public async IAsyncEnumerable<IReadOnlyList<ChangeEntry>> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        var (source, closing) = (store.DataSource, _closing.Token);
        cancellationToken = linked.Token;
        while (!closing.IsCancellationRequested)
        {
            List<ChangeEntry> batch;
            try
            {
                (batch, _snapshot) = await LookAsync(source, _snapshot!, cancellationToken); // a failed look is repeated from the same point
                Volatile.Write(ref _lastLook, time.GetTimestamp());
            }
            catch (Exception) when (closing.IsCancellationRequested)
            {
                yield break;
            }

            if (batch.Count > 0)
            {
                yield return batch;
                continue;
            }

            // Idle: wait for a local commit or the interval (other nodes' commits), whichever comes first.
            var doorbell = Volatile.Read(ref _doorbell);
            await Task.WhenAny(doorbell.Task, Task.Delay(store.Options.PollInterval, time, cancellationToken));
            if (closing.IsCancellationRequested)
            {
                yield break;
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (doorbell.Task.IsCompleted)
            {
                Interlocked.CompareExchange(ref _doorbell, new(TaskCreationOptions.RunContinuationsAsynchronously), doorbell);
            }
        }
    }

    public async ValueTask<long> StartingSeqAsync(string path, CancellationToken cancellationToken)
    {
        // The first seq committed after the start snapshot, less one; or, if none, the channel's seq now (anything
        // committed after this statement comes later and is tailed).
        await using var command = store.DataSource.CreateCommand("""
            SELECT COALESCE(
                (SELECT min(seq) - 1 FROM tidings_changes
                 WHERE path = $1 AND xid >= pg_snapshot_xmin($2::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $2::pg_snapshot)),
                (SELECT seq FROM tidings_channels WHERE path = $1),
                0);
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = path });
        command.Parameters.Add(new NpgsqlParameter { Value = _startSnapshot! });
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<(List<ChangeEntry> Batch, string Snapshot)> LookAsync(NpgsqlDataSource source, string since,
        CancellationToken cancellationToken)
    {
        // One statement, one snapshot: the rows it returns are exactly those visible in the snapshot it returns.
        await using var command = source.CreateCommand("""
            SELECT s.snap::text, c.path, c.seq, c.method, c.body, c.at, c.previous, c.after
            FROM (SELECT pg_current_snapshot() AS snap) s
            LEFT JOIN tidings_changes c
              ON c.xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(c.xid, $1::pg_snapshot)
            ORDER BY c.path, c.seq;
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = since });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var batch = new List<ChangeEntry>();
        string snapshot = since;
        while (await reader.ReadAsync(cancellationToken))
        {
            snapshot = reader.GetString(0);
            if (!reader.IsDBNull(1))
            {
                batch.Add(PostgresAccess.ReadChange(reader, reader.GetString(1), 2));
            }
        }

        return (batch, snapshot);
    }
}
