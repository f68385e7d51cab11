using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Tidings.Bayeux;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>
/// Plain Bayeux publishes between the nodes on one database, through PostgreSQL: each node writes the publishes it
/// received to <c>tidings_messages</c> (batched, off the request) and tails the rows of the other nodes the same way
/// as the change log, by transaction snapshot. No second engine, no cluster protocol. Rows are kept a minute.
/// </summary>
/// <remarks>
/// Bayeux promises plain publishes at most once, in no particular order across publishers; so the outgoing queue is
/// bounded and drops when full (logged), and a node that was down misses what was published meanwhile.
/// </remarks>
internal sealed partial class PostgresBroker(ITidingsStore store, BayeuxServer bayeux, IOptions<BayeuxOptions> bayeuxOptions, TimeProvider time,
    ILogger<PostgresBroker> logger) : IBayeuxBroker, IHostedService
{
    private const int QueueCapacity = 10_000;
    private const int MaxBatch = 500;
    private static readonly TimeSpan Retained = TimeSpan.FromMinutes(1);

    private readonly Channel<(string Channel, string Data)> _outgoing = Channel.CreateBounded<(string, string)>(
        new BoundedChannelOptions(QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly string _node = bayeuxOptions.Value.NodeId ?? Guid.NewGuid().ToString("N");
    private readonly CancellationTokenSource _stopping = new();
    private Task _writing = Task.CompletedTask;
    private Task _tailing = Task.CompletedTask;
    private string? _snapshot;

    private PostgresStore Store => (PostgresStore)store;

    public void Forward(Delivery delivery)
    {
        if (!_outgoing.Writer.TryWrite((delivery.Channel, delivery.Data.GetRawText())))
        {
            PostgresBrokerLog.Dropped(logger, delivery.Channel);
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using (var command = Store.DataSource.CreateCommand("SELECT pg_current_snapshot()::text;"))
        {
            _snapshot = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        }

        bayeux.UseBroker(this);
        _writing = Task.Run(() => WriteLoopAsync(_stopping.Token), CancellationToken.None);
        _tailing = Task.Run(() => TailLoopAsync(_stopping.Token), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_writing, _tailing);
    }

    private async Task WriteLoopAsync(CancellationToken cancellationToken)
    {
        var channels = new List<string>(MaxBatch);
        var data = new List<string>(MaxBatch);
        var lastCleanup = time.GetTimestamp();
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(cancellationToken))
            {
                channels.Clear();
                data.Clear();
                while (channels.Count < MaxBatch && _outgoing.Reader.TryRead(out var message))
                {
                    channels.Add(message.Channel);
                    data.Add(message.Data);
                }

                await RetryingAsync(async () =>
                {
                    await using var insert = Store.DataSource.CreateCommand(
                        "INSERT INTO tidings_messages (node, channel, data) SELECT $1, c, d FROM unnest($2::text[], $3::text[]) AS m(c, d);");
                    insert.Parameters.Add(new NpgsqlParameter { Value = _node });
                    insert.Parameters.Add(new NpgsqlParameter { Value = channels.ToArray() });
                    insert.Parameters.Add(new NpgsqlParameter { Value = data.ToArray() });
                    await insert.ExecuteNonQueryAsync(cancellationToken);
                }, cancellationToken);

                if (time.GetElapsedTime(lastCleanup) > Retained / 2)
                {
                    lastCleanup = time.GetTimestamp();
                    await using var cleanup = Store.DataSource.CreateCommand("DELETE FROM tidings_messages WHERE at < $1;");
                    cleanup.Parameters.Add(new NpgsqlParameter { Value = time.GetUtcNow().Add(-Retained).ToUnixTimeMilliseconds() });
                    await cleanup.ExecuteNonQueryAsync(cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task TailLoopAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var found = 0;
                await RetryingAsync(async () =>
                {
                    await using var command = Store.DataSource.CreateCommand("""
                        SELECT s.snap::text, m.channel, m.data
                        FROM (SELECT pg_current_snapshot() AS snap) s
                        LEFT JOIN tidings_messages m
                          ON m.xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(m.xid, $1::pg_snapshot) AND m.node <> $2
                        ORDER BY m.xid;
                        """);
                    command.Parameters.Add(new NpgsqlParameter { Value = _snapshot! });
                    command.Parameters.Add(new NpgsqlParameter { Value = _node });
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                    var messages = new List<(string, string)>();
                    string snapshot = _snapshot!;
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        snapshot = reader.GetString(0);
                        if (!reader.IsDBNull(1))
                        {
                            messages.Add((reader.GetString(1), reader.GetString(2)));
                        }
                    }

                    _snapshot = snapshot;
                    foreach (var (channel, data) in messages)
                    {
                        bayeux.PublishRaw(channel, Encoding.UTF8.GetBytes(data));
                    }

                    found = messages.Count;
                }, cancellationToken);

                if (found == 0)
                {
                    await Task.Delay(Store.Options.PollInterval, time, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Runs <paramref name="work"/> until it succeeds, backing off while the database cannot be reached.</summary>
    private async Task RetryingAsync(Func<Task> work, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                await work();
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                PostgresBrokerLog.Failed(logger, delay, ex);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }
}

internal static partial class PostgresBrokerLog
{
    [LoggerMessage(1, LogLevel.Warning, "A publish on {Channel} was not forwarded to the other nodes: the outgoing queue is full.")]
    public static partial void Dropped(ILogger logger, string channel);

    [LoggerMessage(2, LogLevel.Warning, "Forwarding publishes through PostgreSQL failed; retrying in {Delay}.")]
    public static partial void Failed(ILogger logger, TimeSpan delay, Exception exception);
}
