using System.Security.Claims;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>Why a session ended.</summary>
public enum SessionCloseReason
{
    Disconnected,
    Expired,
    QueueOverflow,
    ServerShutdown,

    /// <summary>The client handshook again on the socket that carried this session, and so left it.</summary>
    Abandoned,

    /// <summary>Server code ended it (an operator's disconnect on the admin page); the client is told to handshake again.</summary>
    Evicted,
}

/// <summary>
/// One handshaken client. Holds its subscriptions and the deliveries it has not yet been sent, bounded
/// by <see cref="BayeuxOptions.MaxQueuedBytes"/>. State changes happen under a small per-session lock
/// that is never held across I/O; sockets are written by their own send loop.
/// </summary>
/// <remarks>
/// Where a delivery goes, one path each: to the attached push transport (a WebSocket) at once; or, with
/// long-polling, into <c>_pending</c> until a connect reply takes it; or, with the ack extension, into
/// <c>_pending</c> too and from there into numbered batches (<see cref="AckBatches"/>) that every connect reply
/// carries until acknowledged, whatever transport carries the reply.
/// </remarks>
public sealed class BayeuxSession : Subscriber
{
    private readonly BayeuxServer _server;
    private readonly Lock _gate = new();
    /// <summary>Pattern → what stands for this session in the subscription index: itself, or a <see cref="PatternRecipient"/>.</summary>
    private readonly Dictionary<string, Subscriber> _subscriptions = new(StringComparer.Ordinal);
    private int _innerWildcards;
    private int _onPattern;
    private readonly AckBatches? _acks;
    private Queue<Delivery>? _pending;
    private long _pendingBytes;
    private HeldConnect? _held;
    private ISessionTransport? _socket;
    private long _lastActivity;
    private Dictionary<string, object?>? _items;

    private readonly bool _boundToRequestUser;

    internal BayeuxSession(BayeuxServer server, string id, ClaimsPrincipal? user, bool ackEnabled, long now,
        System.Net.IPAddress? address = null, bool boundToRequestUser = false)
    {
        _server = server;
        Id = id;
        User = user;
        _acks = ackEnabled ? new AckBatches() : null;
        _lastActivity = now;
        StartedAt = now;
        Address = address ?? System.Net.IPAddress.None;
        _boundToRequestUser = boundToRequestUser;
    }

    /// <summary>The client address that handshook (<see cref="BayeuxOptions.MaxSessionsPerAddress"/>).</summary>
    internal System.Net.IPAddress Address { get; }

    /// <summary>
    /// Whether a request signed in as <paramref name="requestUser"/> may act on this session; a client id alone is not
    /// enough. A session whose user came from the handshake request (cookie, <c>Authorization</c>) takes requests by that
    /// user only — a request without them is refused too. One whose user came from the handshake message (a token in
    /// <c>ext</c>, which clients send only there) takes requests that carry no identity or that same user. An anonymous
    /// session takes any request. Users are the same when their name and name identifier are.
    /// </summary>
    internal bool AcceptsRequestBy(ClaimsPrincipal? requestUser)
    {
        var signedIn = requestUser?.Identity?.IsAuthenticated == true;
        if (_boundToRequestUser)
        {
            return signedIn && SameUser(User!, requestUser!);
        }

        return User?.Identity?.IsAuthenticated != true || !signedIn || SameUser(User, requestUser!);
    }

    private static bool SameUser(ClaimsPrincipal a, ClaimsPrincipal b) =>
        a.Identity?.IsAuthenticated == true && b.Identity?.IsAuthenticated == true
        && string.Equals(a.Identity.Name, b.Identity.Name, StringComparison.Ordinal)
        && string.Equals(a.FindFirst(ClaimTypes.NameIdentifier)?.Value, b.FindFirst(ClaimTypes.NameIdentifier)?.Value, StringComparison.Ordinal);

