using System.Collections.Concurrent;
using System.Net;
using System.Security.Claims;
using System.Text.Json;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Identity;

/// <summary>
/// Decides whom a Bayeux session belongs to, once, at handshake: a token in <c>ext.token</c> (for clients that
/// cannot set headers on a WebSocket), else the handshake request's user (cookie or <c>Authorization</c>).
/// A bad token is refused, never downgraded. Cookie identity is refused cross-site (CSRF) and ignored over
/// callback-polling, since any page can include a JSONP script with the victim's cookies.
/// </summary>
internal sealed class BayeuxIdentityExtension(TidingsTokens tokens, OriginPolicy origins) : IBayeuxExtension
{
    private static readonly ClaimsPrincipal Anonymous = new(new ClaimsIdentity());

    public async ValueTask IncomingAsync(BayeuxIncoming incoming, CancellationToken cancellationToken)
    {
        if (incoming.Message.Channel != ChannelName.Handshake)
        {
            return;
        }

        if (incoming.Message.TryGetExt("token", out var tokenField))
        {
            if (tokenField.ValueKind != JsonValueKind.String || tokenField.GetString() is not { Length: > 0 } token)
            {
                incoming.Refuse(BayeuxError.Format(403, "token", "ext.token must be a non-empty string"));
                return;
            }

            var (user, error) = await tokens.ValidateAsync(token);
            if (user is null)
            {
                incoming.Refuse(BayeuxError.Format(403, "token", "invalid token - " + error));
                return;
            }

            incoming.User = user;
            return;
        }

        var http = incoming.HttpContext;
        if (http.User.Identity?.IsAuthenticated == true && OriginPolicy.IsCookieUser(http))
        {
            if (incoming.Transport.ConnectionType == "callback-polling")
            {
                incoming.User = Anonymous;
            }
            else if (!origins.IsSameSite(http))
            {
                incoming.Refuse(BayeuxError.Format(403, "origin", "cookie sign-in is not accepted from another site - use ext.token"));
            }
        }
        else if (http.User.Identity?.IsAuthenticated != true)
        {
            incoming.User = Anonymous;
        }
    }
}

/// <summary>
/// Per-session limit on what a client may publish (socket writes included), so one client cannot flood
/// the server or other subscribers. Subscribes that ask for a catch-up (<c>ext.since</c>) or a snapshot count
/// too: each reads the store and runs a step in its writer. Beyond it, <c>429</c> errors; other meta messages are
/// not counted.
/// </summary>
internal sealed class BayeuxRateLimitExtension(TidingsOptions options, TimeProvider time) : IBayeuxExtension
{
    public ValueTask IncomingAsync(BayeuxIncoming incoming, CancellationToken cancellationToken)
    {
        if (incoming.Session is { } session && incoming.Message.Channel is { } channel
            && (!ChannelName.IsMeta(channel) || IsReadingSubscribe(incoming.Message)))
        {
            var bucket = session.GetOrAdd("tidings.publish-rate", () => new TokenBucket(options.PublishBurst, options.PublishesPerSecond, time));
            if (!bucket.TryTake())
            {
                incoming.Refuse(BayeuxError.Format(429, channel, "too many messages - slow down (Tidings.PublishesPerSecond)"));
            }
        }

        return ValueTask.CompletedTask;
    }

    private static bool IsReadingSubscribe(BayeuxMessage message) =>
        message.Channel == ChannelName.Subscribe && (message.TryGetExt("since", out _) || message.TryGetExt("snapshot", out _));
}

/// <summary>
/// Per-address limit on handshakes. A session is cheap to ask for and lives for the connect timeout plus the grace
/// period even if never used, so without this one client could fill <c>Bayeux:MaxSessions</c> (locking everyone
/// else out) or sidestep the per-session publish limit by starting new sessions. Behind a proxy, configure
/// ASP.NET Core's forwarded headers so the address is the client's. The table of addresses is bounded: idle
/// addresses (full buckets) are dropped when it fills.
/// </summary>
internal sealed class BayeuxHandshakeLimitExtension(TidingsOptions options, TimeProvider time) : IBayeuxExtension
{
    private const int MaxTrackedAddresses = 10_000;
    private readonly ConcurrentDictionary<IPAddress, TokenBucket> _buckets = new();

    public ValueTask IncomingAsync(BayeuxIncoming incoming, CancellationToken cancellationToken)
    {
        if (incoming.Message.Channel != ChannelName.Handshake)
        {
            return ValueTask.CompletedTask;
        }

        var address = incoming.HttpContext.Connection.RemoteIpAddress ?? IPAddress.None;
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (_buckets.Count >= MaxTrackedAddresses && !_buckets.ContainsKey(address))
        {
            Prune();
        }

        var bucket = _buckets.GetOrAdd(address, static (_, state) => new TokenBucket(state.options.HandshakeBurst, state.options.HandshakesPerSecond, state.time), (options, time));
        if (!bucket.TryTake())
        {
            incoming.Refuse(BayeuxError.Format(429, ChannelName.Handshake, "too many handshakes from this address - slow down (Tidings.HandshakesPerSecond)"));
        }

        return ValueTask.CompletedTask;
    }

    private void Prune()
    {
        foreach (var (address, bucket) in _buckets)
        {
            if (bucket.IsFull())
            {
                _buckets.TryRemove(address, out _);
            }
        }

        if (_buckets.Count >= MaxTrackedAddresses)
        {
            // Every tracked address is busy: forget them all rather than grow without bound.
            _buckets.Clear();
        }
    }
}

/// <summary>A token bucket on an injected clock: <c>capacity</c> at most, refilled at <c>perSecond</c>.</summary>
internal sealed class TokenBucket(int capacity, double perSecond, TimeProvider time)
{
    private readonly Lock _gate = new();
    private double _tokens = capacity;
    private long _last = time.GetTimestamp();

    public bool TryTake()
    {
        lock (_gate)
        {
            Refill();
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }

    /// <summary>True when the bucket has refilled completely: its owner has been quiet for a while.</summary>
    public bool IsFull()
    {
        lock (_gate)
        {
            Refill();
            return _tokens >= capacity;
        }
    }

    private void Refill()
    {
        var now = time.GetTimestamp();
        _tokens = Math.Min(capacity, _tokens + (time.GetElapsedTime(_last, now).TotalSeconds * perSecond));
        _last = now;
    }
}
