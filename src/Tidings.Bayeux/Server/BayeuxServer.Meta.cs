using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>What a batch produced: replies in request order, and the connect (if any) still to complete.</summary>
internal sealed class BatchOutcome(int capacity)
{
    public List<BayeuxReply> Replies { get; } = new(capacity);

    /// <summary>The batch's connect; its reply is written by <see cref="BayeuxServer.CompleteConnectAsync"/>, not with <see cref="Replies"/>.</summary>
    public HeldConnect? Connect { get; set; }
}

/// <summary>What a finished connect sends: deliveries first, then the connect reply (null when the client is gone).</summary>
internal readonly record struct ConnectCompletion(BayeuxReply? Reply, List<Delivery> Deliveries);

public sealed partial class BayeuxServer
{
    /// <summary>The connection types this server speaks, in the order clients should prefer them.</summary>
    public static readonly IReadOnlyList<string> ConnectionTypes = ["websocket", "long-polling", "cross-origin-long-polling", "callback-polling"];

    /// <summary>Handles one batch in order. Replies for everything but the connect are final when this returns.</summary>
    internal async ValueTask<BatchOutcome> HandleAsync(IReadOnlyList<BayeuxMessage> messages, BayeuxTransportContext transport, CancellationToken cancellationToken)
    {
        var outcome = new BatchOutcome(messages.Count);
        var batched = messages.Count > 1;
        foreach (var message in messages)
        {
            // A client id is not enough on its own: the request must also be by the session's user (see
            // BayeuxSession.AcceptsRequestBy); otherwise the id is as unknown as one never issued.
            var session = message.ClientId is { } clientId && _sessions.TryGetValue(clientId, out var found)
                && found.AcceptsRequestBy(transport.HttpContext.User) ? found : null;
            if (session is not null && transport.Socket is { } socket && socket.TryBind(session))
            {
                session.AttachSocket(socket);
            }

            var reply = await HandleOneAsync(message, session, transport, batched, outcome, cancellationToken);
            if (outcome.Connect is { } connect && ReferenceEquals(connect.Reply, reply))
            {
                continue;
            }

            if (reply.Channel == ChannelName.Handshake && reply.ClientId is { } newId && _sessions.TryGetValue(newId, out var created))
            {
                session = created;
            }

            await RunOutgoingAsync(message, reply, session, transport, cancellationToken);
            outcome.Replies.Add(reply);
        }

        return outcome;
    }

    /// <summary>Waits for a connect to be released and produces what its transport must send.</summary>
    internal async ValueTask<ConnectCompletion> CompleteConnectAsync(HeldConnect connect, CancellationToken cancellationToken)
    {
        var reason = await connect.Released;
        var session = connect.Session;

        // Expiry counts from when the last connect ended, whoever ended it; touch before un-holding so a
        // sweep in between never sees an unheld session with a stale time.
        session.Touch(Time.GetTimestamp());
        session.ClearHeld(connect);
        if (reason == ConnectRelease.ClientGone)
        {
            return new ConnectCompletion(null, []);
        }

        var reply = connect.Reply;
        List<Delivery> deliveries = [];
        if (session.IsClosed)
        {
            if (session.CloseReason == SessionCloseReason.Disconnected)
            {
                reply.Advice = new JsonObject { ["reconnect"] = "none" };
            }
            else
            {
                reply.Fail(BayeuxError.ClientUnknown(session.Id));
                reply.Advice = HandshakeAdvice();
            }
        }
        else
        {
            reply.Advice = RetryAdvice();
            if (reason != ConnectRelease.Superseded)
            {
                // A superseded connect is answered empty: its client has already moved on to the newer one, which
                // is where waiting deliveries must go (the older response is often a dead connection).
                deliveries = session.TakeForConnect(out var ackBatch);
                if (ackBatch is { } batch)
                {
                    reply.GetOrCreateExt()["ack"] = batch;
                }
            }
        }

        await RunOutgoingAsync(connect.Request, reply, session, connect.Transport, cancellationToken);
        return new ConnectCompletion(reply, deliveries);
    }

