using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Tidings.Bayeux;
using Tidings.Presence;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>
/// Presence across the nodes on one database: every <see cref="PostgresStoreOptions.PresenceInterval"/> a node writes
/// the counts that changed here (<c>tidings_presence</c>, one row per node, channel and user), its heartbeat
/// (<c>tidings_nodes</c>), and reads the other live nodes' counts, which it hands to the tracker when they changed. A
/// node whose heartbeat is older than <see cref="PostgresStoreOptions.NodeExpiry"/> drops out of every node's picture
/// (its users leave) and its rows are deleted; a node that stops cleanly deletes its own at once.
/// </summary>
/// <remarks>
/// Pending writes are one entry per (channel, user) whose count changed since the last round, so they are bounded by
/// what this node's sessions watch. Reading is one grouped query over the live nodes' rows per round.
/// </remarks>
internal sealed partial class PostgresPresence(ITidingsStore store, IOptions<BayeuxOptions> bayeuxOptions, TimeProvider time,
    ILogger<PostgresPresence> logger) : IPresenceShare, IHostedService
{
    private readonly Lock _gate = new();
    private Dictionary<(string Channel, string User), int> _dirty = [];
    private readonly string _node = (bayeuxOptions.Value.NodeId ?? "node") + "-" + Guid.NewGuid().ToString("N")[..8];
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;
    private Dictionary<string, Dictionary<string, int>> _lastRemote = [];

    private PostgresStore Store => (PostgresStore)store;

    public event Action<IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>>? RemoteChanged;

    public void Set(string channel, string user, int sessions)
    {
        lock (_gate)
        {
            _dirty[(channel, user)] = sessions;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = Task.Run(() => LoopAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _loop;
        try
        {
            // A clean stop: this node's users leave the other nodes' pictures at their next round, not after the expiry.
            await using var batch = Store.DataSource.CreateBatch();
            batch.BatchCommands.Add(Command("DELETE FROM tidings_presence WHERE node = $1;", _node));
            batch.BatchCommands.Add(Command("DELETE FROM tidings_nodes WHERE node = $1;", _node));
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            PostgresPresenceLog.Failed(logger, ex); // the others drop this node when its heartbeat expires
        }
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await RoundAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
                {
                    // The database is away: try again next round (the changes not written are still pending).
                    PostgresPresenceLog.Failed(logger, ex);
                }

                await Task.Delay(Store.Options.PresenceInterval, time, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Writes this node's changes and heartbeat, forgets expired nodes, reads the others' counts.</summary>
    private async Task RoundAsync(CancellationToken cancellationToken)
    {
        Dictionary<(string Channel, string User), int> dirty;
        lock (_gate)
        {
            dirty = _dirty;
            _dirty = [];
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var expired = now - (long)Store.Options.NodeExpiry.TotalMilliseconds;
        try
        {
            await using var batch = Store.DataSource.CreateBatch();
            batch.BatchCommands.Add(Command(
                "INSERT INTO tidings_nodes (node, seen_at) VALUES ($1, $2) ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at;", _node, now));
            var gone = dirty.Where(d => d.Value == 0).ToList();
            var present = dirty.Where(d => d.Value > 0).ToList();
            if (gone.Count > 0)
            {
                batch.BatchCommands.Add(Command(
                    "DELETE FROM tidings_presence p USING unnest($2::text[], $3::text[]) AS g(c, u) WHERE p.node = $1 AND p.channel = g.c AND p.user_name = g.u;",
                    _node, gone.Select(g => g.Key.Channel).ToArray(), gone.Select(g => g.Key.User).ToArray()));
            }

            if (present.Count > 0)
            {
                batch.BatchCommands.Add(Command("""
                    INSERT INTO tidings_presence (node, channel, user_name, sessions) SELECT $1, c, u, s FROM unnest($2::text[], $3::text[], $4::int[]) AS p(c, u, s)
                    ON CONFLICT (node, channel, user_name) DO UPDATE SET sessions = excluded.sessions;
                    """,
                    _node, present.Select(p => p.Key.Channel).ToArray(), present.Select(p => p.Key.User).ToArray(), present.Select(p => p.Value).ToArray()));
            }

            // Whoever notices an expired node forgets it for everyone.
            batch.BatchCommands.Add(Command("DELETE FROM tidings_presence WHERE node IN (SELECT node FROM tidings_nodes WHERE seen_at < $1);", expired));
            batch.BatchCommands.Add(Command("DELETE FROM tidings_nodes WHERE seen_at < $1;", expired));
            batch.BatchCommands.Add(Command("""
                SELECT p.channel, p.user_name, sum(p.sessions)::int FROM tidings_presence p JOIN tidings_nodes n ON n.node = p.node
                WHERE p.node <> $1 AND n.seen_at >= $2 GROUP BY p.channel, p.user_name;
                """, _node, expired));
            var remote = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
            await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
            {
                while (!reader.HasRows && await reader.NextResultAsync(cancellationToken))
                {
                }

                do
                {
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        var channel = reader.GetString(0);
                        if (!remote.TryGetValue(channel, out var users))
                        {
                            remote[channel] = users = new Dictionary<string, int>(StringComparer.Ordinal);
                        }

                        users[reader.GetString(1)] = reader.GetInt32(2);
                    }
                }
                while (await reader.NextResultAsync(cancellationToken));
            }

            if (!Same(remote, _lastRemote))
            {
                _lastRemote = remote;
                RemoteChanged?.Invoke(remote.ToDictionary(c => c.Key, c => (IReadOnlyDictionary<string, int>)c.Value, StringComparer.Ordinal));
            }
        }
        catch
        {
            // Not written: keep the changes for the next round, unless a newer count for the same key came meanwhile.
            lock (_gate)
            {
                foreach (var (key, sessions) in dirty)
                {
                    _dirty.TryAdd(key, sessions);
                }
            }

            throw;
        }
    }

    private static bool Same(Dictionary<string, Dictionary<string, int>> a, Dictionary<string, Dictionary<string, int>> b) =>
        a.Count == b.Count && a.All(c => b.TryGetValue(c.Key, out var users) && users.Count == c.Value.Count
            && c.Value.All(u => users.TryGetValue(u.Key, out var n) && n == u.Value));

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }
}

internal static partial class PostgresPresenceLog
{
    [LoggerMessage(1, LogLevel.Warning, "Sharing presence through PostgreSQL failed; trying again next round.")]
    public static partial void Failed(ILogger logger, Exception exception);
}
