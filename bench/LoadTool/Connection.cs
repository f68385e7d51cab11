using System.Buffers;
using System.Buffers.Text;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Tidings.Bench;

public enum Protocol
{
    /// <summary>Bayeux over WebSocket: handshake, connect, subscribe, publish (Tidings, Faye).</summary>
    Bayeux,

    /// <summary>No protocol: subscriptions in the URL, publishes are the frames themselves (the ceiling).</summary>
    Raw,
}

/// <summary>
/// One client WebSocket on a raw socket: a minimal RFC 6455 client (no extensions), so thousands of them
/// cost little in one process. One receive loop per socket parses every frame that one read brought in;
/// sends are synchronous under a small lock (they are rare on subscribers, and a publisher that blocks
/// is a server that pushes back). The payload scan finds the timestamps without deserializing the JSON.
/// </summary>
public sealed class Connection
{
    private static readonly byte[] ConnectPrefix = "[{\"channel\":\"/meta/connect\",\"connectionType\":\"websocket\",\"clientId\":\""u8.ToArray();

    private readonly Socket _socket;
    private readonly Protocol _protocol;
    private readonly Metrics _metrics;
    private readonly Lock _sendGate = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ReplyHandler? _onReply;
    private byte[] _buffer;
    private byte[] _sendBuffer = new byte[256];
    private string[] _subscriptions = [];
    private int _pendingSubscribes;
    private int _state; // 0 handshaking, 1 subscribing, 2 running
    private volatile bool _disconnecting;
    private long _nextId;

    private Connection(Socket socket, Protocol protocol, Metrics metrics, int bufferSize, ReplyHandler? onReply)
    {
        _socket = socket;
        _protocol = protocol;
        _metrics = metrics;
        _buffer = new byte[bufferSize];
        _onReply = onReply;
    }

    /// <summary>Sees every frame a running session receives instead of the timestamp scan (writers: their publish replies).</summary>
    public delegate void ReplyHandler(ReadOnlySpan<byte> payload);

    public string? ClientId { get; private set; }

    public byte[] ClientIdUtf8 { get; private set; } = [];

    public bool Closed { get; private set; }

    /// <summary>The server (node) this session is on.</summary>
    public IPEndPoint EndPoint { get; private init; } = null!;

    public Task Ready => _ready.Task;

    /// <summary>
    /// Opens the socket from <paramref name="local"/> to <paramref name="endpoint"/> (one of the target's) and upgrades
    /// it; Bayeux sessions then handshake (signed in with <paramref name="userToken"/> in <c>ext.token</c> when given) and subscribe.
    /// </summary>
    public static async Task<Connection> OpenAsync(Target target, IPEndPoint endpoint, IPAddress local, string[] subscriptions, Metrics metrics, int bufferSize,
        CancellationToken token, string? userToken = null, ReplyHandler? onReply = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connection = new Connection(socket, target.Protocol, metrics, bufferSize, onReply) { EndPoint = endpoint };
        try
        {
            socket.Bind(new IPEndPoint(local, 0));
            await socket.ConnectAsync(endpoint, token);
            var path = target.Protocol == Protocol.Raw
                ? target.Path + "?ch=" + Uri.EscapeDataString(string.Join(',', subscriptions))
                : target.Path;
            var leftover = await connection.UpgradeAsync(endpoint, path, token);
            connection._subscriptions = subscriptions;
            _ = connection.ReceiveLoopAsync(leftover);
            if (target.Protocol == Protocol.Raw)
            {
                connection._state = 2;
                connection._ready.TrySetResult();
            }
            else
            {
                var ext = userToken is null ? "" : ",\"ext\":{\"token\":" + JsonSerializer.Serialize(userToken) + "}";
                connection.SendText(Encoding.UTF8.GetBytes("[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"minimumVersion\":\"1.0\",\"supportedConnectionTypes\":[\"websocket\"],\"id\":\"h\"" + ext + "}]"));
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await connection._ready.Task.WaitAsync(timeout.Token);
            return connection;
        }
        catch
        {
            connection.Close();
            throw;
        }
    }

    private async Task<int> UpgradeAsync(IPEndPoint endpoint, string path, CancellationToken token)
    {
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var request = $"GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await _socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, token);
        var length = 0;
        while (true)
        {
            var n = await _socket.ReceiveAsync(_buffer.AsMemory(length), SocketFlags.None, token);
            if (n == 0)
            {
                throw new IOException("connection closed during the WebSocket upgrade");
            }

            length += n;
            var end = _buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end < 0)
            {
                continue;
            }

            var head = Encoding.ASCII.GetString(_buffer, 0, end);
            if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            {
                throw new IOException("upgrade refused: " + head.Split('\r')[0]);
            }

            var rest = length - end - 4;
            _buffer.AsSpan(end + 4, rest).CopyTo(_buffer);
            return rest;
        }
    }

