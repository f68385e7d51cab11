using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// The protocol core: sessions, subscriptions, the meta-channel handlers (in
/// <c>BayeuxServer.Meta.cs</c>) and publishing. Transports hand it parsed batches and write back what it
/// returns; it knows nothing of HTTP framing. Server code publishes and subscribes through it too.
/// </summary>
public sealed partial class BayeuxServer : IDisposable
{
    private readonly ConcurrentDictionary<string, BayeuxSession> _sessions = new(StringComparer.Ordinal);
    private readonly SubscriptionIndex _index = new();
    private readonly ConcurrentDictionary<string, BayeuxServiceHandler> _services = new(StringComparer.Ordinal);
    private readonly IBayeuxExtension[] _extensions;
    private volatile IBayeuxChannelHandler[] _channelHandlers = [];
    private volatile IBayeuxBroker? _broker;
    private readonly ConcurrentDictionary<ISessionTransport, byte> _sockets = new();
    private readonly AddressSessionCounts _addresses = new();
    private volatile bool _stopping;
    private readonly ILogger _logger;
    private readonly ITimer _sweeper;
    private readonly BayeuxMetrics _metrics;

    public BayeuxServer(IOptions<BayeuxOptions> options, TimeProvider time, ILogger<BayeuxServer> logger, IEnumerable<IBayeuxExtension> extensions,
        IMeterFactory? meterFactory = null)
    {
        Options = options.Value;
        Time = time;
        _logger = logger;
        _extensions = [.. extensions];
        _metrics = new BayeuxMetrics(meterFactory, () => _sessions.Count, () => _sockets.Count);
        _sweeper = time.CreateTimer(static s => ((BayeuxServer)s!).SweepExpiredSessions(), this, Options.SweepInterval, Options.SweepInterval);
    }

    public BayeuxOptions Options { get; }
    public TimeProvider Time { get; }
    internal ILogger Logger => _logger;

    public int SessionCount => _sessions.Count;

    /// <summary>The live sessions, for operators' views (a moving snapshot: sessions may come and go while it is read).</summary>
    public IEnumerable<BayeuxSession> Sessions => _sessions.Values;

    /// <summary>Open Bayeux WebSockets.</summary>
    public int WebSocketCount => _sockets.Count;

    /// <summary>Distinct channels and patterns with at least one subscriber on this node.</summary>
    public int SubscribedChannelCount => _index.PatternCount;

    public bool TryGetSession(string clientId, out BayeuxSession session) => _sessions.TryGetValue(clientId, out session!);

    /// <summary>
    /// Carries client publishes to the other nodes of a cluster through <paramref name="broker"/>; what it brings
    /// back from them is published here with <see cref="Publish(Delivery)"/>. One broker per server.
    /// </summary>
    public void UseBroker(IBayeuxBroker broker) => _broker = broker;

    /// <summary>Publishes <paramref name="data"/> on <paramref name="channel"/> from server code, to this node's subscribers.</summary>
    /// <returns>How many subscribers it reached.</returns>
    public int Publish(string channel, JsonElement data)
    {
        EnsurePublishable(channel);
        return PublishCounted(Delivery.Create(channel, data));
    }

    /// <summary>Publishes a prepared delivery (e.g. one carrying a per-recipient <see cref="IDeliveryFilter"/>).</summary>
    public int Publish(Delivery delivery)
    {
        EnsurePublishable(delivery.Channel);
        return PublishCounted(delivery);
    }

    /// <summary>Publishes an already-serialized UTF-8 JSON payload, so callers that hold bytes skip a parse.</summary>
    public int PublishRaw(string channel, ReadOnlySpan<byte> utf8JsonData)
    {
        EnsurePublishable(channel);
        return PublishCounted(Delivery.CreateRaw(channel, utf8JsonData));
    }

    private int PublishCounted(Delivery delivery)
    {
        var recipients = _index.Publish(delivery);
        _metrics.Published(recipients);
        return recipients;
    }

