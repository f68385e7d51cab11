using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tidings.Client.Bayeux;

/// <summary>
/// A Bayeux client: handshake, a connect loop, subscribe, unsubscribe, publish, disconnect and an extension
/// pipeline; WebSocket with long-polling fallback; the ack extension. Works with Tidings and with other Bayeux
/// servers (Faye, CometD) for plain publish/subscribe.
/// </summary>
/// <remarks>
/// One loop owns the session: it handshakes, keeps a <c>/meta/connect</c> outstanding, follows the server's
/// <c>advice</c> (<c>interval</c>, <c>timeout</c>, <c>reconnect: retry | handshake | none</c>) and, when the link fails,
/// retries with exponential backoff and full jitter. After every new handshake each subscription is sent again
/// (with its current <c>ext</c>, so a live collection asks for what it missed). Received deliveries go through one
/// bounded queue to the handlers, in order; replies are matched by id on the receiving path, never behind it.
/// </remarks>
public sealed partial class BayeuxClient : IAsyncDisposable, IBayeuxTransportSink
{
    private static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    private readonly Uri _endpoint;
    private readonly TidingsClientOptions _options;
    private readonly HttpClient _http;
    private readonly HttpMessageInvoker? _webSocketInvoker;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, PendingRequest> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ChannelSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly Channel<JsonObject> _deliveries;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _opening = new(1, 1);
    private IBayeuxClientExtension[] _extensions = [];

    private BayeuxTransport? _transport;
    private string? _clientId;
    private long _generation;
    private bool _ackEnabled;
    private long? _lastAck;
    private TimeSpan _adviceInterval = TimeSpan.Zero;
    private TimeSpan _adviceTimeout = DefaultConnectTimeout;
    private TaskCompletionSource<Session> _connected = NewSignal<Session>();
    private CancellationTokenSource? _heldConnect;
    private Task? _loop;
    private Task? _dispatch;
    private long _nextId;
    private int _waitingPublishes;
    private int _disposed;