    private async ValueTask<BayeuxReply> HandleOneAsync(BayeuxMessage message, BayeuxSession? session, BayeuxTransportContext transport,
        bool batched, BatchOutcome outcome, CancellationToken cancellationToken)
    {
        var channel = message.Channel;
        var reply = new BayeuxReply(channel ?? string.Empty, message.Id);
        if (message.ParseError is { } parseError)
        {
            return reply.Fail(parseError);
        }

        if (channel is null)
        {
            return reply.Fail(BayeuxError.ParameterMissing("channel"));
        }

        var user = transport.HttpContext.User;
        if (_extensions.Length > 0)
        {
            var incoming = new BayeuxIncoming(message, session, transport);
            foreach (var extension in _extensions)
            {
                await extension.IncomingAsync(incoming, cancellationToken);
                if (incoming.Error is { } refused)
                {
                    return reply.Fail(refused);
                }
            }

            user = incoming.User;
        }

        // Meta channels are matched exactly: "/meta/subscribe/x" is not "/meta/subscribe" (CVE-2020-11020).
        switch (channel)
        {
            case ChannelName.Handshake:
                return Handshake(message, transport, user, reply);
            case ChannelName.Connect:
                return Connect(message, session, transport, batched, outcome, reply);
            case ChannelName.Subscribe:
                return await SubscribeAsync(message, session, transport, reply, cancellationToken);
            case ChannelName.Unsubscribe:
                return Unsubscribe(message, session, reply);
            case ChannelName.Disconnect:
                return Disconnect(message, session, reply);
            default:
                return await PublishAsync(message, session, transport, reply, cancellationToken);
        }
    }

    // /meta/handshake — MUST: version, supportedConnectionTypes. MAY: minimumVersion, ext (ext.ack asks for
    // the ack extension), id. Reply: clientId, version, supportedConnectionTypes, advice.
    private BayeuxReply Handshake(BayeuxMessage message, BayeuxTransportContext transport, System.Security.Claims.ClaimsPrincipal user, BayeuxReply reply)
    {
        reply.Version = "1.0";
        reply.SupportedConnectionTypes = ConnectionTypes;
        if (message.Version is null)
        {
            return reply.Fail(BayeuxError.ParameterMissing("version"));
        }

        if (!message.Version.StartsWith('1'))
        {
            return reply.Fail(BayeuxError.VersionMismatch(message.Version));
        }

        if (message.SupportedConnectionTypes is not { } types)
        {
            return reply.Fail(BayeuxError.ParameterMissing("supportedConnectionTypes"));
        }

        if (!types.Any(t => ConnectionTypes.Contains(t)))
        {
            return reply.Fail(BayeuxError.ConnectionTypeMismatch(string.Join(',', types)));
        }

        if (_stopping)
        {
            // A session made now would die with this process; the client retries and reaches the next one.
            reply.Advice = new JsonObject { ["reconnect"] = "handshake", ["interval"] = 1000 };
            return reply.Fail(BayeuxError.Format(503, string.Empty, "Server is shutting down"));
        }

        if (_sessions.Count >= Options.MaxSessions)
        {
            return reply.Fail(BayeuxError.Format(503, string.Empty, "Too many sessions (Bayeux.MaxSessions)"));
        }

        var address = ClientAddress(transport.HttpContext);
        if (!_addresses.TryAdd(address, Options.MaxSessionsPerAddress))
        {
            return reply.Fail(BayeuxError.TooManySessionsFromAddress(Options.MaxSessionsPerAddress));
        }

        var ack = Options.EnableAckExtension && message.TryGetExt("ack", out var ackField) && ackField.ValueKind == JsonValueKind.True;
        // The user came from the request itself (cookie, Authorization header) unless an extension chose it from the
        // message (a token in ext): then later requests must carry that same user (BayeuxSession.AcceptsRequestBy).
        var boundToRequestUser = ReferenceEquals(user, transport.HttpContext.User) && user.Identity?.IsAuthenticated == true;
        var session = new BayeuxSession(this, NewClientId(), user, ack, Time.GetTimestamp(), address, boundToRequestUser);
        _sessions[session.Id] = session;
        if (transport.Socket is { } socket)
        {
            // A client that handshakes again on its socket has abandoned the session it had there (Faye does after a
            // 401 or a server restart): the socket now carries the new session only, and the old one ends, or every
            // event would reach the client twice (issue 16, defect 4).
            if (socket.BindHandshake(session) is { } abandoned)
            {
                CloseSession(abandoned, SessionCloseReason.Abandoned);
            }

            session.AttachSocket(socket);
        }

        reply.ClientId = session.Id;
        reply.Advice = RetryAdvice();
        if (Options.NodeId is { } node && !transport.HttpContext.Response.HasStarted)
        {
            // Node affinity for the load balancer: this session lives here.
            transport.HttpContext.Response.Cookies.Append(Options.NodeCookie, node,
                new Microsoft.AspNetCore.Http.CookieOptions { HttpOnly = true, SameSite = Microsoft.AspNetCore.Http.SameSiteMode.Lax, Path = "/" });
        }

        if (ack)
        {
            reply.GetOrCreateExt()["ack"] = true;
        }

        BayeuxLog.SessionOpened(_logger, session.Id, transport.ConnectionType);
        return reply;
    }

