using Microsoft.AspNetCore.Http;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Sees every message in and every reply out, with the HTTP request and the session: the place for
/// authentication, <c>ext</c> fields and policies. Extensions run in registration order; an incoming
/// extension refuses a message with <see cref="BayeuxIncoming.Refuse"/>, which becomes its error reply.
/// </summary>
public interface IBayeuxExtension
{
    ValueTask IncomingAsync(BayeuxIncoming incoming, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    ValueTask OutgoingAsync(BayeuxOutgoing outgoing, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>A client message about to be handled.</summary>
public sealed class BayeuxIncoming(BayeuxMessage message, BayeuxSession? session, BayeuxTransportContext transport)
{
    public BayeuxMessage Message { get; } = message;

    /// <summary>The sender's session; null for a handshake or an unknown client id.</summary>
    public BayeuxSession? Session { get; } = session;

    public HttpContext HttpContext => Transport.HttpContext;
    public BayeuxTransportContext Transport { get; } = transport;

    /// <summary>
    /// For a handshake: the user the new session is bound to for its whole life. Starts as the request's
    /// <c>HttpContext.User</c>; an extension may replace it (a token in <c>ext</c>) or reduce it to anonymous.
    /// </summary>
    public System.Security.Claims.ClaimsPrincipal User { get; set; } = transport.HttpContext.User;

    /// <summary>The refusal, when an extension refused the message.</summary>
    public string? Error { get; private set; }

    /// <summary>Refuses the message with a <c>code:args:message</c> error (see <see cref="BayeuxError"/>).</summary>
    public void Refuse(string error) => Error = error;
}

/// <summary>A reply about to be sent.</summary>
public sealed class BayeuxOutgoing(BayeuxMessage request, BayeuxReply reply, BayeuxSession? session, BayeuxTransportContext transport)
{
    public BayeuxMessage Request { get; } = request;
    public BayeuxReply Reply { get; } = reply;

    /// <summary>The session; for a successful handshake, the new one.</summary>
    public BayeuxSession? Session { get; } = session;

    public HttpContext HttpContext => Transport.HttpContext;
    public BayeuxTransportContext Transport { get; } = transport;
}