    public void Close()
    {
        Closed = true;
        try
        {
            _socket.Close(0);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Ends the Bayeux session. Without it the server keeps a closed socket's session (and queues its deliveries) until
    /// the connect timeout plus grace, so sessions closed mid-run would still cost fan-out work. Close the socket a
    /// little later: closing at once resets the connection and may drop this frame unread.
    /// </summary>
    public void SendDisconnect()
    {
        if (_protocol == Protocol.Bayeux && ClientId is not null && !Closed)
        {
            _disconnecting = true;
            SendText(Encoding.UTF8.GetBytes("[{\"channel\":\"/meta/disconnect\",\"clientId\":\"" + ClientId + "\",\"id\":\"d\"}]"));
        }
    }

    /// <summary>Sends one text frame (masked with a zero key, which RFC 6455 allows: the payload goes as it is).</summary>
    public void SendText(ReadOnlySpan<byte> payload) => SendFrame(0x81, payload);

    private void SendFrame(byte opcode, ReadOnlySpan<byte> payload)
    {
        lock (_sendGate)
        {
            var header = payload.Length < 126 ? 6 : payload.Length < 65536 ? 8 : 14;
            if (_sendBuffer.Length < header + payload.Length)
            {
                _sendBuffer = new byte[Math.Max(_sendBuffer.Length * 2, header + payload.Length)];
            }

            var frame = _sendBuffer.AsSpan();
            frame[0] = opcode;
            if (payload.Length < 126)
            {
                frame[1] = (byte)(0x80 | payload.Length);
            }
            else if (payload.Length < 65536)
            {
                frame[1] = 0x80 | 126;
                frame[2] = (byte)(payload.Length >> 8);
                frame[3] = (byte)payload.Length;
            }
            else
            {
                frame[1] = 0x80 | 127;
                for (var i = 0; i < 8; i++)
                {
                    frame[2 + i] = (byte)((long)payload.Length >> (56 - (8 * i)));
                }
            }

            frame.Slice(header - 4, 4).Clear();
            payload.CopyTo(frame[header..]);
            try
            {
                var total = header + payload.Length;
                var sent = 0;
                while (sent < total)
                {
                    sent += _socket.Send(_sendBuffer, sent, total - sent, SocketFlags.None);
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                MarkClosed();
            }
        }
    }

    private void MarkClosed()
    {
        if (!Closed)
        {
            Closed = true;
            _metrics.SocketClosed();
            _ready.TrySetException(new IOException("socket closed"));
        }
    }

    private async Task ReceiveLoopAsync(int length)
    {
        try
        {
            while (true)
            {
                // Parse every complete frame in the buffer, then keep the partial tail.
                var offset = 0;
                int needed;
                while (TryParseFrame(_buffer.AsSpan(offset, length - offset), out var consumed, out needed))
                {
                    offset += consumed;
                }

                if (offset > 0)
                {
                    _buffer.AsSpan(offset, length - offset).CopyTo(_buffer);
                    length -= offset;
                }

                if (needed > _buffer.Length)
                {
                    var bigger = new byte[Math.Max(needed, _buffer.Length * 2)];
                    _buffer.AsSpan(0, length).CopyTo(bigger);
                    _buffer = bigger;
                }

                var n = await _socket.ReceiveAsync(_buffer.AsMemory(length), SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                length += n;
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        catch (Exception ex)
        {
            _metrics.Error("receive loop failed: " + ex.Message);
        }

        MarkClosed();
    }

    private bool TryParseFrame(ReadOnlySpan<byte> data, out int consumed, out int needed)
    {
        consumed = 0;
        needed = 0;
        if (data.Length < 2)
        {
            return false;
        }

        var opcode = data[0] & 0x0F;
        long payloadLength = data[1] & 0x7F;
        var header = 2;
        if (payloadLength == 126)
        {
            if (data.Length < 4)
            {
                return false;
            }

            payloadLength = (data[2] << 8) | data[3];
            header = 4;
        }
        else if (payloadLength == 127)
        {
            if (data.Length < 10)
            {
                return false;
            }

            payloadLength = 0;
            for (var i = 0; i < 8; i++)
            {
                payloadLength = (payloadLength << 8) | data[2 + i];
            }

            header = 10;
        }

        if (data.Length < header + payloadLength)
        {
            needed = (int)(header + payloadLength);
            return false;
        }

        var payload = data.Slice(header, (int)payloadLength);
        consumed = header + (int)payloadLength;
        switch (opcode)
        {
            case 0x0 or 0x1:
                OnText(payload);
                break;
            case 0x8:
                Closed = true;
                break;
            case 0x9:
                SendFrame(0x8A, payload);
                break;
        }

        return true;
    }

    private void OnText(ReadOnlySpan<byte> payload)
    {
        if (_state == 2)
        {
            ScanRunning(payload);
            return;
        }

        try
        {
            OnSetupMessage(payload);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            _ready.TrySetException(new IOException("bad setup reply: " + Encoding.UTF8.GetString(payload)));
        }
    }

    /// <summary>The fast path: count and time deliveries, renew the connect, note errors.</summary>
    private void ScanRunning(ReadOnlySpan<byte> payload)
    {
        var metrics = _metrics;
        var marker = metrics.Marker;
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var rest = payload;
        if (_onReply is not null)
        {
            _onReply(payload);
            rest = default;
        }

        while (!rest.IsEmpty)
        {
            var at = rest.IndexOf(marker);
            if (at < 0)
            {
                break;
            }

            rest = rest[(at + marker.Length)..];
            if (Utf8Parser.TryParse(rest, out long sent, out var used))
            {
                metrics.Record(sent, now);
                rest = rest[used..];
            }
        }

        if (_protocol == Protocol.Bayeux)
        {
            if (payload.IndexOf("\"/meta/connect\""u8) >= 0)
            {
                metrics.ConnectReplied();
                if (_disconnecting)
                {
                    // The held connect of a session we ended: its refusal is expected.
                    return;
                }

                if (payload.IndexOf("\"successful\":false"u8) >= 0 || payload.IndexOf("\"reconnect\":\"handshake\""u8) >= 0)
                {
                    metrics.Error("connect refused: " + Encoding.UTF8.GetString(payload[..Math.Min(payload.Length, 300)]));
                    return;
                }

                SendConnect();
            }
            else if (_onReply is null && payload.IndexOf("\"successful\":false"u8) >= 0)
            {
                metrics.Error(Encoding.UTF8.GetString(payload[..Math.Min(payload.Length, 300)]));
            }
        }
    }

    private void OnSetupMessage(ReadOnlySpan<byte> payload)
    {
        using var doc = JsonDocument.Parse(payload.ToArray());
        foreach (var message in doc.RootElement.EnumerateArray())
        {
            var channel = message.TryGetProperty("channel", out var c) ? c.GetString() : null;
            var successful = message.TryGetProperty("successful", out var s) && s.ValueKind == JsonValueKind.True;
            switch (channel)
            {
                case "/meta/handshake":
                    if (!successful)
                    {
                        throw new InvalidOperationException("handshake refused");
                    }

                    ClientId = message.GetProperty("clientId").GetString()!;
                    ClientIdUtf8 = Encoding.UTF8.GetBytes(ClientId);
                    _pendingSubscribes = _subscriptions.Length;
                    _state = 1;
                    SendSubscribeBatch();
                    break;
                case "/meta/subscribe":
                    if (!successful)
                    {
                        throw new InvalidOperationException("subscribe refused");
                    }

                    _pendingSubscribes--;
                    break;
                case "/meta/connect":
                    _metrics.ConnectReplied();
                    if (successful)
                    {
                        SendConnect();
                    }

                    break;
                default:
                    // A delivery before every subscribe reply came back: count it like any other.
                    ScanRunning(Encoding.UTF8.GetBytes(message.GetRawText()));
                    break;
            }
        }

        if (_state == 1 && _pendingSubscribes == 0)
        {
            _state = 2;
            SendConnect();
            _ready.TrySetResult();
        }
    }

    /// <summary>
    /// Subscribes in one batch, without the first connect: Faye answers a batch only when every message in it
    /// is done, so a held connect in the same batch would hold the subscribe replies for the connect timeout.
    /// </summary>
    private void SendSubscribeBatch()
    {
        if (_subscriptions.Length == 0)
        {
            return;
        }

        var json = new StringBuilder("[");
        var i = 0;
        foreach (var subscription in _subscriptions)
        {
            json.Append(i == 0 ? "" : ",").Append("{\"channel\":\"/meta/subscribe\",\"clientId\":\"").Append(ClientId)
                .Append("\",\"subscription\":").Append(JsonSerializer.Serialize(subscription)).Append(",\"id\":\"s").Append(i++).Append("\"}");
        }

        json.Append(']');
        SendText(Encoding.UTF8.GetBytes(json.ToString()));
    }

    private void SendConnect()
    {
        Span<byte> message = stackalloc byte[256];
        ConnectPrefix.CopyTo(message);
        var n = ConnectPrefix.Length;
        ClientIdUtf8.CopyTo(message[n..]);
        n += ClientIdUtf8.Length;
        "\",\"id\":\"c"u8.CopyTo(message[n..]);
        n += 8;
        Utf8Formatter.TryFormat(Interlocked.Increment(ref _nextId), message[n..], out var w);
        n += w;
        "\"}]"u8.CopyTo(message[n..]);
        n += 3;
        SendText(message[..n]);
    }

    /// <summary>A unique message id for a publish from this session.</summary>
    public long NextId() => Interlocked.Increment(ref _nextId);
}

/// <summary>
/// Where the load goes: one server, or several nodes of one app (sessions and writes spread over
/// <see cref="EndPoints"/> round-robin). <see cref="Pids"/> are the servers' processes, <see cref="DatabasePid"/> the
/// database server's (0: none), <see cref="Backend"/> the store the servers run on (sqlite, postgres; "" when none).
/// </summary>
public sealed record Target(string Name, Protocol Protocol, IPEndPoint[] EndPoints, string Path, int[] Pids, int DatabasePid, string Backend)
{
    /// <summary>The first endpoint: where sign-ins and single-endpoint work go.</summary>
    public IPEndPoint EndPoint => EndPoints[0];

    /// <summary>How the report names the backend: <c>sqlite</c>, <c>postgres</c>, <c>postgres×3</c>.</summary>
    public string BackendLabel => EndPoints.Length > 1 ? $"{Backend}×{EndPoints.Length}" : Backend;
}
