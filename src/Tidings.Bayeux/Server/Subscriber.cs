using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Anything a delivery can be handed to: a client session or a server-side subscription.
/// <see cref="Deliver"/> runs on the publisher's thread for every recipient, so it must not block,
/// do I/O or allocate per call; it queues and returns.
/// </summary>
public abstract class Subscriber
{
    internal abstract void Deliver(Delivery delivery);

    /// <summary>The client session a per-recipient <see cref="IDeliveryFilter"/> decides for; null for server code (not filtered).</summary>
    internal virtual BayeuxSession? Recipient => null;
}

/// <summary>
/// Stands in the subscription index for a session's inner-wildcard subscription that asked for pattern delivery
/// (<c>ext.delivery: "pattern"</c>, for CometD clients): what it is handed goes to the session on the pattern's own
/// channel. It is a subscriber of its own, so a session that also holds the concrete channel gets both messages —
/// one for each of its client-side listeners — while the session's other matching subscriptions still share one copy.
/// </summary>
internal sealed class PatternRecipient(BayeuxSession session, string pattern) : Subscriber
{
    internal override BayeuxSession Recipient => session;

    internal override void Deliver(Delivery delivery) => session.Deliver(delivery.OnPattern(pattern));
}

/// <summary>A subscription made by server code through <see cref="BayeuxServer.Subscribe"/>.</summary>
internal sealed class LocalSubscriber(Action<Delivery> onDelivery) : Subscriber
{
    internal override void Deliver(Delivery delivery) => onDelivery(delivery);
}