    /// <summary>
    /// Subscribes server code to a channel or pattern. The callback runs on the publisher's thread: keep it
    /// short and hand real work to a queue. Dispose the result to unsubscribe.
    /// </summary>
    public IDisposable Subscribe(string pattern, Action<Delivery> onDelivery)
    {
        if (!ChannelName.IsValidPattern(pattern))
        {
            throw new ArgumentException($"'{pattern}' is not a valid channel name or pattern.", nameof(pattern));
        }

        var subscriber = new LocalSubscriber(delivery =>
        {
            try
            {
                onDelivery(delivery);
            }
            catch (Exception ex)
            {
                BayeuxLog.LocalSubscriberFailed(_logger, delivery.Channel, ex);
            }
        });
        _index.Add(pattern, subscriber);
        return new Unsubscriber(() => _index.Remove(pattern, subscriber));
    }

    /// <summary>Handles client publishes to <paramref name="channel"/> (a <c>/service/…</c> name or pattern).</summary>
    public void MapService(string channel, BayeuxServiceHandler handler)
    {
        if (!ChannelName.IsService(channel) || !ChannelName.IsValidPattern(channel))
        {
            throw new ArgumentException($"'{channel}' is not a /service/ channel.", nameof(channel));
        }

        if (!_services.TryAdd(channel, handler))
        {
            throw new InvalidOperationException($"A service handler for '{channel}' is already mapped.");
        }
    }

    /// <summary>Lets <paramref name="handler"/> take over the publishes and subscriptions of the channels it owns.</summary>
    public void AddChannelHandler(IBayeuxChannelHandler handler)
    {
        lock (_services)
        {
            _channelHandlers = [.. _channelHandlers, handler];
        }
    }

    private IBayeuxChannelHandler? FindChannelHandler(string channelOrPattern)
    {
        foreach (var handler in _channelHandlers)
        {
            if (handler.Owns(channelOrPattern))
            {
                return handler;
            }
        }

        return null;
    }

    /// <summary>
    /// Told after a <c>/meta/subscribe</c> succeeded, with the patterns it added. Runs on the request's thread, after the
    /// subscriptions are live; for bookkeeping such as presence (nothing here runs per published message).
    /// </summary>
    public event Action<BayeuxSession, IReadOnlyList<string>>? Subscribed;

    /// <summary>
    /// Told after subscriptions ended — a <c>/meta/unsubscribe</c>, or the session closing (disconnect, expiry, overflow,
    /// shutdown) with all of them. <see cref="BayeuxSession.IsClosed"/> is already true when a close tells it.
    /// </summary>
    public event Action<BayeuxSession, IReadOnlyList<string>>? Unsubscribed;

    internal void RaiseSubscribed(BayeuxSession session, IReadOnlyList<string> patterns) => Raise(Subscribed, session, patterns);

    internal void RaiseUnsubscribed(BayeuxSession session, IReadOnlyList<string> patterns) => Raise(Unsubscribed, session, patterns);

    private void Raise(Action<BayeuxSession, IReadOnlyList<string>>? observers, BayeuxSession session, IReadOnlyList<string> patterns)
    {
        if (observers is null || patterns.Count == 0)
        {
            return;
        }

        try
        {
            observers(session, patterns);
        }
        catch (Exception ex)
        {
            // An observer's failure must not fail the subscribe or the close that told it.
            BayeuxLog.LocalSubscriberFailed(_logger, patterns[0], ex);
        }
    }

    /// <summary>Ends a session: its held connect is answered, its subscriptions dropped, its socket closed on overflow.</summary>
    public void CloseSession(BayeuxSession session, SessionCloseReason reason)
    {
        if (!_sessions.TryRemove(new KeyValuePair<string, BayeuxSession>(session.Id, session)))
        {
            return;
        }

        var (held, socket, subscriptions) = session.Close(reason);
        foreach (var (pattern, entry) in subscriptions)
        {
            _index.Remove(pattern, entry);
        }

        _addresses.Remove(session.Address);
        RaiseUnsubscribed(session, [.. subscriptions.Select(s => s.Key)]);

        // An abandoned session's client has moved on to a new session: its held connect is not answered, since
        // "handshake again" would make the client (Faye obeys advice on any reply) abandon the new session too.
        held?.TryRelease(reason == SessionCloseReason.Abandoned ? ConnectRelease.ClientGone : ConnectRelease.SessionClosed);
        if (reason == SessionCloseReason.QueueOverflow)
        {
            BayeuxLog.QueueOverflow(_logger, session.Id, Options.MaxQueuedBytes);
            socket?.CloseForPolicy("Outbound queue exceeded Bayeux:MaxQueuedBytes; handshake again");
        }

        _metrics.Closed(reason);
        BayeuxLog.SessionClosed(_logger, session.Id, reason);
    }

