using System.Buffers;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Bayeux.Transports;

/// <summary>
/// One WebSocket carrying Bayeux batches. A receive loop hands batches to the server; a send loop is
/// the only writer, draining a byte-capped outbox of replies and deliveries into one frame per wake-up.
/// Deliveries keep their shared serialized bytes: a lone delivery is sent as its pre-built frame, no copy.
/// Idle connections hold no buffer: the receive loop waits with a zero-byte read.
/// </summary>
internal sealed class WebSocketConnection : ISessionTransport
{
    private const int InitialReceiveBuffer = 4096;

    private readonly WebSocket _socket;
    private readonly BayeuxServer _server;
    private readonly BayeuxTransportContext _transport;
    private readonly CancellationTokenSource _aborted = new();
    private readonly Lock _gate = new();
    private readonly Queue<Outbound> _outbox = new();

    // The outbox plus the batch the send loop is writing: bytes stay the client's until the network has them.
    private long _outboxBytes;
    private readonly WakeSignal _wake = new();
    private (WebSocketCloseStatus Status, string Reason)? _closeRequest;
    private BayeuxSession? _session;

    public WebSocketConnection(WebSocket socket, BayeuxServer server, HttpContext httpContext)
    {
        _socket = socket;
        _server = server;
        _transport = new BayeuxTransportContext(httpContext, "websocket", this, _aborted.Token);
    }

    /// <summary>Binds the session whose deliveries this socket pushes: the first one seen, or a newer one after it closed.</summary>
    public bool TryBind(BayeuxSession session)
    {
        lock (_gate)
        {
            if (_session is null || _session.IsClosed)
            {
                _session = session;
            }

            return ReferenceEquals(_session, session);
        }
    }

    /// <summary>
    /// Binds a session handshaken on this socket. The client has abandoned the one bound before (a client uses one
    /// session per socket), which is returned for the server to end.
    /// </summary>
    public BayeuxSession? BindHandshake(BayeuxSession session)
    {
        lock (_gate)
        {
            var previous = _session;
            _session = session;
            return previous is { IsClosed: false } && !ReferenceEquals(previous, session) ? previous : null;
        }
    }

    /// <summary>The bytes queued for the client and not yet sent, the batch being written included.</summary>
    public long QueuedBytes
    {
        get
        {
            lock (_gate)
            {
                return _outboxBytes;
            }
        }
    }

    /// <summary>Queues a delivery; false when the outbox is over <see cref="BayeuxOptions.MaxQueuedBytes"/>.</summary>
    public bool TryEnqueue(Delivery delivery) => TryEnqueue(new Outbound(delivery, null));

    /// <summary>
    /// Removes the deliveries not yet sent, for the session to keep until the client returns. A batch being
    /// written stays with the send loop (it may still arrive); one whose write failed is back in the outbox.
    /// </summary>
    public List<Delivery> TakeUnsentDeliveries()
    {
        lock (_gate)
        {
            var unsent = new List<Delivery>();
            foreach (var item in _outbox)
            {
                if (item.Delivery is { } delivery)
                {
                    unsent.Add(delivery);
                }

                _outboxBytes -= item.Size;
            }

            _outbox.Clear();
            return unsent;
        }
    }

    /// <summary>Closes the socket after what is queued (used when the session broke a limit).</summary>
    public void CloseForPolicy(string reason) => RequestClose(WebSocketCloseStatus.PolicyViolation, reason);