    /// <param name="endpoint">The Bayeux endpoint, e.g. <c>http://127.0.0.1:5080/bayeux</c>.</param>
    /// <param name="options">Transport, limits, timeouts and credentials.</param>
    /// <param name="http">Carries long-polling; not disposed by this client.</param>
    /// <param name="webSocketInvoker">The handler WebSockets are opened through (cookies, certificates), or null for a plain socket.</param>
    public BayeuxClient(Uri endpoint, TidingsClientOptions? options = null, HttpClient? http = null, HttpMessageInvoker? webSocketInvoker = null)
    {
        _endpoint = endpoint;
        _options = options ?? new TidingsClientOptions();
        _http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        _webSocketInvoker = webSocketInvoker;
        _logger = (ILogger?)_options.LoggerFactory?.CreateLogger<BayeuxClient>() ?? NullLogger.Instance;
        _time = _options.TimeProvider;
        _deliveries = Channel.CreateBounded<JsonObject>(new BoundedChannelOptions(Math.Max(1, _options.MaxQueuedDeliveries))
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Raised (on the client's own threads) when <see cref="State"/> changes.</summary>
    public event EventHandler<BayeuxConnectionState>? StateChanged;

    /// <summary>Raised for problems that do not stop the client: bad input from the server, failing handlers, refused re-subscribes.</summary>
    public event EventHandler<BayeuxErrorEventArgs>? Error;

    public BayeuxConnectionState State { get; private set; } = BayeuxConnectionState.Disconnected;

    /// <summary>The current session's id, or null between sessions.</summary>
    public string? ClientId
    {
        get
        {
            lock (_gate)
            {
                return _clientId;
            }
        }
    }

    /// <summary>The connection type in use (<c>websocket</c>, <c>long-polling</c>), or null.</summary>
    public string? ConnectionType => _transport is { IsClosed: false } t ? t.ConnectionType : null;

    /// <summary>Whether the server accepted the ack extension for the current session.</summary>
    public bool AckEnabled => _ackEnabled;

    /// <summary>Adds an extension; outgoing messages pass extensions in the order added, incoming ones too.</summary>
    public void AddExtension(IBayeuxClientExtension extension)
    {
        lock (_gate)
        {
            _extensions = [.. _extensions, extension];
        }
    }

    /// <summary>Starts the client (if not started) and waits until a session is established.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        Start();
        await WaitConnectedAsync(cancellationToken);
    }

    private void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        lock (_gate)
        {
            if (_loop is not null)
            {
                return;
            }

            _loop = Task.Run(() => RunAsync(_stop.Token));
            _dispatch = Task.Run(() => DispatchAsync(_stop.Token));
        }
    }

    // ------------------------------------------------------------------------------------------------
    // The session loop

    private async Task RunAsync(CancellationToken stop)
    {
        var failures = 0;
        while (!stop.IsCancellationRequested)
        {
            var delay = TimeSpan.Zero;
            try
            {
                if (ClientId is null)
                {
                    SetState(failures == 0 && State != BayeuxConnectionState.Reconnecting ? BayeuxConnectionState.Connecting : BayeuxConnectionState.Reconnecting);
                    var outcome = await HandshakeAsync(stop);
                    if (outcome is null)
                    {
                        failures = 0;
                        continue;
                    }

                    if (outcome.Terminal)
                    {
                        Terminate(outcome.Error);
                        return;
                    }

                    delay = Backoff(failures++);
                }
                else
                {
                    delay = await ConnectOnceAsync(stop);
                    if (delay < TimeSpan.Zero)
                    {
                        return; // reconnect: none
                    }

                    failures = 0;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (IsLinkFailure(ex))
            {
                delay = Backoff(failures++);
                BayeuxClientLog.LinkFailed(_logger, ex.Message, delay);
                SetState(BayeuxConnectionState.Reconnecting);
                await DropTransportAsync();
            }

            if (delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(delay, _time, stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Null when a session was established; otherwise why not, and whether to give up.</summary>
    private async Task<HandshakeFailure?> HandshakeAsync(CancellationToken stop)
    {
        var transport = await EnsureTransportAsync(stop);
        var message = new JsonObject
        {
            ["channel"] = "/meta/handshake",
            ["version"] = "1.0",
            ["minimumVersion"] = "1.0",
            ["supportedConnectionTypes"] = new JsonArray("websocket", "long-polling"),
        };
        if (_options.UseAckExtension)
        {
            message["ext"] = new JsonObject { ["ack"] = true };
        }

        var reply = await SendOnAsync(transport, message, _options.RequestTimeout, stop);
        ReadAdvice(reply);
        if (!IsSuccessful(reply))
        {
            var error = (string?)reply["error"];
            BayeuxClientLog.HandshakeRefused(_logger, error);
            var code = ErrorCode(error);
            var terminal = Reconnect(reply) == "none" || (code is >= 400 and < 500 && code is not 429 and not 408);
            return new HandshakeFailure(TidingsException.FromBayeuxError(error, "handshake"), terminal);
        }

        var clientId = (string?)reply["clientId"];
        if (string.IsNullOrEmpty(clientId))
        {
            ((IBayeuxTransportSink)this).ReportBadInput("a handshake reply without clientId");
            return new HandshakeFailure(new TidingsException("handshake reply without clientId", 500), Terminal: false);
        }

        Session session;
        List<ChannelSubscription> subscriptions;
        lock (_gate)
        {
            _clientId = clientId;
            _generation++;
            _ackEnabled = reply["ext"]?["ack"] is JsonValue ack && ack.GetValueKind() == JsonValueKind.True;
            _lastAck = null;
            session = new Session(_generation, clientId);
            subscriptions = [.. _subscriptions.Values];
        }

        BayeuxClientLog.Handshaken(_logger, clientId, transport.ConnectionType, _ackEnabled);
        _connected.TrySetResult(session);
        SetState(BayeuxConnectionState.Connected);
        foreach (var subscription in subscriptions)
        {
            _ = ResubscribeAsync(subscription, stop);
        }

        return null;
    }

    /// <summary>One held connect. Returns how long to wait before the next one; negative to stop.</summary>
    private async Task<TimeSpan> ConnectOnceAsync(CancellationToken stop)
    {
        var transport = await EnsureTransportAsync(stop);
        string? clientId;
        CancellationTokenSource held;
        lock (_gate)
        {
            clientId = _clientId;
            held = _heldConnect = CancellationTokenSource.CreateLinkedTokenSource(stop);
        }

        if (clientId is null)
        {
            return TimeSpan.Zero;
        }

        var message = new JsonObject
        {
            ["channel"] = "/meta/connect",
            ["clientId"] = clientId,
            ["connectionType"] = transport.ConnectionType,
        };
        if (_ackEnabled && _lastAck is { } ack)
        {
            message["ext"] = new JsonObject { ["ack"] = ack };
        }

        JsonObject reply;
        try
        {
            reply = await SendOnAsync(transport, message, _adviceTimeout + _options.ConnectTimeoutMargin, held.Token);
        }
        catch (OperationCanceledException) when (held.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            return TimeSpan.Zero; // the session was found invalid elsewhere: handshake again
        }
        finally
        {
            lock (_gate)
            {
                if (ReferenceEquals(_heldConnect, held))
                {
                    _heldConnect = null;
                }
            }

            held.Dispose();
        }

        ReadAdvice(reply);
        var reconnect = Reconnect(reply);
        if (IsSuccessful(reply))
        {
            SetState(BayeuxConnectionState.Connected);
            if (reconnect == "none")
            {
                BayeuxClientLog.ReconnectNone(_logger);
                Terminate(null);
                return TimeSpan.FromTicks(-1);
            }

            return _adviceInterval;
        }

        if (reconnect == "none")
        {
            BayeuxClientLog.ReconnectNone(_logger);
            Terminate(TidingsException.FromBayeuxError((string?)reply["error"], "connect"));
            return TimeSpan.FromTicks(-1);
        }

        if (reconnect == "handshake" || ErrorCode((string?)reply["error"]) is 401 or 402)
        {
            BayeuxClientLog.SessionLost(_logger, clientId);
            DropSession(clientId);
            return _adviceInterval;
        }

        throw new BayeuxTransportException("connect refused: " + (string?)reply["error"]);
    }

    private async Task ResubscribeAsync(ChannelSubscription subscription, CancellationToken stop)
    {
        try
        {
            await EnsureSubscribedAsync(subscription, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (TidingsException ex)
        {
            BayeuxClientLog.ResubscribeFailed(_logger, subscription.Channel, ex.Message);
            RaiseError($"re-subscribing to {subscription.Channel} failed: {ex.Message}", ex);
            subscription.Refused?.Invoke(ex);
        }
    }

    private void Terminate(TidingsException? error)
    {
        lock (_gate)
        {
            _clientId = null;
            if (error is not null)
            {
                _connected.TrySetException(error);
            }
            else
            {
                _connected.TrySetCanceled();
            }
        }

        SetState(BayeuxConnectionState.Disconnected);
        _ = DropTransportAsync();
    }

    /// <summary>Forgets the session <paramref name="clientId"/> (if still current) so the loop handshakes again.</summary>
    private void DropSession(string? clientId)
    {
        CancellationTokenSource? held = null;
        lock (_gate)
        {
            if (clientId is null || !string.Equals(_clientId, clientId, StringComparison.Ordinal))
            {
                return;
            }

            _clientId = null;
            if (_connected.Task.IsCompleted)
            {
                _connected = NewSignal<Session>();
            }

            held = _heldConnect;
        }

        SetState(BayeuxConnectionState.Reconnecting);
        try
        {
            held?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private TimeSpan Backoff(int failures)
    {
        // Full jitter over an exponentially growing ceiling; never sooner than the server's interval.
        var ceiling = Math.Min(_options.MaxReconnectDelay.TotalMilliseconds,
            _options.MinReconnectDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failures, 16)));
        var jittered = TimeSpan.FromMilliseconds(_options.MinReconnectDelay.TotalMilliseconds / 2 + Random.Shared.NextDouble() * ceiling);
        return jittered > _adviceInterval ? jittered : _adviceInterval;
    }

    private void ReadAdvice(JsonObject reply)
    {
        if (reply["advice"] is not JsonObject advice)
        {
            return;
        }

        if (advice["interval"] is JsonValue interval && interval.TryGetValue<double>(out var ms) && ms >= 0)
        {
            _adviceInterval = TimeSpan.FromMilliseconds(Math.Min(ms, _options.MaxReconnectDelay.TotalMilliseconds * 12));
        }

        if (advice["timeout"] is JsonValue timeout && timeout.TryGetValue<double>(out var t) && t >= 0)
        {
            _adviceTimeout = TimeSpan.FromMilliseconds(Math.Min(t, TimeSpan.FromMinutes(10).TotalMilliseconds));
        }
    }

    private static string? Reconnect(JsonObject reply) =>
        reply["advice"] is JsonObject advice && advice["reconnect"] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    internal static bool IsSuccessful(JsonObject reply) =>
        reply["successful"] is JsonValue value && value.GetValueKind() == JsonValueKind.True;

    internal static int? ErrorCode(string? error) =>
        error is { Length: >= 3 } && int.TryParse(error.AsSpan(0, 3), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var code) ? code : null;

    private static bool IsLinkFailure(Exception ex) =>
        ex is BayeuxTransportException or TimeoutException or HttpRequestException or WebSocketException or IOException or System.Net.Sockets.SocketException
            or OperationCanceledException;

    // ------------------------------------------------------------------------------------------------
    // Transports

    private async Task<BayeuxTransport> EnsureTransportAsync(CancellationToken cancellationToken)
    {
        if (_transport is { IsClosed: false } current)
        {
            return current;
        }

        await _opening.WaitAsync(cancellationToken);
        try
        {
            return _transport is { IsClosed: false } opened ? opened : await OpenTransportAsync(cancellationToken);
        }
        finally
        {
            _opening.Release();
        }
    }

    private async Task<BayeuxTransport> OpenTransportAsync(CancellationToken cancellationToken)
    {
        await DropTransportAsync();
        BayeuxTransport transport;
        if (_options.Transport != BayeuxTransportKind.LongPolling)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.RequestTimeout);
                transport = await WebSocketTransport.ConnectAsync(_endpoint, _webSocketInvoker, ConfigureWebSocket, this,
                    _options.MaxMessageBytes, timeout.Token);
                _ = transport.Closed.ContinueWith(_ => FailPending(transport), CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            catch (Exception ex) when (_options.Transport == BayeuxTransportKind.Auto && !cancellationToken.IsCancellationRequested
                && ex is WebSocketException or HttpRequestException or OperationCanceledException or IOException or InvalidOperationException
                    or System.Net.Sockets.SocketException)
            {
                BayeuxClientLog.WebSocketUnavailable(_logger, ex.Message);
                transport = NewLongPolling();
            }
            catch (Exception ex) when (ex is WebSocketException or HttpRequestException or IOException or System.Net.Sockets.SocketException
                || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                throw new BayeuxTransportException("the WebSocket could not be opened", ex);
            }
        }
        else
        {
            transport = NewLongPolling();
        }

        _transport = transport;
        return transport;
    }

    private LongPollingTransport NewLongPolling() =>
        new(_http, _endpoint, PrepareRequest, this, _options.MaxMessageBytes);

    private void PrepareRequest(HttpRequestMessage request)
    {
        request.Headers.TryAddWithoutValidation("X-Requested-With", "XMLHttpRequest");
        if (_options.CurrentToken() is { Length: > 0 } token)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
    }

    private void ConfigureWebSocket(ClientWebSocketOptions socket)
    {
        socket.SetRequestHeader("X-Requested-With", "XMLHttpRequest");
        if (_webSocketInvoker is null && _options.Cookies is { } cookies)
        {
            socket.Cookies = cookies;
        }
    }

    private async Task DropTransportAsync()
    {
        var transport = Interlocked.Exchange(ref _transport, null);
        if (transport is not null)
        {
            FailPending(transport);
            await transport.DisposeAsync();
        }
    }

    private void FailPending(BayeuxTransport transport)
    {
        foreach (var (_, pending) in _pending)
        {
            if (ReferenceEquals(pending.Transport, transport))
            {
                pending.Reply.TrySetException(new BayeuxTransportException("the transport closed before the reply"));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Requests and replies

    /// <summary>Sends one message on <paramref name="transport"/> and waits for the reply with the same id.</summary>
    private async Task<JsonObject> SendOnAsync(BayeuxTransport transport, JsonObject message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        message["id"] = id;
        foreach (var extension in _extensions)
        {
            if (extension.Outgoing(message) is not { } changed)
            {
                throw new TidingsException($"an extension dropped the {(string?)message["channel"]} message", 0);
            }

            message = changed;
        }

        var pending = new PendingRequest(transport);
        _pending[id] = pending;
        using var deadline = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            await transport.SendAsync([message], linked.Token);
            if (transport.RepliesInResponse && !pending.Reply.Task.IsCompleted)
            {
                throw new BayeuxTransportException($"the response carried no reply to {(string?)message["channel"]}");
            }

            return await pending.Reply.Task.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no reply to {(string?)message["channel"]} within {timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Sends on the current transport, waiting for a session first.</summary>
    private async Task<(JsonObject Reply, Session Session)> SendInSessionAsync(Func<Session, JsonObject> build, CancellationToken cancellationToken)
    {
        var session = await WaitConnectedAsync(cancellationToken);
        var transport = await EnsureTransportAsync(cancellationToken);
        var reply = await SendOnAsync(transport, build(session), _options.RequestTimeout, cancellationToken);
        return (reply, session);
    }

    private Task<Session> WaitConnectedAsync(CancellationToken cancellationToken)
    {
        Start();
        Task<Session> connected;
        lock (_gate)
        {
            connected = _connected.Task;
        }

        return connected.WaitAsync(cancellationToken);
    }

    async ValueTask IBayeuxTransportSink.ReceiveAsync(IReadOnlyList<JsonObject> batch, CancellationToken cancellationToken)
    {
        foreach (var received in batch)
        {
            var message = received;
            foreach (var extension in _extensions)
            {
                message = extension.Incoming(message)!;
                if (message is null)
                {
                    break;
                }
            }

            if (message is null)
            {
                continue;
            }

            var channel = (string)message["channel"]!;
            if (BayeuxChannel.IsMeta(channel) || message.ContainsKey("successful"))
            {
                if (channel == "/meta/connect" && _ackEnabled && message["ext"]?["ack"] is JsonValue ack && ack.TryGetValue<long>(out var batchNumber))
                {
                    _lastAck = _lastAck is { } last && last > batchNumber ? last : batchNumber;
                }

                if (message["id"] is JsonValue idValue && idValue.TryGetValue<string>(out var id) && _pending.TryGetValue(id, out var pending))
                {
                    pending.Reply.TrySetResult(message);
                }
                else if (BayeuxChannel.IsMeta(channel) && channel is not ("/meta/connect" or "/meta/handshake" or "/meta/subscribe"
                    or "/meta/unsubscribe" or "/meta/disconnect"))
                {
                    ((IBayeuxTransportSink)this).ReportBadInput($"a message on unknown meta channel {channel}");
                }

                continue;
            }

            if (!message.ContainsKey("data"))
            {
                ((IBayeuxTransportSink)this).ReportBadInput($"a message on {channel} with neither data nor a reply");
                continue;
            }

            await _deliveries.Writer.WriteAsync(message, cancellationToken);
        }
    }

    void IBayeuxTransportSink.ReportBadInput(string what)
    {
        BayeuxClientLog.BadInput(_logger, what);
        RaiseError("bad input from the server: " + what, null);
    }

    internal void RaiseError(string message, Exception? exception)
    {
        try
        {
            Error?.Invoke(this, new BayeuxErrorEventArgs(message, exception));
        }
        catch (Exception ex)
        {
            BayeuxClientLog.HandlerFailed(_logger, "(error event)", ex);
        }
    }

    private void SetState(BayeuxConnectionState state)
    {
        lock (_gate)
        {
            if (State == state)
            {
                return;
            }

            State = state;
        }

        try
        {
            StateChanged?.Invoke(this, state);
        }
        catch (Exception ex)
        {
            BayeuxClientLog.HandlerFailed(_logger, "(state event)", ex);
        }
    }

    private static TaskCompletionSource<T> NewSignal<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await DisconnectCoreAsync();
        _stop.Dispose();
    }

    private sealed record Session(long Generation, string ClientId);

    private sealed record HandshakeFailure(TidingsException Error, bool Terminal);

    private sealed class PendingRequest(BayeuxTransport transport)
    {
        public BayeuxTransport Transport { get; } = transport;

        public TaskCompletionSource<JsonObject> Reply { get; } = NewSignal<JsonObject>();
    }
}

/// <summary>A problem the client reported and survived.</summary>
public sealed class BayeuxErrorEventArgs(string message, Exception? exception) : EventArgs
{
    public string Message { get; } = message;

    public Exception? Exception { get; } = exception;
}
