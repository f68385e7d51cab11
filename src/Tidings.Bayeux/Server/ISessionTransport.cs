using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// A connection that pushes messages to its client as they come (a WebSocket), as sessions and the server see
/// it: the way ASP.NET Core's <c>ConnectionContext</c> stands for a connection whatever carries it. Long-polling
/// has none; its deliveries wait in the session for the next connect reply.
/// </summary>
internal interface ISessionTransport
{
    /// <summary>Bytes queued for the client and not yet sent, the batch being written included.</summary>
    long QueuedBytes { get; }

    /// <summary>Binds the session whose deliveries this transport pushes; false while it serves another live session.</summary>
    bool TryBind(BayeuxSession session);

    /// <summary>Binds the session a handshake on this transport just made; returns the live session it replaces, if any.</summary>
    BayeuxSession? BindHandshake(BayeuxSession session);

    /// <summary>Queues a delivery; false when that would pass <see cref="BayeuxOptions.MaxQueuedBytes"/>.</summary>
    bool TryEnqueue(Delivery delivery);

    /// <summary>Removes the queued deliveries not yet sent, oldest first.</summary>
    List<Delivery> TakeUnsentDeliveries();

    /// <summary>Closes after what is queued, because the session broke a limit.</summary>
    void CloseForPolicy(string reason);

    /// <summary>Closes because the server is stopping.</summary>
    void CloseGoingAway();
}