    /// <summary>Closes sessions that no connect has reached within the connect timeout plus the grace period.</summary>
    internal void SweepExpiredSessions()
    {
        try
        {
            var now = Time.GetTimestamp();
            var limit = Options.ConnectTimeout + Options.SessionGrace;
            foreach (var session in _sessions.Values)
            {
                if (!session.HasHeldConnect && Time.GetElapsedTime(session.LastActivity, now) > limit)
                {
                    CloseSession(session, SessionCloseReason.Expired);
                }
            }
        }
        catch (Exception ex)
        {
            // A failed sweep must not stop the timer: the next one tries again.
            BayeuxLog.SweepFailed(_logger, ex);
        }
    }

    internal void Track(ISessionTransport socket, bool open)
    {
        if (open)
        {
            _sockets.TryAdd(socket, 0);
        }
        else
        {
            _sockets.TryRemove(socket, out _);
        }
    }

    /// <summary>
    /// Ends every session and closes every WebSocket (1001, going away), so held connects are answered with
    /// "handshake again" and the host can stop at once instead of waiting out open requests. Called when
    /// the application starts stopping.
    /// </summary>
    public void Shutdown()
    {
        _stopping = true;
        foreach (var session in _sessions.Values)
        {
            CloseSession(session, SessionCloseReason.ServerShutdown);
        }

        foreach (var socket in _sockets.Keys)
        {
            socket.CloseGoingAway();
        }
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        Shutdown();
        _metrics.Dispose();
    }

    private static void EnsurePublishable(string channel)
    {
        if (!ChannelName.IsValidName(channel) || ChannelName.IsMeta(channel))
        {
            throw new ArgumentException($"'{channel}' is not a channel one can publish to.", nameof(channel));
        }
    }

    /// <summary>The address a session counts against (<see cref="BayeuxOptions.MaxSessionsPerAddress"/>); IPv4 seen through IPv6 as IPv4.</summary>
    private static IPAddress ClientAddress(Microsoft.AspNetCore.Http.HttpContext context)
    {
        var address = context.Connection.RemoteIpAddress ?? IPAddress.None;
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    /// <summary>128 random bits, base-32 encoded: client ids cannot be guessed or enumerated.</summary>
    private static string NewClientId()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        const string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        Span<char> chars = stackalloc char[26];
        var buffer = 0;
        var bits = 0;
        var n = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[n++] = alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            chars[n++] = alphabet[(buffer << (5 - bits)) & 31];
        }

        return new string(chars[..n]);
    }

    private sealed class Unsubscriber(Action dispose) : IDisposable
    {
        private Action? _dispose = dispose;

        public void Dispose() => Interlocked.Exchange(ref _dispose, null)?.Invoke();
    }
}

/// <summary>Live sessions per client address, so one address cannot hold every session the server allows.</summary>
internal sealed class AddressSessionCounts
{
    private readonly Dictionary<IPAddress, int> _counts = [];

    /// <summary>Counts one more session for <paramref name="address"/>; false when it holds <paramref name="max"/> already.</summary>
    public bool TryAdd(IPAddress address, int max)
    {
        lock (_counts)
        {
            _counts.TryGetValue(address, out var count);
            if (count >= max)
            {
                return false;
            }

            _counts[address] = count + 1;
            return true;
        }
    }

    /// <summary>One session of <paramref name="address"/> ended; an address with none left is forgotten, so the table stays bounded by live sessions.</summary>
    public void Remove(IPAddress address)
    {
        lock (_counts)
        {
            if (_counts.TryGetValue(address, out var count))
            {
                if (count <= 1)
                {
                    _counts.Remove(address);
                }
                else
                {
                    _counts[address] = count - 1;
                }
            }
        }
    }
}
