using Microsoft.AspNetCore.Http;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Takes over a family of channels: client publishes there are handed to <see cref="PublishAsync"/>
/// instead of being broadcast, and subscriptions go through <see cref="SubscribeAsync"/>, which decides
/// when the subscription becomes live — so it can send a private catch-up first, atomically with the live
/// stream. Live collections use this; the Bayeux layer knows nothing about what the channels mean.
/// </summary>
public interface IBayeuxChannelHandler
{
    /// <summary>True for the concrete channels and patterns this handler is responsible for.</summary>
    bool Owns(string channelOrPattern);

    /// <summary>Handles a client's publish to an owned channel; the reply says success or error.</summary>
    ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken);

    /// <summary>
    /// Handles a subscription to an owned channel or pattern: call <see cref="BayeuxSubscribeContext.Activate"/>
    /// when it should start receiving the live stream, or <see cref="BayeuxSubscribeContext.Refuse"/>.
    /// Returning without either activates it.
    /// </summary>
    ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken);
}

/// <summary>One pattern of a <c>/meta/subscribe</c> request, as seen by an <see cref="IBayeuxChannelHandler"/>.</summary>
public sealed class BayeuxSubscribeContext
{
    private readonly Action _activate;

    internal BayeuxSubscribeContext(BayeuxMessage message, string pattern, BayeuxSession session, BayeuxTransportContext transport, Action activate)
    {
        Message = message;
        Pattern = pattern;
        Session = session;
        Transport = transport;
        _activate = activate;
    }

    public BayeuxMessage Message { get; }
    public string Pattern { get; }
    public BayeuxSession Session { get; }
    public BayeuxTransportContext Transport { get; }
    public HttpContext HttpContext => Transport.HttpContext;

    public bool IsActive { get; private set; }
    public string? Error { get; private set; }

    /// <summary>Sends a message to this subscriber only (catch-up, initial state), in order with what follows.</summary>
    public void Send(Delivery delivery) => Session.Send(delivery);

    /// <summary>Adds the subscription to the live stream; everything published afterwards reaches the session.</summary>
    public void Activate()
    {
        if (!IsActive && Error is null)
        {
            IsActive = true;
            _activate();
        }
    }

    /// <summary>Refuses the subscription with a <c>code:args:message</c> error; the session is not subscribed.</summary>
    public void Refuse(string error)
    {
        if (!IsActive)
        {
            Error = error;
        }
    }
}
