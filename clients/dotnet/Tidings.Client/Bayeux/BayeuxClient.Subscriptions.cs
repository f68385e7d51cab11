using System.Text.Json.Nodes;

namespace Tidings.Client.Bayeux;

public sealed partial class BayeuxClient
{
    /// <summary>
    /// Subscribes <paramref name="handler"/> to a channel or pattern (<c>/chat/*</c>, <c>/chat/**</c>, and on a Tidings server
    /// <c>/api/flows/*/messages</c>: each event once, on its concrete channel) and waits for the server's confirmation (a refusal throws <see cref="TidingsException"/> with the Bayeux error's code). The
    /// subscription is renewed after every re-handshake. Handlers run one message at a time, in arrival order.
    /// </summary>
    public Task<BayeuxSubscription> SubscribeAsync(string channel, Func<BayeuxMessage, CancellationToken, ValueTask> handler,
        CancellationToken cancellationToken = default) =>
        SubscribeAsync(channel, handler, subscribeExt: null, refused: null, cancellationToken);

    /// <inheritdoc cref="SubscribeAsync(string, Func{BayeuxMessage, CancellationToken, ValueTask}, CancellationToken)"/>
    public Task<BayeuxSubscription> SubscribeAsync(string channel, Action<BayeuxMessage> handler, CancellationToken cancellationToken = default) =>
        SubscribeAsync(channel, (message, _) =>
        {
            handler(message);
            return ValueTask.CompletedTask;
        }, subscribeExt: null, refused: null, cancellationToken);

    /// <param name="subscribeExt">Asked for the <c>ext</c> of every subscribe message, re-subscribes included.</param>
    /// <param name="refused">Told when a re-subscribe is refused (the first refusal is thrown instead).</param>
    internal async Task<BayeuxSubscription> SubscribeAsync(string channel, Func<BayeuxMessage, CancellationToken, ValueTask> handler,
        Func<JsonObject?>? subscribeExt, Action<TidingsException>? refused, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ChannelSubscription subscription;
        var entry = new HandlerEntry(handler);
        lock (_gate)
        {
            if (!_subscriptions.TryGetValue(channel, out subscription!))
            {
                subscription = new ChannelSubscription(channel);
                _subscriptions[channel] = subscription;
            }

            subscription.Handlers = [.. subscription.Handlers, entry];
            if (subscribeExt is not null)
            {
                subscription.SubscribeExt = subscribeExt;
                subscription.Refused = refused;
                subscription.Generation = -1; // a collection asks again with its own ext
            }
        }

        var handle = new BayeuxSubscription(this, subscription, entry);
        try
        {
            await EnsureSubscribedAsync(subscription, cancellationToken);
        }
        catch
        {
            await handle.DisposeAsync();
            throw;
        }

        return handle;
    }

