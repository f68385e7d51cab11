using System.Security.Claims;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Transports;

namespace Tidings.Bayeux.Server;

/// <summary>Why a session ended.</summary>
public enum SessionCloseReason
{
    Disconnected,
    Expired,
    QueueOverflow,
    ServerShutdown,
}

/// <summary>
/// One handshaken client. Holds its subscriptions and the deliveries it has not yet been sent, bounded
/// by <see cref="BayeuxOptions.MaxQueuedBytes"/>. State changes happen under a small per-session lock
/// that is never held across I/O; sockets are written by their own send loop.
/// </summary>
/// <remarks>
/// Where a delivery goes: to the attached WebSocket's send queue at once, unless the client uses the
/// ack extension (then every delivery travels in a connect reply, numbered by batch, and is re-sent until
/// acknowledged); otherwise it waits in <c>_pending</c> and releases the held connect.
/// </remarks>
public sealed class BayeuxSession : Subscriber
{
    private readonly BayeuxServer _server;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _subscriptions = new(StringComparer.Ordinal);
    private Queue<Delivery>? _pending;
    private List<(long Batch, Delivery Delivery)>? _unacked;
    private long _queuedBytes;
    private long _batch;
    private HeldConnect? _held;
    private WebSocketConnection? _socket;
    private long _lastActivity;
    private Dictionary<string, object?>? _items;

    internal BayeuxSession(BayeuxServer server, string id, ClaimsPrincipal? user, bool ackEnabled, long now)
    {
        _server = server;
        Id = id;
        User = user;
        AckEnabled = ackEnabled;
        _lastActivity = now;
    }

    /// <summary>The unguessable client id.</summary>
    public string Id { get; }

    /// <summary>The user of the handshake request, bound for the session's whole life.</summary>
    public ClaimsPrincipal? User { get; }

    /// <summary>Whether the client negotiated the CometD ack extension at handshake.</summary>
    public bool AckEnabled { get; }

    public bool IsClosed { get; private set; }

    /// <summary>Why the session ended, once <see cref="IsClosed"/>.</summary>
    public SessionCloseReason? CloseReason { get; private set; }

    /// <summary>A per-session value for extensions (rate-limit state, …), created once by <paramref name="create"/>.</summary>
    public T GetOrAdd<T>(string key, Func<T> create) where T : class
    {
        lock (_gate)
        {
            _items ??= [];
            if (_items.TryGetValue(key, out var value) && value is T existing)
            {
                return existing;
            }

            var created = create();
            _items[key] = created;
            return created;
        }
    }

    public IReadOnlyCollection<string> Subscriptions
    {
        get
        {
            lock (_gate)
            {
                return [.. _subscriptions];
            }
        }
    }

    internal int SubscriptionCount
    {
        get
        {
            lock (_gate)
            {
                return _subscriptions.Count;
            }
        }
    }

    /// <summary>How many of <paramref name="patterns"/> the session is not yet subscribed to (re-subscribing costs nothing).</summary>
    internal int CountNewSubscriptions(IReadOnlyList<string> patterns)
    {
        lock (_gate)
        {
            return patterns.Distinct(StringComparer.Ordinal).Count(p => !_subscriptions.Contains(p));
        }
    }

    /// <summary>
    /// The bytes held for the client that the network has not taken yet: deliveries waiting for a connect,
    /// sent but unacknowledged ones (ack extension), and the attached socket's outbox with the batch it is
    /// writing. Never more than about <see cref="BayeuxOptions.MaxQueuedBytes"/>: past that the session closes.
    /// </summary>
    public long QueuedBytes
    {
        get
        {
            lock (_gate)
            {
                // With acks the socket carries only connect replies, whose deliveries are counted as unacknowledged.
                return _queuedBytes + (_socket is { } socket && !AckEnabled ? socket.QueuedBytes : 0);
            }
        }
    }

    internal long LastActivity => Volatile.Read(ref _lastActivity);

    internal bool HasHeldConnect => Volatile.Read(ref _held) is not null;

    internal void Touch(long now) => Volatile.Write(ref _lastActivity, now);

    /// <summary>
    /// Adds a subscription unless the session is closed, already has it, or holds <paramref name="max"/> already
    /// (<paramref name="full"/>). Checked here, under the session's lock, because subscribes of one session can
    /// run concurrently (several long-poll requests) and each passes the early count check on its own.
    /// </summary>
    internal bool AddSubscription(string pattern, int max, out bool full)
    {
        lock (_gate)
        {
            full = !IsClosed && _subscriptions.Count >= max && !_subscriptions.Contains(pattern);
            return !IsClosed && !full && _subscriptions.Add(pattern);
        }
    }

    internal bool RemoveSubscription(string pattern)
    {
        lock (_gate)
        {
            return _subscriptions.Remove(pattern);
        }
    }

    /// <summary>Sends <paramref name="delivery"/> to this session only, through the same bounded queue as broadcasts.</summary>
    public void Send(Delivery delivery) => Deliver(delivery);

    internal override void Deliver(Delivery delivery)
    {
        var overflow = false;
        lock (_gate)
        {
            if (IsClosed)
            {
                return;
            }

            if (_socket is not null && !AckEnabled)
            {
                overflow = !_socket.TryEnqueue(delivery);
            }
            else if (_queuedBytes + delivery.Size > _server.Options.MaxQueuedBytes)
            {
                overflow = true;
            }
            else
            {
                (_pending ??= new Queue<Delivery>()).Enqueue(delivery);
                _queuedBytes += delivery.Size;
                _held?.TryRelease(ConnectRelease.Delivery);
            }
        }

        if (overflow)
        {
            _server.CloseSession(this, SessionCloseReason.QueueOverflow);
        }
    }

