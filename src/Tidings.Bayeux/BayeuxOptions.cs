namespace Tidings.Bayeux;

/// <summary>
/// Settings for the Bayeux endpoint. Every limit is named here, and error messages that enforce a
/// limit name the setting to change (e.g. <c>Bayeux:MaxMessageBytes</c>).
/// </summary>
public sealed class BayeuxOptions
{
    public const string SectionName = "Bayeux";

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DefaultSessionGrace = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultSweepInterval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan DefaultWebSocketKeepAlive = TimeSpan.FromSeconds(25);
    public static readonly TimeSpan DefaultWebSocketCloseTimeout = TimeSpan.FromSeconds(5);
    public const int DefaultMaxMessageBytes = 64 * 1024;
    public const int DefaultMaxRequestBytes = 1024 * 1024;
    public const int DefaultMaxMessagesPerBatch = 100;
    public const int DefaultMaxQueuedBytes = 1024 * 1024;
    public const int DefaultMaxSubscriptionsPerSession = 1000;
    public const int DefaultMaxSessions = 200_000;
    public const int DefaultMaxInnerWildcardsPerSession = 32;
    public const int DefaultMaxSessionsPerAddress = 1000;

    /// <summary>How long a <c>/meta/connect</c> is held open when nothing arrives (<c>advice.timeout</c>).</summary>
    public TimeSpan ConnectTimeout { get; set; } = DefaultConnectTimeout;

    /// <summary>How long a client should wait between connects (<c>advice.interval</c>); zero means at once.</summary>
    public TimeSpan ReconnectInterval { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// A session expires when no connect arrives within <see cref="ConnectTimeout"/> plus this grace after
    /// its last one ended. Deliveries for it are kept (up to <see cref="MaxQueuedBytes"/>) meanwhile.
    /// </summary>
    public TimeSpan SessionGrace { get; set; } = DefaultSessionGrace;

    /// <summary>How often expired sessions are looked for.</summary>
    public TimeSpan SweepInterval { get; set; } = DefaultSweepInterval;

    /// <summary>The largest single message accepted; a larger one gets a 413 error reply.</summary>
    public int MaxMessageBytes { get; set; } = DefaultMaxMessageBytes;

    /// <summary>The largest HTTP body or WebSocket message accepted (HTTP 413 / close 1009 beyond it).</summary>
    public int MaxRequestBytes { get; set; } = DefaultMaxRequestBytes;

    /// <summary>The most messages one request or frame may carry.</summary>
    public int MaxMessagesPerBatch { get; set; } = DefaultMaxMessagesPerBatch;

    /// <summary>
    /// Bytes of undelivered (or, with the ack extension, unacknowledged) messages a session may hold.
    /// Past it the session is closed and the client told to handshake again, so a slow consumer costs
    /// bounded memory and never delays others.
    /// </summary>
    public int MaxQueuedBytes { get; set; } = DefaultMaxQueuedBytes;

    public int MaxSubscriptionsPerSession { get; set; } = DefaultMaxSubscriptionsPerSession;

    /// <summary>
    /// Subscriptions with an inner <c>*</c> (<c>/api/flows/*/messages</c>) one session may hold. Their number across
    /// sessions costs nothing per publish (they are found in a tree of segments), so this is a per-session budget —
    /// one client cannot use up anyone else's — that bounds the tree's memory with <see cref="MaxSessions"/>.
    /// </summary>
    public int MaxInnerWildcardsPerSession { get; set; } = DefaultMaxInnerWildcardsPerSession;

    /// <summary>Live sessions the server accepts; handshakes beyond it are refused.</summary>
    public int MaxSessions { get; set; } = DefaultMaxSessions;

    /// <summary>
    /// Live sessions one client address may hold; its handshakes beyond it are refused (<c>429</c>) until one ends. Behind a
    /// proxy, enable ASP.NET Core's forwarded headers so the address is the client's.
    /// </summary>
    public int MaxSessionsPerAddress { get; set; } = DefaultMaxSessionsPerAddress;

    /// <summary>Interval of WebSocket ping frames; zero turns them off.</summary>
    public TimeSpan WebSocketKeepAlive { get; set; } = DefaultWebSocketKeepAlive;

    /// <summary>How long a WebSocket close handshake may take before the connection is aborted.</summary>
    public TimeSpan WebSocketCloseTimeout { get; set; } = DefaultWebSocketCloseTimeout;

    /// <summary>
    /// Origins (e.g. <c>https://app.example.com</c>) allowed to open WebSockets and to receive CORS headers (with
    /// credentials). Empty: WebSockets from any origin (a cross-site cookie handshake is still refused), and CORS
    /// headers for this site's own origin only, so no other site reads <c>/bayeux</c> answers through a browser.
    /// </summary>
    public IList<string> AllowedOrigins { get; } = [];

    /// <summary>Whether clients may enable the CometD acknowledgement extension (<c>ext.ack</c>).</summary>
    public bool EnableAckExtension { get; set; } = true;

    /// <summary>
    /// This node's name when several nodes serve one app behind a load balancer. A handshake then sets the cookie
    /// <see cref="NodeCookie"/> to it, so the balancer can send the session's later requests (long-polling sends each
    /// one separately) to the node that holds the session. Null (one node): no cookie.
    /// </summary>
    public string? NodeId { get; set; }

    /// <summary>The name of the node-affinity cookie a handshake sets when <see cref="NodeId"/> is set.</summary>
    public string NodeCookie { get; set; } = "tidings_node";

    internal bool IsOriginAllowed(string? origin) =>
        AllowedOrigins.Count == 0 || (origin is not null && AllowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase));
}