    /// <summary>Closes the socket because the server is stopping.</summary>
    public void CloseGoingAway() => RequestClose(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");

    public async Task RunAsync()
    {
        _server.Track(this, open: true);
        var receiving = ReceiveLoopAsync();
        var sending = SendLoopAsync();
        try
        {
            var first = await Task.WhenAny(receiving, sending);
            if (first == receiving)
            {
                // The client closed (or vanished, or the loop failed): answer its close, then stop sending.
                RequestClose(receiving.IsFaulted ? WebSocketCloseStatus.InternalServerError : WebSocketCloseStatus.NormalClosure, "closing");
                await WaitOrAbortAsync(sending);
            }
            else
            {
                // We closed: give the client a moment to answer the close frame.
                await WaitOrAbortAsync(receiving);
            }
        }
        finally
        {
            await _aborted.CancelAsync();
            lock (_gate)
            {
                _wake.Set();
            }

            try
            {
                await Task.WhenAll(receiving, sending);
            }
            catch (Exception ex)
            {
                BayeuxLog.SocketFailed(_server.Logger, ex);
            }

            // Whatever happened, the session must stop pointing at this socket and keep what it had not sent.
            _session?.DetachSocket(this);
            _server.Track(this, open: false);
            _socket.Dispose();
        }
    }

    private async Task WaitOrAbortAsync(Task other)
    {
        var timeout = Task.Delay(_server.Options.WebSocketCloseTimeout, _server.Time);
        if (await Task.WhenAny(other, timeout) != other)
        {
            _socket.Abort();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var token = _aborted.Token;
        var maxBytes = _server.Options.MaxRequestBytes;
        try
        {
            while (!token.IsCancellationRequested)
            {
                // Wait for data without holding a buffer, so idle connections stay small.
                var peek = await _socket.ReceiveAsync(Memory<byte>.Empty, token);
                if (peek.MessageType == WebSocketMessageType.Close)
                {
                    BayeuxLog.SocketClosed(_server.Logger, "client closed");
                    return;
                }

                var buffer = ArrayPool<byte>.Shared.Rent(InitialReceiveBuffer);
                var length = 0;
                try
                {
                    while (true)
                    {
                        if (length == buffer.Length)
                        {
                            if (buffer.Length >= maxBytes + 1)
                            {
                                RequestClose(WebSocketCloseStatus.MessageTooBig, $"Message larger than {maxBytes} bytes (Bayeux:MaxRequestBytes)");
                                return;
                            }

                            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxBytes + 1));
                            buffer.AsSpan(0, length).CopyTo(bigger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = bigger;
                        }

                        var result = await _socket.ReceiveAsync(buffer.AsMemory(length), token);
                        if (result.MessageType == WebSocketMessageType.Close)
                        {
                            return;
                        }

                        length += result.Count;
                        if (length > maxBytes)
                        {
                            RequestClose(WebSocketCloseStatus.MessageTooBig, $"Message larger than {maxBytes} bytes (Bayeux:MaxRequestBytes)");
                            return;
                        }

                        if (result.EndOfMessage)
                        {
                            break;
                        }
                    }

                    var options = _server.Options;
                    if (!MessageParser.TryParse(buffer.AsSpan(0, length), options.MaxMessageBytes, options.MaxMessagesPerBatch, out var messages, out var error))
                    {
                        BayeuxLog.RequestRejected(_server.Logger, error!);
                        EnqueueReplies([new BayeuxReply(string.Empty, null).Fail(BayeuxHttpHandler.AsBayeuxError(error!))], null);
                        continue;
                    }

                    var outcome = await _server.HandleAsync(messages, _transport, token);
                    EnqueueReplies(outcome.Replies, null);
                    if (outcome.Connect is { } connect)
                    {
                        _ = CompleteConnectAsync(connect, token);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            BayeuxLog.SocketClosed(_server.Logger, ex.Message);
        }
    }

    private async Task CompleteConnectAsync(HeldConnect connect, CancellationToken token)
    {
        try
        {
            var completion = await _server.CompleteConnectAsync(connect, token);
            if (completion.Reply is { } reply)
            {
                EnqueueReplies([reply], completion.Deliveries);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            BayeuxLog.ConnectCompletionFailed(_server.Logger, connect.Session.Id, ex);
        }
        catch (OperationCanceledException)
        {
            // The socket closed while the connect was held; nobody is left to answer.
        }
    }

    /// <summary>Queues deliveries then replies as one unit, so they leave in one frame and in order.</summary>
    private void EnqueueReplies(IReadOnlyList<BayeuxReply> replies, List<Delivery>? deliveries)
    {
        var overflow = false;
        lock (_gate)
        {
            foreach (var delivery in deliveries ?? [])
            {
                overflow |= !TryEnqueueLocked(new Outbound(delivery, null));
            }

            foreach (var reply in replies)
            {
                overflow |= !TryEnqueueLocked(new Outbound(null, reply.ToUtf8()));
            }
        }

        if (overflow && _session is { } session)
        {
            _server.CloseSession(session, SessionCloseReason.QueueOverflow);
        }
    }

    private bool TryEnqueue(Outbound item)
    {
        lock (_gate)
        {
            return TryEnqueueLocked(item);
        }
    }

    private bool TryEnqueueLocked(Outbound item)
    {
        if (_outboxBytes + item.Size > _server.Options.MaxQueuedBytes)
        {
            return false;
        }

        _outbox.Enqueue(item);
        _outboxBytes += item.Size;
        _wake.Set();
        return true;
    }

    private void RequestClose(WebSocketCloseStatus status, string reason)
    {
        lock (_gate)
        {
            _closeRequest ??= (status, reason);
            _wake.Set();
        }
    }

    private ValueTask WaitForWorkAsync()
    {
        lock (_gate)
        {
            if (_outbox.Count > 0 || _closeRequest is not null || _aborted.IsCancellationRequested)
            {
                return ValueTask.CompletedTask;
            }

            return _wake.Arm();
        }
    }

    private async Task SendLoopAsync()
    {
        var token = _aborted.Token;
        try
        {
            while (true)
            {
                await WaitForWorkAsync();
                Outbound[] items;
                int count;
                long bytes = 0;
                (WebSocketCloseStatus Status, string Reason)? close;
                lock (_gate)
                {
                    count = _outbox.Count;
                    items = count == 0 ? [] : ArrayPool<Outbound>.Shared.Rent(count);
                    for (var i = 0; i < count; i++)
                    {
                        items[i] = _outbox.Dequeue();
                        bytes += items[i].Size;
                    }

                    close = _closeRequest;
                }

                if (count > 0)
                {
                    var sent = false;
                    try
                    {
                        await SendBatchAsync(items, count, token);
                        sent = true;
                    }
                    finally
                    {
                        FinishBatch(items, count, bytes, sent);
                        Array.Clear(items, 0, count);
                        ArrayPool<Outbound>.Shared.Return(items);
                    }
                }

                if (close is { } c)
                {
                    if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                    {
                        using var timeout = new CancellationTokenSource(_server.Options.WebSocketCloseTimeout, _server.Time);
                        await _socket.CloseOutputAsync(c.Status, c.Reason, timeout.Token);
                    }

                    return;
                }

                if (token.IsCancellationRequested)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            BayeuxLog.SocketClosed(_server.Logger, ex.Message);
        }
    }

    /// <summary>
    /// A sent batch frees its room; a failed one goes back to the front of the outbox, still counted, for
    /// <see cref="TakeUnsentDeliveries"/> to hand to the session when it lets go of this socket.
    /// </summary>
    private void FinishBatch(Outbound[] items, int count, long bytes, bool sent)
    {
        lock (_gate)
        {
            if (sent)
            {
                _outboxBytes -= bytes;
                return;
            }

            var newer = _outbox.ToArray();
            _outbox.Clear();
            for (var i = 0; i < count; i++)
            {
                _outbox.Enqueue(items[i]);
            }

            foreach (var item in newer)
            {
                _outbox.Enqueue(item);
            }
        }
    }

    private ValueTask SendBatchAsync(Outbound[] items, int count, CancellationToken token)
    {
        if (count == 1 && items[0].Delivery is { } only)
        {
            return _socket.SendAsync(only.Frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, token);
        }

        return SendCopiedAsync(items, count, token);
    }

    private async ValueTask SendCopiedAsync(Outbound[] items, int count, CancellationToken token)
    {
        var total = 1 + count;
        for (var i = 0; i < count; i++)
        {
            total += items[i].Message.Length;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var n = 0;
            buffer[n++] = (byte)'[';
            for (var i = 0; i < count; i++)
            {
                if (i > 0)
                {
                    buffer[n++] = (byte)',';
                }

                items[i].Message.Span.CopyTo(buffer.AsSpan(n));
                n += items[i].Message.Length;
            }

            buffer[n++] = (byte)']';
            await _socket.SendAsync(buffer.AsMemory(0, n), WebSocketMessageType.Text, endOfMessage: true, token);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A reply (per-session bytes) or a delivery (bytes shared by every recipient).</summary>
    private readonly record struct Outbound(Delivery? Delivery, byte[]? Reply)
    {
        public ReadOnlyMemory<byte> Message => Delivery?.Message ?? Reply;

        public int Size => Delivery?.Size ?? Reply!.Length;
    }
}
