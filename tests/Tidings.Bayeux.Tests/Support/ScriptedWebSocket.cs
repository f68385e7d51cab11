using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Tidings.Bayeux.Tests.Support;

/// <summary>
/// The server's end of a WebSocket whose client is the test: the test sends frames with <see cref="ClientSends"/>,
/// reads what the server sent with <see cref="ReadAsync"/>, and acts out a slow network (<see cref="StallSends"/>)
/// or a broken one (<see cref="Break"/>). A close from the server is answered at once, as a well-behaved client does.
/// </summary>
internal sealed class ScriptedWebSocket : WebSocket
{
    private readonly Lock _gate = new();
    private readonly Channel<byte[]?> _incoming = Channel.CreateUnbounded<byte[]?>();
    private readonly Channel<JsonElement> _sent = Channel.CreateUnbounded<JsonElement>();
    private readonly Channel<string> _stalledSends = Channel.CreateUnbounded<string>();
    private TaskCompletionSource? _stall;
    private byte[]? _frame;
    private int _offset;
    private WebSocketState _state = WebSocketState.Open;
    private WebSocketCloseStatus? _closeStatus;

    public override WebSocketCloseStatus? CloseStatus => _closeStatus;
    public override string? CloseStatusDescription => null;
    public override WebSocketState State => _state;
    public override string? SubProtocol => null;

    /// <summary>Delivers a client frame (JSON text) to the server's receive loop.</summary>
    public void ClientSends(string json) => _incoming.Writer.TryWrite(Encoding.UTF8.GetBytes(json));

    /// <summary>The next message the server sent (frames are split into their messages), in order.</summary>
    public async Task<JsonElement> ReadAsync() => await _sent.Reader.ReadAsync().AsTask().WaitAsync(BayeuxHarness.Patience);

    /// <summary>Reads on until a message on <paramref name="channel"/>; what came before it is returned too.</summary>
    public async Task<(JsonElement Message, List<JsonElement> Before)> ReadUntilAsync(string channel)
    {
        var before = new List<JsonElement>();
        while (true)
        {
            var message = await ReadAsync();
            if (message.GetProperty("channel").GetString() == channel)
            {
                return (message, before);
            }

            before.Add(message);
        }
    }

    /// <summary>What the server has sent so far and the test has not read.</summary>
    public List<JsonElement> ReadAvailable()
    {
        var messages = new List<JsonElement>();
        while (_sent.Reader.TryRead(out var message))
        {
            messages.Add(message);
        }

        return messages;
    }

    /// <summary>From now on each server send waits (as on a congested network) until <see cref="ResumeSends"/> or <see cref="Break"/>.</summary>
    public void StallSends()
    {
        lock (_gate)
        {
            _stall ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Completes once a server send is stalled, with the text of its frame: the send loop has taken that batch.</summary>
    public async Task<string> NextStalledSendAsync() => await _stalledSends.Reader.ReadAsync().AsTask().WaitAsync(BayeuxHarness.Patience);

    public void ResumeSends()
    {
        TaskCompletionSource? stall;
        lock (_gate)
        {
            stall = _stall;
            _stall = null;
        }

        stall?.TrySetResult();
    }

    /// <summary>The connection drops: a stalled send fails, and so do every later send and receive.</summary>
    public void Break() => Abort();

    public override void Abort()
    {
        TaskCompletionSource? stall;
        lock (_gate)
        {
            _state = WebSocketState.Aborted;
            stall = _stall;
            _stall = null;
        }

        stall?.TrySetException(new WebSocketException(WebSocketError.ConnectionClosedPrematurely));
        _incoming.Writer.TryComplete();
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage,
        CancellationToken cancellationToken)
    {
        var text = Encoding.UTF8.GetString(buffer.Span);
        Task? stall;
        lock (_gate)
        {
            ThrowIfAborted();
            stall = _stall?.Task;
        }

        if (stall is not null)
        {
            _stalledSends.Writer.TryWrite(text);
            await stall.WaitAsync(cancellationToken);
        }

        lock (_gate)
        {
            ThrowIfAborted();
        }

        using var frame = JsonDocument.Parse(text);
        foreach (var message in frame.RootElement.EnumerateArray())
        {
            _sent.Writer.TryWrite(message.Clone());
        }
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_frame is null)
        {
            if (!await _incoming.Reader.WaitToReadAsync(cancellationToken) || !_incoming.Reader.TryRead(out var next))
            {
                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely);
            }

            if (next is null)
            {
                lock (_gate)
                {
                    _state = _state == WebSocketState.CloseSent ? WebSocketState.Closed : WebSocketState.CloseReceived;
                }

                return new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, endOfMessage: true);
            }

            (_frame, _offset) = (next, 0);
        }

        // A zero-byte read only waits for data; the frame stays for the next read.
        var n = Math.Min(buffer.Length, _frame.Length - _offset);
        _frame.AsSpan(_offset, n).CopyTo(buffer.Span);
        _offset += n;
        var end = _offset == _frame.Length && buffer.Length > 0;
        if (end)
        {
            _frame = null;
        }

        return new ValueWebSocketReceiveResult(n, WebSocketMessageType.Text, end);
    }

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await ReceiveAsync(buffer.AsMemory(), cancellationToken);
        return new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
    }

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            ThrowIfAborted();
            _closeStatus = closeStatus;
            _state = _state == WebSocketState.CloseReceived ? WebSocketState.Closed : WebSocketState.CloseSent;
        }

        _incoming.Writer.TryWrite(null);
        return Task.CompletedTask;
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override void Dispose()
    {
    }

    private void ThrowIfAborted()
    {
        if (_state == WebSocketState.Aborted)
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely);
        }
    }
}