    // /meta/connect — MUST: clientId, connectionType. MAY: advice.timeout (0 = answer at once), ext.ack
    // (the last batch received), id. Held until one of the ConnectRelease events; see HeldConnect.
    private BayeuxReply Connect(BayeuxMessage message, BayeuxSession? session, BayeuxTransportContext transport, bool batched,
        BatchOutcome outcome, BayeuxReply reply)
    {
        if (RequireSession(message, session, reply) is not { } s)
        {
            return reply;
        }

        if (outcome.Connect is not null)
        {
            // Each connect must be answered on its own; two in one request would leave one hanging.
            return reply.Fail(BayeuxError.BadRequest("one /meta/connect per request"));
        }

        if (message.ConnectionType is null)
        {
            return reply.Fail(BayeuxError.ParameterMissing("connectionType"));
        }

        if (!ConnectionTypes.Contains(message.ConnectionType))
        {
            return reply.Fail(BayeuxError.ConnectionTypeMismatch(message.ConnectionType));
        }

        // The advice is added when the connect is answered (CompleteConnectAsync), not while it is held: a JSON
        // object per idle session for hours is memory (bench/RESULTS.md, "Where an idle session's memory goes").
        reply.ClientId = s.Id;
        s.Touch(Time.GetTimestamp());
        // An ack that is not a number acknowledges nothing (TryGetInt64 throws on other kinds).
        if (s.AckEnabled && message.TryGetExt("ack", out var ack) && ack.ValueKind == JsonValueKind.Number && ack.TryGetInt64(out var batch))
        {
            s.Acknowledge(batch);
        }

        var connect = new HeldConnect(s, message, reply, transport);
        if (!s.TryHold(connect, out var hasWaiting))
        {
            // Closed between the lookup and now.
            reply.Advice = HandshakeAdvice();
            return reply.Fail(BayeuxError.ClientUnknown(s.Id));
        }

        var timeout = Options.ConnectTimeout;
        if (message.AdviceTimeout is { } requested && requested >= 0)
        {
            timeout = TimeSpan.FromMilliseconds(Math.Min(requested, (long)timeout.TotalMilliseconds));
        }

        if (batched || hasWaiting || timeout <= TimeSpan.Zero)
        {
            connect.ReleaseNow();
        }
        else
        {
            connect.Hold(Time, timeout, transport.Aborted);
        }

        outcome.Connect = connect;
        return reply;
    }

