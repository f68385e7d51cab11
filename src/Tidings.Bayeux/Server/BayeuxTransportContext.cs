using Microsoft.AspNetCore.Http;

namespace Tidings.Bayeux.Server;

/// <summary>Where a batch of messages came from: the HTTP request (or WebSocket upgrade) and its transport.</summary>
public sealed class BayeuxTransportContext
{
    internal BayeuxTransportContext(HttpContext httpContext, string connectionType, ISessionTransport? socket, CancellationToken aborted)
    {
        HttpContext = httpContext;
        ConnectionType = connectionType;
        Socket = socket;
        Aborted = aborted;
    }

    /// <summary>The request that carried the messages; for WebSocket, the upgrade request.</summary>
    public HttpContext HttpContext { get; }

    /// <summary><c>websocket</c>, <c>long-polling</c> or <c>callback-polling</c>.</summary>
    public string ConnectionType { get; }

    /// <summary>The push transport the messages came on (a WebSocket); null for long-polling.</summary>
    internal ISessionTransport? Socket { get; }

    /// <summary>Signalled when the client goes away (request aborted, socket closed).</summary>
    public CancellationToken Aborted { get; }
}