    /// <summary>The client address that handshook, for operators' views.</summary>
    public System.Net.IPAddress RemoteAddress => Address;

    /// <summary>When the session handshook (a <see cref="TimeProvider.GetTimestamp"/> of the server's clock).</summary>
    public long StartedAt { get; }

    /// <summary>Whether a WebSocket carries the session now (otherwise it long-polls, or is between connects).</summary>
    public bool HasSocket => Volatile.Read(ref _socket) is not null;

    /// <summary>The unguessable client id.</summary>
    public string Id { get; }

    /// <summary>The user of the handshake request, bound for the session's whole life.</summary>
    public ClaimsPrincipal? User { get; }

    /// <summary>Whether the client negotiated the CometD ack extension at handshake.</summary>
    public bool AckEnabled => _acks is not null;

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
                return [.. _subscriptions.Keys];
            }
        }
    }

    internal override BayeuxSession Recipient => this;

    public int SubscriptionCount
    {
        get
        {
            lock (_gate)
            {
                return _subscriptions.Count;
            }
        }
    }

    /// <summary>Subscribes of this session that a channel handler is still working on (a catch-up read), by pattern.</summary>
    private Dictionary<string, TaskCompletionSource>? _joining;

    /// <summary>
    /// Claims the right to run a channel handler's subscribe for <paramref name="pattern"/>. A repeated subscribe to a
    /// channel the session already holds changes nothing — running the handler again would replay, or send twice,
    /// events the session already receives (a client re-sends a subscribe whose reply a cut connection lost). A
    /// repeat that arrives while the first is still joining waits for it: if the first went live, the repeat is a
    /// no-op; if it failed or was cancelled, the repeat runs.
    /// </summary>
    /// <returns>A token to pass to <see cref="EndJoin"/> when the handler is done, or null when the session already
    /// holds the subscription (nothing to run).</returns>
    internal async ValueTask<TaskCompletionSource?> BeginJoinAsync(string pattern, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task running;
            lock (_gate)
            {
                if (_subscriptions.ContainsKey(pattern))
                {
                    return null;
                }

                if (_joining?.TryGetValue(pattern, out var other) != true)
                {
                    var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    (_joining ??= new(StringComparer.Ordinal))[pattern] = mine;
                    return mine;
                }

                running = other!.Task;
            }

            await running.WaitAsync(cancellationToken);
        }
    }

    /// <summary>The handler's subscribe that <see cref="BeginJoinAsync"/> let run has ended (live or not).</summary>
    internal void EndJoin(string pattern, TaskCompletionSource token)
    {
        lock (_gate)
        {
            if (_joining is not null && _joining.TryGetValue(pattern, out var held) && held == token)
            {
                _joining.Remove(pattern);
            }
        }

        token.TrySetResult();
    }

    /// <summary>How many of <paramref name="patterns"/> the session is not yet subscribed to (re-subscribing costs nothing).</summary>
    internal int CountNewSubscriptions(IReadOnlyList<string> patterns)
    {
        lock (_gate)
        {
            return patterns.Distinct(StringComparer.Ordinal).Count(p => !_subscriptions.ContainsKey(p));
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
                return _pendingBytes + (_acks?.Bytes ?? 0) + (PushTransport?.QueuedBytes ?? 0);
            }
        }
    }

    internal long LastActivity => Volatile.Read(ref _lastActivity);

    internal bool HasHeldConnect => Volatile.Read(ref _held) is not null;

    internal void Touch(long now) => Volatile.Write(ref _lastActivity, now);

    /// <summary>
    /// Adds a subscription unless the session is closed, already has it, or a limit refuses it (<paramref name="refusal"/>:
    /// <see cref="BayeuxOptions.MaxSubscriptionsPerSession"/>, <see cref="BayeuxOptions.MaxInnerWildcardsPerSession"/>,
    /// or an overlap that would make a pattern-delivering client run a callback twice). Checked here, under the
    /// session's lock, because subscribes of one session can run concurrently (several long-poll requests).
    /// </summary>
    /// <param name="onPattern">Deliver on the pattern's own channel (an inner wildcard asked for <c>ext.delivery: "pattern"</c>).</param>
    /// <returns>What to add to the subscription index for it, or null when nothing is to be added.</returns>
    internal Subscriber? AddSubscription(string pattern, bool onPattern, BayeuxOptions limits, out string? refusal)
    {
        lock (_gate)
        {
            refusal = null;
            if (IsClosed || _subscriptions.ContainsKey(pattern))
            {
                return null;
            }

            var inner = ChannelName.HasInnerWildcard(pattern);
            refusal = _subscriptions.Count >= limits.MaxSubscriptionsPerSession
                ? BayeuxError.TooManySubscriptions(limits.MaxSubscriptionsPerSession)
                : inner && _innerWildcards >= limits.MaxInnerWildcardsPerSession
                    ? BayeuxError.TooManyInnerWildcards(pattern, limits.MaxInnerWildcardsPerSession)
                    : FindPatternOverlap(pattern, onPattern) is { } other
                        ? BayeuxError.PatternDeliveryOverlap(pattern, other)
                        : null;
            if (refusal is not null)
            {
                return null;
            }

            Subscriber entry = onPattern ? new PatternRecipient(this, pattern) : this;
            _subscriptions.Add(pattern, entry);
            _innerWildcards += inner ? 1 : 0;
            _onPattern += onPattern ? 1 : 0;
            return entry;
        }
    }

    /// <summary>
    /// A CometD client hands a message on channel <c>/a/*/b</c> to its listeners of <c>/a/*/b</c> and of every
    /// trailing wildcard that matches that name (<c>/a/*/*</c>, <c>/a/**</c>, <c>/**</c>: <see cref="ChannelName.Expand"/>).
    /// When such a listener is also one of this session's subscriptions it would get each event twice (once on the
    /// concrete channel, once on the pattern), so the newer of the two is refused, naming the other.
    /// </summary>
    private string? FindPatternOverlap(string pattern, bool onPattern)
    {
        if (onPattern)
        {
            foreach (var shadow in ChannelName.Expand(pattern).AsSpan(1))
            {
                if (_subscriptions.ContainsKey(shadow))
                {
                    return shadow;
                }
            }
        }

        if (_onPattern > 0)
        {
            foreach (var (held, entry) in _subscriptions)
            {
                if (entry is PatternRecipient && Array.IndexOf(ChannelName.Expand(held), pattern, 1) > 0)
                {
                    return held;
                }
            }
        }

        return null;
    }

    /// <returns>The index entry of the removed subscription, or null when it was not there.</returns>
    internal Subscriber? RemoveSubscription(string pattern)
    {
        lock (_gate)
        {
            if (!_subscriptions.Remove(pattern, out var entry))
            {
                return null;
            }

            _innerWildcards -= ChannelName.HasInnerWildcard(pattern) ? 1 : 0;
            _onPattern -= entry is PatternRecipient ? 1 : 0;
            return entry;
        }
    }

    /// <summary>Sends <paramref name="delivery"/> to this session only, through the same bounded queue as broadcasts.</summary>
    public void Send(Delivery delivery) => Deliver(delivery);

    internal override void Deliver(Delivery delivery)
    {
        bool accepted;
        lock (_gate)
        {
            if (IsClosed)
            {
                return;
            }

            accepted = PushTransport is { } transport ? transport.TryEnqueue(delivery) : TryQueueForConnect(delivery);
        }

        if (!accepted)
        {
            _server.CloseSession(this, SessionCloseReason.QueueOverflow);
        }
    }

    /// <summary>The transport deliveries are pushed to: the attached socket, unless every delivery travels in a connect reply (acks).</summary>
    private ISessionTransport? PushTransport => AckEnabled ? null : _socket;

    // Long-polling, and the ack extension's intake: deliveries wait for the next connect reply.

    private bool TryQueueForConnect(Delivery delivery)
    {
        if (_pendingBytes + (_acks?.Bytes ?? 0) + delivery.Size > _server.Options.MaxQueuedBytes)
        {
            return false;
        }

        (_pending ??= new Queue<Delivery>()).Enqueue(delivery);
        _pendingBytes += delivery.Size;
        _held?.TryRelease(ConnectRelease.Delivery);
        return true;
    }

    /// <summary>Puts <paramref name="older"/> ahead of what waits already (they were queued before it).</summary>
    private void QueueAheadForConnect(List<Delivery> older)
    {
        var rest = _pending;
        _pending = new Queue<Delivery>(older.Count + (rest?.Count ?? 0));
        foreach (var delivery in older)
        {
            _pending.Enqueue(delivery);
            _pendingBytes += delivery.Size;
        }

        while (rest is not null && rest.TryDequeue(out var delivery))
        {
            _pending.Enqueue(delivery);
        }
    }

    // WebSocket: a push transport carries the client's messages while it is attached.

    /// <summary>
    /// Binds a WebSocket that carries this client's messages. Without the ack extension, waiting deliveries
    /// move to it: first those the socket it replaces has not sent, then <c>_pending</c>, so the client sees
    /// them in publish order.
    /// </summary>
    internal void AttachSocket(ISessionTransport socket)
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

            // With acks the old socket carried only connect replies, whose deliveries are still unacknowledged
            // and go out with the next connect; _pending waits for that connect too.
            if (AckEnabled)
            {
                return;
            }

            // The client has moved on (the old socket is often a dead connection nobody reads): its queue follows,
            // or the client would never see it.
            if (replaced is not null)
            {
                foreach (var delivery in replaced.TakeUnsentDeliveries())
                {
                    overflow |= !socket.TryEnqueue(delivery);
                }
            }

            while (_pending is not null && _pending.TryDequeue(out var delivery))
            {
                overflow |= !socket.TryEnqueue(delivery);
            }

            _pendingBytes = 0;
        }

        if (overflow)
        {
            _server.CloseSession(this, SessionCloseReason.QueueOverflow);
        }
    }

    /// <summary>The socket closed: deliveries it had not sent yet wait for the client's next connect.</summary>
    internal void DetachSocket(ISessionTransport socket)
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
            // the unacknowledged batches and go out again with the next connect: queueing them again would send
            // each one twice.
            if (unsent.Count > 0 && !IsClosed && !AckEnabled)
            {
                QueueAheadForConnect(unsent);
            }
        }
    }

    // Connects: held until something waits, then answered with it (with acks, in numbered batches).

    /// <summary>With the ack extension: the client has every batch up to <paramref name="batch"/>; forget them.</summary>
    internal void Acknowledge(long batch)
    {
        lock (_gate)
        {
            _acks?.Acknowledge(batch);
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
            hasWaiting = _pending is { Count: > 0 } || _acks is { HasUnacknowledged: true };
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
            if (_acks is not null)
            {
                var all = _acks.NextBatch(_pending, out var batch);
                _pendingBytes = 0;
                ackBatch = batch;
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

            _pendingBytes = 0;
            return taken;
        }
    }

    /// <summary>Marks the session closed and returns what must be cleaned up outside the lock.</summary>
    internal (HeldConnect? Held, ISessionTransport? Socket, KeyValuePair<string, Subscriber>[] Subscriptions) Close(SessionCloseReason reason)
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
            _pendingBytes = 0;
            _acks?.Clear();
            KeyValuePair<string, Subscriber>[] subscriptions = [.. _subscriptions];
            _subscriptions.Clear();
            _innerWildcards = 0;
            _onPattern = 0;
            return (held, socket, subscriptions);
        }
    }
}
