using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json.Nodes;

namespace Tidings.Client.Bayeux;

/// <summary>
/// Bayeux over one WebSocket: a receive loop hands each message (a batch) to the sink, sends are serialized.
/// A message over <c>MaxMessageBytes</c> is read to its end, dropped and reported; the socket stays up.
/// </summary>
internal sealed class WebSocketTransport : BayeuxTransport
{
    private readonly ClientWebSocket _socket;
    private readonly int _maxMessageBytes;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private WebSocketTransport(ClientWebSocket socket, IBayeuxTransportSink sink, int maxMessageBytes)
        : base(sink)
    {
        _socket = socket;
        _maxMessageBytes = maxMessageBytes;
    }

    public override string ConnectionType => "websocket";

    public override bool RepliesInResponse => false;

    public override Task Closed => _closed.Task;

    /// <summary>Opens the socket (<c>http</c> → <c>ws</c>) and starts receiving.</summary>
    public static async Task<WebSocketTransport> ConnectAsync(Uri endpoint, HttpMessageInvoker? invoker, Action<ClientWebSocketOptions> configure,
        IBayeuxTransportSink sink, int maxMessageBytes, CancellationToken cancellationToken)
    {
        var builder = new UriBuilder(endpoint) { Scheme = endpoint.Scheme == Uri.UriSchemeHttps ? "wss" : "ws" };
        var socket = new ClientWebSocket();
        configure(socket.Options);
        try
        {
            await socket.ConnectAsync(builder.Uri, invoker, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var transport = new WebSocketTransport(socket, sink, maxMessageBytes);
        _ = transport.ReceiveLoopAsync();
        return transport;
    }

    public override async Task SendAsync(JsonArray batch, CancellationToken cancellationToken)
    {
        if (_closed.Task.IsCompleted)
        {
            throw new BayeuxTransportException("the WebSocket is closed");
        }

        var bytes = System.Text.Encoding.UTF8.GetBytes(batch.ToJsonString());
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            Fail(ex);
            throw new BayeuxTransportException("WebSocket send failed", ex);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        var stop = _stopping.Token;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                buffer.ResetWrittenCount();
                var oversized = false;
                long total = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    var memory = oversized ? buffer.GetMemory(4096)[..4096] : buffer.GetMemory(4096);
                    result = await _socket.ReceiveAsync(memory, stop);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        Fail(new BayeuxTransportException($"the server closed the WebSocket ({_socket.CloseStatus} {_socket.CloseStatusDescription})"));
                        return;
                    }

                    total += result.Count;
                    if (!oversized)
                    {
                        buffer.Advance(result.Count);
                        if (buffer.WrittenCount > _maxMessageBytes)
                        {
                            // Keep reading to the message's end into one scratch block, then drop it.
                            oversized = true;
                            buffer.ResetWrittenCount();
                        }
                    }
                }
                while (!result.EndOfMessage);

                if (oversized)
                {
                    Sink.ReportBadInput($"a WebSocket message of {total} bytes, over the limit of {_maxMessageBytes} (MaxMessageBytes)");
                    continue;
                }

                if (result.MessageType != WebSocketMessageType.Text)
                {
                    Sink.ReportBadInput("a binary WebSocket message");
                    continue;
                }

                if (Parse(buffer.WrittenSpan) is { Count: > 0 } messages)
                {
                    await Sink.ReceiveAsync(messages, stop);
                }

                if (buffer.Capacity > 64 * 1024)
                {
                    // Do not hold a large buffer while idle.
                    buffer = new ArrayBufferWriter<byte>(4096);
                }
            }
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
    }

    private void Fail(Exception reason)
    {
        if (_closed.TrySetException(reason is BayeuxTransportException ? reason : new BayeuxTransportException("the WebSocket failed", reason)))
        {
            _closed.Task.Exception?.Handle(_ => true); // observed through Closed by whoever cares
        }
    }

    public override async ValueTask DisposeAsync()
    {
        Fail(new BayeuxTransportException("the WebSocket was closed by the client"));
        await _stopping.CancelAsync();
        if (_socket.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        _socket.Abort();
        _socket.Dispose();
        _stopping.Dispose();
    }
}
