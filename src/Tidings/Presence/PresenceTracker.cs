using System.Text.Json;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;

namespace Tidings.Presence;

/// <summary>
/// Who is watching each collection channel on this node: the sessions subscribed to the concrete channel, counted per
/// signed-in user (and anonymous sessions as one number). Kept from the Bayeux server's subscribe, unsubscribe and
/// session-end notifications — a session that dies without a disconnect leaves when it expires — so nothing runs per
/// published message. A user's first session joining sends <c>{"method": "JOIN", "user"}</c> on
/// <c>/tidings/presence</c> + the path, their last one leaving <c>{"method": "LEAVE", "user"}</c>; both filtered to those
/// who may read the collection, like its events.
/// </summary>
/// <remarks>
/// One lock orders the counts, the JOIN/LEAVE publishes and a presence subscriber's SNAPSHOT (sent and activated under
/// it), so a watcher sees every change after its snapshot exactly once. Subscriptions through wildcards do not count:
/// presence is about who watches that channel.
/// </remarks>
internal sealed class PresenceTracker
{
    /// <summary>The Bayeux channel prefix of presence: <c>/tidings/presence/api/flows/main/messages</c>.</summary>
    public const string ChannelPrefix = "/tidings/presence";

    private readonly Lock _gate = new();
    private readonly Dictionary<string, ChannelPresence> _channels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _sessions = new(StringComparer.Ordinal);
    private readonly BayeuxServer _bayeux;
    private readonly CollectionRegistry _registry;

    public PresenceTracker(BayeuxServer bayeux, CollectionRegistry registry)
    {
        _bayeux = bayeux;
        _registry = registry;
    }

    /// <summary>Starts following the Bayeux server's subscriptions.</summary>
    public void Start()
    {
        _bayeux.Subscribed += OnSubscribed;
        _bayeux.Unsubscribed += OnUnsubscribed;
    }

    /// <summary>The lock a presence subscriber's snapshot and activation are taken under.</summary>
    internal Lock Gate => _gate;

    /// <summary>Who watches <paramref name="path"/> now: users by name (ordinal order) with their session counts, and anonymous sessions.</summary>
    public PresenceSnapshot Snapshot(string path)
    {
        lock (_gate)
        {
            if (!_channels.TryGetValue(path, out var channel))
            {
                return new PresenceSnapshot(path, [], 0);
            }

            var users = channel.Users.OrderBy(u => u.Key, StringComparer.Ordinal).Select(u => new PresenceUser(u.Key, u.Value)).ToList();
            return new PresenceSnapshot(path, users, channel.Anonymous);
        }
    }

    private void OnSubscribed(BayeuxSession session, IReadOnlyList<string> patterns)
    {
        lock (_gate)
        {
            foreach (var pattern in patterns)
            {
                // Closed meanwhile (its end was told already), or unsubscribed again before this was told: not there.
                if (session.IsClosed || !Counts(pattern) || !session.Subscriptions.Contains(pattern))
                {
                    continue;
                }

                if (!_sessions.TryGetValue(session.Id, out var watched))
                {
                    _sessions[session.Id] = watched = new HashSet<string>(StringComparer.Ordinal);
                }

                if (!watched.Add(pattern))
                {
                    continue;
                }

                if (!_channels.TryGetValue(pattern, out var channel))
                {
                    _channels[pattern] = channel = new ChannelPresence();
                }

                if (UserName(session) is not { } name)
                {
                    channel.Anonymous++;
                }
                else if (channel.Users.TryGetValue(name, out var sessions))
                {
                    channel.Users[name] = sessions + 1;
                }
                else
                {
                    channel.Users[name] = 1;
                    Announce(pattern, "JOIN", name);
                }
            }
        }
    }

    private void OnUnsubscribed(BayeuxSession session, IReadOnlyList<string> patterns)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(session.Id, out var watched))
            {
                return;
            }

            foreach (var pattern in patterns)
            {
                if (!watched.Remove(pattern) || !_channels.TryGetValue(pattern, out var channel))
                {
                    continue;
                }

                if (UserName(session) is not { } name)
                {
                    channel.Anonymous--;
                }
                else if (channel.Users.TryGetValue(name, out var sessions) && sessions > 1)
                {
                    channel.Users[name] = sessions - 1;
                }
                else if (channel.Users.Remove(name))
                {
                    Announce(pattern, "LEAVE", name);
                }

                if (channel.Users.Count == 0 && channel.Anonymous == 0)
                {
                    _channels.Remove(pattern);
                }
            }

            if (watched.Count == 0)
            {
                _sessions.Remove(session.Id);
            }
        }
    }

    /// <summary>A concrete channel of a declared collection (not a wildcard, not a presence channel itself).</summary>
    private bool Counts(string pattern) => !ChannelName.IsWildcard(pattern) && _registry.Resolve(pattern) is not null;

    private static string? UserName(BayeuxSession session) =>
        session.User?.Identity is { IsAuthenticated: true, Name: { Length: > 0 } name } ? name : null;

    /// <summary>
    /// Publishes a JOIN or LEAVE to the path's presence channel (under the lock). Nobody subscribed: the index finds no
    /// one and it costs a lookup, once per join or leave.
    /// </summary>
    private void Announce(string path, string method, string user)
    {
        var data = JsonSerializer.SerializeToUtf8Bytes(new PresenceEvent(method, user), PresenceJson.Default.PresenceEvent);
        var delivery = Delivery.CreateRaw(ChannelPrefix + path, data);
        var target = _registry.Resolve(path)!;
        _bayeux.Publish(target.Collection.IsReadableByAnyone ? delivery : delivery.WithFilter(new ReadersOnly(target)));
    }

    /// <summary>The presence channel a subscriber asked for, or null when it names no collection.</summary>
    public CollectionTarget? Resolve(string presenceChannel) =>
        presenceChannel.StartsWith(ChannelPrefix + "/", StringComparison.Ordinal) && presenceChannel[ChannelPrefix.Length..] is var path
            && !ChannelName.IsWildcard(path)
            ? _registry.Resolve(path)
            : null;

    private sealed class ChannelPresence
    {
        public Dictionary<string, int> Users { get; } = new(StringComparer.Ordinal);

        public int Anonymous { get; set; }
    }

    /// <summary>Presence is delivered to those who may list the collection (say, a subscriber through <c>/**</c>).</summary>
    private sealed class ReadersOnly(CollectionTarget target) : IDeliveryFilter
    {
        public Delivery? Select(BayeuxSession recipient, Delivery delivery) =>
            target.Collection.Access.List.Allows(new AccessContext(recipient.User, target.RouteValues)) ? delivery : null;
    }
}
