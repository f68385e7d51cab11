using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;

// The ceiling of the benchmark: what Kestrel's WebSockets do with no protocol at all. A subscriber connects
// to /ws?ch=/a,/b; whatever any socket sends (a pre-serialized batch `[{"channel":"/a","data":…}]`) is
// broadcast as the same bytes to every subscriber of that channel. Each socket gets the same machinery as a
// Tidings WebSocket — a byte-capped outbox drained by one send loop that coalesces what piled up into one
// frame — and nothing else: no handshake, no session, no JSON parsing, no replies.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(25) });

var channels = new ConcurrentDictionary<string, Subscribers>(StringComparer.Ordinal);

app.MapGet("/", () => "raw ceiling");
app.Map("/ws", async (HttpContext http) =>
{
    if (!http.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest();
    }

    var socket = await http.WebSockets.AcceptWebSocketAsync();
    var connection = new RawConnection(socket);
    var subscribed = ((string?)http.Request.Query["ch"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
    foreach (var channel in subscribed)
    {
        channels.GetOrAdd(channel, static _ => new Subscribers()).Add(connection);
    }

    try
    {
        await connection.RunAsync(frame =>
        {
            if (ChannelOf(frame) is { } channel && channels.TryGetValue(channel, out var subscribers))
            {
                foreach (var subscriber in subscribers.Snapshot)
                {
                    subscriber.Enqueue(frame);
                }
            }
        });
    }
    finally
    {
        foreach (var channel in subscribed)
        {
            channels[channel].Remove(connection);
        }
    }

    return Results.Empty;
});

app.Run();

// The frame starts with [{"channel":"…": the one thing the ceiling reads.
static string? ChannelOf(byte[] frame)
{
    ReadOnlySpan<byte> prefix = "[{\"channel\":\""u8;
    if (!frame.AsSpan().StartsWith(prefix))
    {
        return null;
    }

    var rest = frame.AsSpan(prefix.Length);
    var end = rest.IndexOf((byte)'"');
    return end < 0 ? null : Encoding.UTF8.GetString(rest[..end]);
}

internal sealed class Subscribers
{
    private readonly Lock _gate = new();
    private volatile RawConnection[] _snapshot = [];

    public RawConnection[] Snapshot => _snapshot;

    public void Add(RawConnection connection)
    {
        lock (_gate)
        {
            _snapshot = [.. _snapshot, connection];
        }
    }

    public void Remove(RawConnection connection)
    {
        lock (_gate)
        {
            _snapshot = [.. _snapshot.Where(c => c != connection)];
        }
    }
}

/// <summary>One socket: a receive loop (publishes) and a send loop over a byte-capped outbox, as Tidings has.</summary>
internal sealed class RawConnection(WebSocket socket)
{
    private const int MaxQueuedBytes = 1024 * 1024;
    private readonly Lock _gate = new();
    private readonly Queue<byte[]> _outbox = new();
    private long _queued;
    private TaskCompletionSource? _waiter;
    private bool _closed;

    public void Enqueue(byte[] frame)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            if (_queued + frame.Length > MaxQueuedBytes)
            {
                _closed = true;
            }
            else
            {
                _outbox.Enqueue(frame);
                _queued += frame.Length;
            }

            if (_waiter is { } waiter)
            {
                _waiter = null;
                waiter.TrySetResult();
            }
        }
    }

    public async Task RunAsync(Action<byte[]> onFrame)
    {
        var sending = SendLoopAsync();
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                // Wait with a zero-byte read, so an idle socket holds no buffer (as Tidings does).
                var peek = await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                if (peek.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
                try
                {
                    var length = 0;
                    ValueWebSocketReceiveResult result;
                    do
                    {
                        result = await socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                        length += result.Count;
                    }
                    while (!result.EndOfMessage && length < buffer.Length && result.MessageType != WebSocketMessageType.Close);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    onFrame(buffer.AsSpan(0, length).ToArray());
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (WebSocketException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _closed = true;
                _waiter?.TrySetResult();
                _waiter = null;
            }

            await sending;
            socket.Abort();
        }
    }

    private Task WaitAsync()
    {
        lock (_gate)
        {
            if (_outbox.Count > 0 || _closed)
            {
                return Task.CompletedTask;
            }

            _waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _waiter.Task;
        }
    }

    private async Task SendLoopAsync()
    {
        try
        {
            while (true)
            {
                await WaitAsync();
                byte[]? only = null;
                byte[]? batch = null;
                var length = 0;
                lock (_gate)
                {
                    if (_closed)
                    {
                        // Over the cap (or the client left): drop the socket, as Tidings does on overflow.
                        socket.Abort();
                        return;
                    }

                    if (_outbox.Count == 1)
                    {
                        only = _outbox.Dequeue();
                    }
                    else
                    {
                        // Coalesce [{a}] [{b}] … into [{a},{b},…], one frame.
                        batch = ArrayPool<byte>.Shared.Rent((int)_queued + 2);
                        batch[length++] = (byte)'[';
                        while (_outbox.TryDequeue(out var frame))
                        {
                            if (length > 1)
                            {
                                batch[length++] = (byte)',';
                            }

                            frame.AsSpan(1, frame.Length - 2).CopyTo(batch.AsSpan(length));
                            length += frame.Length - 2;
                        }

                        batch[length++] = (byte)']';
                    }

                    _queued = 0;
                }

                if (only is not null)
                {
                    await socket.SendAsync(only, WebSocketMessageType.Text, true, CancellationToken.None);
                }
                else if (batch is not null)
                {
                    await socket.SendAsync(batch.AsMemory(0, length), WebSocketMessageType.Text, true, CancellationToken.None);
                    ArrayPool<byte>.Shared.Return(batch);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