    /// <summary>
    /// Makes sure the channel is subscribed in the current session. Callers share one attempt per subscription (the
    /// first subscribe and the re-subscribe after a handshake would otherwise both go out, and a collection would get
    /// two snapshots); each caller's token ends only its own wait.
    /// </summary>
    private Task EnsureSubscribedAsync(ChannelSubscription subscription, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (subscription.InFlight is not { IsCompleted: false })
            {
                subscription.InFlight = SubscribeUntilCurrentAsync(subscription, _stop.Token);
            }

            return subscription.InFlight.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Subscribes until the subscription is known in the session that is current; handshakes again on 401/402.</summary>
    private async Task SubscribeUntilCurrentAsync(ChannelSubscription subscription, CancellationToken cancellationToken)
    {
        await Task.Yield(); // never run the first send under the caller's lock
        for (var attempt = 0; ; attempt++)
        {
            lock (_gate)
            {
                if (subscription.Removed || (_clientId is not null && subscription.Generation == _generation))
                {
                    return;
                }
            }

            JsonObject reply;
            Session session;
            try
            {
                (reply, session) = await SendInSessionAsync(s =>
                {
                    var message = new JsonObject
                    {
                        ["channel"] = "/meta/subscribe",
                        ["clientId"] = s.ClientId,
                        ["subscription"] = subscription.Channel,
                    };
                    var ext = subscription.SubscribeExt?.Invoke();
                    if (BayeuxChannel.HasInnerWildcard(subscription.Channel))
                    {
                        // Tidings asks how inner-wildcard events should arrive. This client routes each concrete channel
                        // to every subscription whose pattern matches it (DispatchAsync), so: on the concrete channels.
                        ext ??= [];
                        ext["delivery"] = "concrete";
                    }

                    if (ext is not null)
                    {
                        message["ext"] = ext;
                    }

                    return message;
                }, cancellationToken);
            }
            catch (Exception ex) when (IsLinkFailure(ex) && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(Backoff(attempt), _time, cancellationToken);
                continue;
            }

            if (IsSuccessful(reply))
            {
                lock (_gate)
                {
                    if (!_subscriptions.ContainsKey(subscription.Channel) || subscription.Removed)
                    {
                        return;
                    }

                    subscription.Generation = Math.Max(subscription.Generation, session.Generation);
                    if (_clientId is not null && _generation == subscription.Generation)
                    {
                        return;
                    }
                }

                continue; // a new session began meanwhile: subscribe there too
            }

            var error = (string?)reply["error"];
            if (ErrorCode(error) is 401 or 402 || Reconnect(reply) == "handshake")
            {
                // The session is gone: the loop handshakes again, and this subscription goes out in the new one.
                DropSession(session.ClientId);
                continue;
            }

            throw TidingsException.FromBayeuxError(error, "subscribe");
        }
    }

    internal async ValueTask RemoveHandlerAsync(ChannelSubscription subscription, HandlerEntry entry)
    {
        bool last;
        string? clientId;
        lock (_gate)
        {
            subscription.Handlers = [.. subscription.Handlers.Where(h => !ReferenceEquals(h, entry))];
            last = subscription.Handlers.Length == 0 && !subscription.Removed;
            if (last)
            {
                subscription.Removed = true;
                _subscriptions.Remove(subscription.Channel);
            }

            clientId = _clientId;
        }

        if (!last || clientId is null || _stop.IsCancellationRequested || _transport is not { IsClosed: false } transport)
        {
            return;
        }

        try
        {
            await SendOnAsync(transport, new JsonObject
            {
                ["channel"] = "/meta/unsubscribe",
                ["clientId"] = clientId,
                ["subscription"] = subscription.Channel,
            }, _options.RequestTimeout, _stop.Token);
        }
        catch (Exception ex) when (IsLinkFailure(ex) || ex is TidingsException)
        {
            // Not subscribed any more as far as this client is concerned; the server forgets it with the session.
        }
    }

    /// <summary>
    /// Publishes <paramref name="data"/> on <paramref name="channel"/> and returns the server's reply (its <c>ext</c> may
    /// carry an outcome, as Tidings' socket writes do). Waits for a session; a publish whose link fails before its reply
    /// is sent again (at least once), until <paramref name="cancellationToken"/> ends it. A refusal throws
    /// <see cref="TidingsException"/>; more than <c>MaxPendingPublishes</c> waiting fail at once with 503.
    /// </summary>
    public async Task<JsonObject> PublishAsync(string channel, JsonNode? data, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        if (Interlocked.Increment(ref _waitingPublishes) > _options.MaxPendingPublishes)
        {
            Interlocked.Decrement(ref _waitingPublishes);
            throw new TidingsException($"more than {_options.MaxPendingPublishes} publishes are waiting (MaxPendingPublishes)", 503) { Operation = "publish" };
        }

        try
        {
            for (var attempt = 0; ; attempt++)
            {
                JsonObject reply;
                Session session;
                try
                {
                    (reply, session) = await SendInSessionAsync(s => new JsonObject
                    {
                        ["channel"] = channel,
                        ["clientId"] = s.ClientId,
                        ["data"] = data?.DeepClone(),
                    }, cancellationToken);
                }
                catch (Exception ex) when (IsLinkFailure(ex) && !cancellationToken.IsCancellationRequested)
                {
                    await Task.Delay(Backoff(attempt), _time, cancellationToken);
                    continue;
                }

                if (IsSuccessful(reply))
                {
                    return reply;
                }

                var error = (string?)reply["error"];
                if (ErrorCode(error) is 401 or 402 || Reconnect(reply) == "handshake")
                {
                    DropSession(session.ClientId);
                    continue;
                }

                var refused = TidingsException.FromBayeuxError(error, "publish");
                throw new TidingsException(refused.Message, refused.Status, refused.Errors)
                {
                    Operation = "publish",
                    Problem = reply["ext"] as JsonObject,
                };
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waitingPublishes);
        }
    }

    /// <summary>Ends the session (<c>/meta/disconnect</c>, best effort) and stops the client.</summary>
    public Task DisconnectAsync(CancellationToken cancellationToken = default) => DisconnectCoreAsync(cancellationToken);

    private async Task DisconnectCoreAsync(CancellationToken cancellationToken = default)
    {
        string? clientId;
        lock (_gate)
        {
            clientId = _clientId;
            _clientId = null;
            _connected.TrySetCanceled(CancellationToken.None);
        }

        await _stop.CancelAsync();
        if (clientId is not null && _transport is { IsClosed: false } transport)
        {
            try
            {
                await SendOnAsync(transport, new JsonObject { ["channel"] = "/meta/disconnect", ["clientId"] = clientId },
                    TimeSpan.FromSeconds(2), cancellationToken);
            }
            catch (Exception ex) when (IsLinkFailure(ex) || ex is TidingsException)
            {
            }
        }

        _deliveries.Writer.TryComplete();
        await DropTransportAsync();
        foreach (var task in new[] { _loop, _dispatch })
        {
            if (task is not null)
            {
                await task.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        SetState(BayeuxConnectionState.Disconnected);
    }

    private async Task DispatchAsync(CancellationToken stop)
    {
        try
        {
            await foreach (var raw in _deliveries.Reader.ReadAllAsync(stop))
            {
                var message = new BayeuxMessage(raw);
                ChannelSubscription[] matching;
                lock (_gate)
                {
                    matching = [.. _subscriptions.Values.Where(s => BayeuxChannel.Matches(s.Channel, message.Channel))];
                }

                foreach (var subscription in matching)
                {
                    foreach (var entry in subscription.Handlers)
                    {
                        try
                        {
                            await entry.Handler(message, stop);
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested)
                        {
                            return;
                        }
                        catch (Exception ex)
                        {
                            BayeuxClientLog.HandlerFailed(_logger, message.Channel, ex);
                            RaiseError($"a handler of {message.Channel} failed: {ex.Message}", ex);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    internal sealed class ChannelSubscription(string channel)
    {
        public string Channel { get; } = channel;

        public HandlerEntry[] Handlers { get; set; } = [];

        public Func<JsonObject?>? SubscribeExt { get; set; }

        public Action<TidingsException>? Refused { get; set; }

        /// <summary>The session generation it is known subscribed in (-1: none).</summary>
        public long Generation { get; set; } = -1;

        public bool Removed { get; set; }

        /// <summary>The subscribe attempt under way, shared by everyone who waits for it.</summary>
        public Task? InFlight { get; set; }
    }

    internal sealed class HandlerEntry(Func<BayeuxMessage, CancellationToken, ValueTask> handler)
    {
        public Func<BayeuxMessage, CancellationToken, ValueTask> Handler { get; } = handler;
    }
}

/// <summary>A handler's subscription; dispose (or <see cref="UnsubscribeAsync"/>) to stop receiving.</summary>
public sealed class BayeuxSubscription : IAsyncDisposable
{
    private readonly BayeuxClient _client;
    private readonly BayeuxClient.ChannelSubscription _subscription;
    private readonly BayeuxClient.HandlerEntry _entry;
    private int _disposed;

    internal BayeuxSubscription(BayeuxClient client, BayeuxClient.ChannelSubscription subscription, BayeuxClient.HandlerEntry entry)
    {
        _client = client;
        _subscription = subscription;
        _entry = entry;
    }

    public string Channel => _subscription.Channel;

    public ValueTask UnsubscribeAsync() => DisposeAsync();

    public ValueTask DisposeAsync() =>
        Interlocked.Exchange(ref _disposed, 1) == 0 ? _client.RemoveHandlerAsync(_subscription, _entry) : ValueTask.CompletedTask;
}
