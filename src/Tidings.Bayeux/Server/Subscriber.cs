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
}

/// <summary>A subscription made by server code through <see cref="BayeuxServer.Subscribe"/>.</summary>
internal sealed class LocalSubscriber(Action<Delivery> onDelivery) : Subscriber
{
    internal override void Deliver(Delivery delivery) => onDelivery(delivery);
}