    // /meta/subscribe — MUST: clientId, subscription (a name or pattern, or an array of them); for an inner wildcard
    // ext.delivery ("concrete" or "pattern", see InnerWildcardDelivery). MAY: ext, which channel handlers read (e.g.
    // catch-up from a sequence number). All or nothing: one invalid, forbidden or refused entry refuses the whole
    // request. /meta/** and /service/** are not subscribable.
    private async ValueTask<BayeuxReply> SubscribeAsync(BayeuxMessage message, BayeuxSession? session, BayeuxTransportContext transport,
        BayeuxReply reply, CancellationToken cancellationToken)
    {
        if (RequireSession(message, session, reply) is not { } s || CheckSubscriptions(message, reply) is not { } patterns
            || InnerWildcardDelivery(message, patterns, reply) is not { } onPattern)
        {
            return reply;
        }

        if (s.CountNewSubscriptions(patterns) + s.SubscriptionCount > Options.MaxSubscriptionsPerSession)
        {
            return reply.Fail(BayeuxError.TooManySubscriptions(Options.MaxSubscriptionsPerSession));
        }

        var added = new List<(string Pattern, Subscriber Entry)>(patterns.Count);
        string? refusedHere = null;
        void Activate(string pattern)
        {
            if (s.AddSubscription(pattern, onPattern && ChannelName.HasInnerWildcard(pattern), Options, out var refusal) is { } entry)
            {
                _index.Add(pattern, entry);
                added.Add((pattern, entry));
                if (s.IsClosed)
                {
                    // Closed while subscribing: undo, or the index would keep a dead session.
                    _index.Remove(pattern, entry);
                }
            }

            refusedHere ??= refusal;
        }

        void UndoAdded()
        {
            foreach (var (pattern, entry) in added)
            {
                s.RemoveSubscription(pattern);
                _index.Remove(pattern, entry);
            }
        }

        foreach (var pattern in patterns)
        {
            if (FindChannelHandler(pattern) is not { } handler)
            {
                Activate(pattern);
                continue;
            }

            if (await s.BeginJoinAsync(pattern, cancellationToken) is not { } join)
            {
                continue; // already held: a repeated subscribe replays nothing (each event reaches a session once)
            }

            var context = new BayeuxSubscribeContext(message, pattern, s, transport, () => Activate(pattern));
            try
            {
                await handler.SubscribeAsync(context, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                BayeuxLog.ServiceHandlerFailed(_logger, pattern, ex);
                context.Refuse(BayeuxError.ServerError("the subscription handler failed"));
            }
            finally
            {
                // Activated by now, or never: a repeat waiting for this one can decide.
                if (context.Error is null && !cancellationToken.IsCancellationRequested)
                {
                    context.Activate();
                }

                s.EndJoin(pattern, join);
            }

            if (context.Error is { } refused)
            {
                UndoAdded();
                return reply.Fail(refused);
            }

            context.Activate();
        }

        if (refusedHere is not null)
        {
            // A session limit (concurrent subscribes of this session may have filled it meanwhile) or an overlap:
            // all or nothing, as for any refusal.
            UndoAdded();
            return reply.Fail(refusedHere);
        }

        RaiseSubscribed(s, added.ConvertAll(a => a.Pattern));
        return reply;
    }

    /// <summary>
    /// How the events of the request's inner wildcards (<c>/api/flows/*/messages</c>, Tidings' extension of the grammar)
    /// are to arrive; null when the request is refused. No stock client routes them by itself: Faye matches only
    /// trailing wildcards (and throws on a message whose channel is a pattern), CometD routes by the message's channel.
    /// So the client says what it can use — <c>ext.delivery</c>:
    /// <c>"concrete"</c>: on each concrete channel, as every other subscription (the Tidings clients route them to the
    /// pattern's handler themselves); <c>"pattern"</c>: on the pattern's own channel with the concrete one in
    /// <c>ext.channel</c>, which CometD hands to that subscription. Without it the subscribe is refused with a 405
    /// whose text and <c>ext.instead</c> name the trailing wildcard to use instead (<c>/api/flows/**</c>), so a plain
    /// Faye app's errback says what to do rather than its callback silently never running.
    /// </summary>
    private static bool? InnerWildcardDelivery(BayeuxMessage message, IReadOnlyList<string> patterns, BayeuxReply reply)
    {
        if (patterns.FirstOrDefault(ChannelName.HasInnerWildcard) is not { } inner)
        {
            return false;
        }

        var asked = message.TryGetExt("delivery", out var field) && field.ValueKind == JsonValueKind.String ? field : default;
        if (asked.ValueKind == JsonValueKind.String && asked.ValueEquals("concrete"))
        {
            return false;
        }

        if (asked.ValueKind == JsonValueKind.String && asked.ValueEquals("pattern"))
        {
            // CometD would hand a message on /a/*/* to its /a/*/* listener twice (as the name and as its /* glob).
            if (patterns.FirstOrDefault(p => ChannelName.HasInnerWildcard(p) && ChannelName.IsTrailingWildcard(p)) is { } endsInWildcard)
            {
                reply.Fail(BayeuxError.PatternDeliveryNeedsNamedEnd(endsInWildcard, ChannelName.TrailingWildcardFor(endsInWildcard)));
                return null;
            }

            return true;
        }

        var instead = ChannelName.TrailingWildcardFor(inner);
        reply.GetOrCreateExt()["instead"] = instead;
        reply.Fail(BayeuxError.InnerWildcardNeedsDelivery(inner, instead));
        return null;
    }

    // /meta/unsubscribe — MUST: clientId, subscription. Unsubscribing from something not subscribed succeeds.
    private BayeuxReply Unsubscribe(BayeuxMessage message, BayeuxSession? session, BayeuxReply reply)
    {
        if (RequireSession(message, session, reply) is not { } s || CheckSubscriptions(message, reply) is not { } patterns)
        {
            return reply;
        }

        List<string>? removed = null;
        foreach (var pattern in patterns)
        {
            if (s.RemoveSubscription(pattern) is { } entry)
            {
                _index.Remove(pattern, entry);
                (removed ??= []).Add(pattern);
            }
        }

        if (removed is not null)
        {
            RaiseUnsubscribed(s, removed);
        }

        return reply;
    }

    // /meta/disconnect — MUST: clientId. Ends the session; a held connect is answered with reconnect "none".
    private BayeuxReply Disconnect(BayeuxMessage message, BayeuxSession? session, BayeuxReply reply)
    {
        if (RequireSession(message, session, reply) is { } s)
        {
            CloseSession(s, SessionCloseReason.Disconnected);
        }

        return reply;
    }

    // Publish — MUST: channel (a concrete, non-meta name), clientId of a live session, data. The reply
    // carries no data unless a /service handler answered; the delivery carries neither clientId nor id.
    private async ValueTask<BayeuxReply> PublishAsync(BayeuxMessage message, BayeuxSession? session, BayeuxTransportContext transport,
        BayeuxReply reply, CancellationToken cancellationToken)
    {
        var channel = message.Channel!;
        if (ChannelName.IsMeta(channel))
        {
            return reply.Fail(BayeuxError.ChannelForbidden(channel));
        }

        if (!ChannelName.IsValidName(channel))
        {
            return reply.Fail(BayeuxError.ChannelInvalid(channel));
        }

        if (RequireSession(message, session, reply) is not { } s)
        {
            return reply;
        }

        if (message.Data is not { } data)
        {
            return reply.Fail(BayeuxError.ParameterMissing("data"));
        }

        if (ChannelName.IsService(channel))
        {
            return await CallServiceAsync(message, s, transport, reply, cancellationToken);
        }

        if (FindChannelHandler(channel) is { } handler)
        {
            try
            {
                await handler.PublishAsync(new BayeuxServiceCall(message, s, transport, reply), cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                BayeuxLog.ServiceHandlerFailed(_logger, channel, ex);
                reply.Fail(BayeuxError.ServerError("the channel handler failed"));
            }

            return reply;
        }

        var delivery = Delivery.Create(channel, data);
        PublishCounted(delivery);
        _broker?.Forward(delivery); // subscribers on the other nodes
        return reply;
    }

    private async ValueTask<BayeuxReply> CallServiceAsync(BayeuxMessage message, BayeuxSession session, BayeuxTransportContext transport,
        BayeuxReply reply, CancellationToken cancellationToken)
    {
        var channel = message.Channel!;
        BayeuxServiceHandler? handler = null;
        foreach (var pattern in ChannelName.Expand(channel))
        {
            if (_services.TryGetValue(pattern, out handler))
            {
                break;
            }
        }

        if (handler is null)
        {
            return reply.Fail(BayeuxError.ChannelUnknown(channel));
        }

        try
        {
            await handler(new BayeuxServiceCall(message, session, transport, reply), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            BayeuxLog.ServiceHandlerFailed(_logger, channel, ex);
            reply.Fail(BayeuxError.ServerError("the service handler failed"));
        }

        return reply;
    }

    private static BayeuxSession? RequireSession(BayeuxMessage message, BayeuxSession? session, BayeuxReply reply)
    {
        if (message.ClientId is null)
        {
            reply.Fail(BayeuxError.ParameterMissing("clientId"));
            return null;
        }

        if (session is null || session.IsClosed)
        {
            reply.Fail(BayeuxError.ClientUnknown(message.ClientId));
            reply.Advice = HandshakeAdvice();
            return null;
        }

        return session;
    }

    private static IReadOnlyList<string>? CheckSubscriptions(BayeuxMessage message, BayeuxReply reply)
    {
        var patterns = message.Subscriptions;
        reply.ClientId = message.ClientId;
        reply.Subscriptions = patterns;
        reply.SubscriptionIsArray = message.SubscriptionIsArray;
        if (patterns is null || patterns.Count == 0)
        {
            reply.Fail(BayeuxError.ParameterMissing("subscription"));
            return null;
        }

        foreach (var pattern in patterns)
        {
            if (!ChannelName.IsValidPattern(pattern))
            {
                reply.Fail(BayeuxError.ChannelInvalid(pattern));
                return null;
            }

            if (ChannelName.IsMeta(pattern) || ChannelName.IsService(pattern))
            {
                reply.Fail(BayeuxError.ChannelForbidden(pattern));
                return null;
            }
        }

        return patterns;
    }

    private async ValueTask RunOutgoingAsync(BayeuxMessage request, BayeuxReply reply, BayeuxSession? session, BayeuxTransportContext transport,
        CancellationToken cancellationToken)
    {
        if (_extensions.Length == 0)
        {
            return;
        }

        var outgoing = new BayeuxOutgoing(request, reply, session, transport);
        foreach (var extension in _extensions)
        {
            await extension.OutgoingAsync(outgoing, cancellationToken);
        }
    }

    private JsonObject RetryAdvice() => new()
    {
        ["reconnect"] = "retry",
        ["interval"] = (long)Options.ReconnectInterval.TotalMilliseconds,
        ["timeout"] = (long)Options.ConnectTimeout.TotalMilliseconds,
    };

    private static JsonObject HandshakeAdvice() => new() { ["reconnect"] = "handshake", ["interval"] = 0 };
}
