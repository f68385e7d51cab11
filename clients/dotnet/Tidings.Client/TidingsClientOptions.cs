using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Tidings.Client;

/// <summary>Which Bayeux transports the client may use.</summary>
public enum BayeuxTransportKind
{
    /// <summary>WebSocket, falling back to long-polling when the socket cannot be opened.</summary>
    Auto,

    /// <summary>Only WebSocket.</summary>
    WebSocket,

    /// <summary>Only HTTP long-polling (e.g. behind proxies that refuse upgrades).</summary>
    LongPolling,
}

/// <summary>Where a live collection sends its writes.</summary>
public enum WriteChannel
{
    /// <summary><c>POST</c>/<c>PATCH</c>/<c>PUT</c>/<c>DELETE</c> over HTTP.</summary>
    Rest,

    /// <summary>A Bayeux publish on the collection's channel; the reply carries the outcome.</summary>
    Socket,
}

/// <summary>
/// Settings of a <see cref="TidingsClient"/>. Defaults are the named constants; every queue and size has a limit.
/// </summary>
public sealed class TidingsClientOptions
{
    public const string DefaultBayeuxPath = "/bayeux";
    public static readonly TimeSpan DefaultWriteTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultConnectTimeoutMargin = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultMinReconnectDelay = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan DefaultMaxReconnectDelay = TimeSpan.FromSeconds(5);
    public const int DefaultMaxMessageBytes = 4 * 1024 * 1024;
    public const int DefaultMaxPendingPublishes = 1000;
    public const int DefaultMaxQueuedDeliveries = 10_000;
    public const int DefaultMaxHeldEvents = 1000;
    public const int DefaultChangeBufferSize = 10_000;

    /// <summary>
    /// A bearer token: sent as <c>Authorization: Bearer</c> on REST and as <c>ext.token</c> on the Bayeux handshake.
    /// <see cref="TokenProvider"/> wins when both are set.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>Asked for the token before every request and handshake (for tokens that are refreshed).</summary>
    public Func<string?>? TokenProvider { get; set; }

    /// <summary>
    /// Cookies for cookie sign-in (used when the client makes its own handler; with <see cref="HttpMessageHandler"/>,
    /// configure cookies on that handler). Requests carry <c>X-Requested-With</c>, which the server's CSRF check asks of
    /// non-browser cookie clients.
    /// </summary>
    public CookieContainer? Cookies { get; set; }

    /// <summary>
    /// The handler for REST, long-polling and (when it is a <see cref="SocketsHttpHandler"/> or ends in one) WebSockets.
    /// The client does not dispose it.
    /// </summary>
    public HttpMessageHandler? HttpMessageHandler { get; set; }

    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Where the Bayeux endpoint is, relative to the server address.</summary>
    public string BayeuxPath { get; set; } = DefaultBayeuxPath;

    public BayeuxTransportKind Transport { get; set; } = BayeuxTransportKind.Auto;

    /// <summary>Asks the server for the ack extension: deliveries re-sent until acknowledged, so a cut loses nothing.</summary>
    public bool UseAckExtension { get; set; } = true;

    /// <summary>Where live collections send writes (each collection may override it).</summary>
    public WriteChannel Writes { get; set; } = WriteChannel.Rest;

    /// <summary>
    /// How long a write may take, counted from the call, offline time and retries included; then it fails with status
    /// 408 and its optimistic change is rolled back.
    /// </summary>
    public TimeSpan WriteTimeout { get; set; } = DefaultWriteTimeout;

    /// <summary>Timeout of one REST request and of one Bayeux request other than <c>/meta/connect</c>.</summary>
    public TimeSpan RequestTimeout { get; set; } = DefaultRequestTimeout;

    /// <summary>How much longer than the server's <c>advice.timeout</c> a held connect may take before the link counts as dead.</summary>
    public TimeSpan ConnectTimeoutMargin { get; set; } = DefaultConnectTimeoutMargin;

    /// <summary>First reconnect delay; doubled per failed attempt up to <see cref="MaxReconnectDelay"/>, with full jitter.</summary>
    public TimeSpan MinReconnectDelay { get; set; } = DefaultMinReconnectDelay;

    public TimeSpan MaxReconnectDelay { get; set; } = DefaultMaxReconnectDelay;

    /// <summary>The largest WebSocket message or long-polling response accepted; a larger one is reported and dropped.</summary>
    public int MaxMessageBytes { get; set; } = DefaultMaxMessageBytes;

    /// <summary>Publishes waiting for a connection; more fail at once with status 503.</summary>
    public int MaxPendingPublishes { get; set; } = DefaultMaxPendingPublishes;

    /// <summary>
    /// Received messages waiting for their handlers. When full the client stops reading from the network, so a slow
    /// handler slows the server's queue for this session (which resyncs it when it overflows) rather than memory.
    /// </summary>
    public int MaxQueuedDeliveries { get; set; } = DefaultMaxQueuedDeliveries;

    /// <summary>Events past a gap held while the gap is fetched; one more and the collection reloads instead.</summary>
    public int MaxHeldEvents { get; set; } = DefaultMaxHeldEvents;

    /// <summary>Changes buffered for each <c>ChangesAsync</c> reader; a reader that falls further behind gets an error.</summary>
    public int ChangeBufferSize { get; set; } = DefaultChangeBufferSize;

    /// <summary>
    /// Serializer settings for records (<c>CollectionAsync&lt;T&gt;</c>). For trimming and AOT, give it a
    /// source-generated <c>JsonSerializerContext</c> that knows your record types (<c>TypeInfoResolver</c>).
    /// </summary>
    public JsonSerializerOptions JsonSerializerOptions { get; set; } = new(JsonSerializerDefaults.Web);

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal string? CurrentToken() => TokenProvider is { } provider ? provider() : Token;
}
