using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Carries plain publishes between the nodes that serve one app (Centrifuge calls this a broker). A client's
/// publish is delivered on the node that received it, then forwarded; each other node publishes what arrives to
/// its own subscribers. <c>/service</c> calls and channels owned by an <see cref="IBayeuxChannelHandler"/> (live
/// collections, which every node learns from its store) are never forwarded.
/// </summary>
public interface IBayeuxBroker
{
    /// <summary>Hands a publish already delivered here to the other nodes. Must not block: queue, and drop when full.</summary>
    void Forward(Delivery delivery);
}