    /// <summary>
    /// Binds a WebSocket that carries this client's messages. Waiting deliveries move to it, unless the
    /// ack extension keeps them for connect replies: first those the socket it replaces has not sent, then
    /// <c>_pending</c>, so the client sees them in publish order.
    /// </summary>
    internal void AttachSocket(WebSocketConnection socket)
    {
        var overflow = false;
        lock (_gate)
        {
            if (IsClosed || ReferenceEquals(_socket, socket))
            {
                return;
            }

            var replaced = _socket;
            _socket = socket;

            // The client has moved on (the old socket is often a dead connection nobody reads): its queue follows,
            // or a client without the ack extension would never see it. With acks the old socket carried only
            // connect replies, whose deliveries are still unacknowledged and go out with the next connect.
            if (!AckEnabled && replaced is not null)
            {
                foreach (var delivery in replaced.TakeUnsentDeliveries())
                {
                    overflow |= !socket.TryEnqueue(delivery);
                }
            }

            if (!AckEnabled && _pending is { Count: > 0 })
            {
                while (_pending.TryDequeue(out var delivery))
                {
                    overflow |= !socket.TryEnqueue(delivery);
                }

                _queuedBytes = 0;
            }
        }

        if (overflow)
        {
            _server.CloseSession(this, SessionCloseReason.QueueOverflow);
        }
    }

    /// <summary>The socket closed: deliveries it had not sent yet wait for the client's next connect.</summary>
    internal void DetachSocket(WebSocketConnection socket)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_socket, socket))
            {
                return;
            }

            // Taken under this lock, which Deliver also holds while it queues to the socket: every
            // delivery is either in this list or lands in _pending afterwards.
            var unsent = socket.TakeUnsentDeliveries();
            _socket = null;

            // With the ack extension the socket only ever carried connect replies, whose deliveries are still in
            // _unacked and go out again with the next connect: queueing them again would send each one twice.
            if (unsent.Count == 0 || IsClosed || AckEnabled)
            {
                return;
            }

            var rest = _pending;
            _pending = new Queue<Delivery>(unsent.Count + (rest?.Count ?? 0));
            foreach (var delivery in unsent)
            {
                _pending.Enqueue(delivery);
                _queuedBytes += delivery.Size;
            }

            while (rest is not null && rest.TryDequeue(out var delivery))
            {
                _pending.Enqueue(delivery);
            }
        }
    }

    /// <summary>With the ack extension: the client has every batch up to <paramref name="batch"/>; forget them.</summary>
    internal void Acknowledge(long batch)
    {
        lock (_gate)
        {
            if (_unacked is null)
            {
                return;
            }

            var n = 0;
            while (n < _unacked.Count && _unacked[n].Batch <= batch)
            {
                _queuedBytes -= _unacked[n].Delivery.Size;
                n++;
            }

            _unacked.RemoveRange(0, n);
        }
    }

    /// <summary>Makes <paramref name="connect"/> the session's held connect; an older one is answered as superseded.</summary>
    /// <remarks>
    /// <paramref name="hasWaiting"/> is read under the same lock that <see cref="Deliver"/> takes, so a
    /// delivery either is seen here or releases the new held connect: never neither.
    /// </remarks>
    internal bool TryHold(HeldConnect connect, out bool hasWaiting)
    {
        HeldConnect? older;
        lock (_gate)
        {
            hasWaiting = _pending is { Count: > 0 } || _unacked is { Count: > 0 };
            if (IsClosed)
            {
                return false;
            }

            older = _held;
            _held = connect;
        }

        older?.TryRelease(ConnectRelease.Superseded);
        return true;
    }

    internal void ClearHeld(HeldConnect connect)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_held, connect))
            {
                _held = null;
            }
        }
    }

    /// <summary>
    /// Takes what a connect reply carries: the waiting deliveries, or with the ack extension every
    /// unacknowledged one (earlier batches are re-sent) plus the new ones under a new batch number.
    /// </summary>
    internal List<Delivery> TakeForConnect(out long? ackBatch)
    {
        lock (_gate)
        {
            ackBatch = null;
            if (AckEnabled)
            {
                var batch = ++_batch;
                ackBatch = batch;
                if (_pending is { Count: > 0 })
                {
                    _unacked ??= [];
                    while (_pending.TryDequeue(out var delivery))
                    {
                        _unacked.Add((batch, delivery));
                    }
                }

                if (_unacked is not { Count: > 0 })
                {
                    return [];
                }

                var all = new List<Delivery>(_unacked.Count);
                foreach (var (_, delivery) in _unacked)
                {
                    all.Add(delivery);
                }

                return all;
            }

            if (_pending is not { Count: > 0 })
            {
                return [];
            }

            var taken = new List<Delivery>(_pending.Count);
            while (_pending.TryDequeue(out var delivery))
            {
                taken.Add(delivery);
            }

            _queuedBytes = 0;
            return taken;
        }
    }

    /// <summary>Marks the session closed and returns what must be cleaned up outside the lock.</summary>
    internal (HeldConnect? Held, WebSocketConnection? Socket, string[] Subscriptions) Close(SessionCloseReason reason)
    {
        lock (_gate)
        {
            IsClosed = true;
            CloseReason = reason;
            var held = _held;
            _held = null;
            var socket = _socket;
            _socket = null;
            _pending = null;
            _unacked = null;
            _queuedBytes = 0;
            string[] subscriptions = [.. _subscriptions];
            _subscriptions.Clear();
            return (held, socket, subscriptions);
        }
    }
}
