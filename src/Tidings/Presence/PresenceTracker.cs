using System.Text.Json;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Changes;
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
/// presence is about who watches that channel. With several nodes (<see cref="IPresenceShare"/>) the counts are this
/// node's plus the other live nodes', and JOIN/LEAVE are the transitions of that sum: a user joins with their first
/// session on any node and leaves with their last one, or when the node that held it stops heartbeating.
/// </remarks>
internal sealed class PresenceTracker
{
    /// <summary>The Bayeux channel prefix of presence: <c>/tidings/presence/api/flows/main/messages</c>.</summary>
    public const string ChannelPrefix = "/tidings/presence";

    /// <summary>The user key of signed-out sessions (a user name is never empty).</summary>
    public const string Anonymous = "";

    private static readonly IReadOnlyDictionary<string, int> None = new Dictionary<string, int>();

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Dictionary<string, int>> _local = new(StringComparer.Ordinal);
    private IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> _remote = new Dictionary<string, IReadOnlyDictionary<string, int>>();
    private readonly Dictionary<string, HashSet<string>> _sessions = new(StringComparer.Ordinal);
    private readonly BayeuxServer _bayeux;
    private readonly CollectionRegistry _registry;
    private readonly IPresenceShare? _share;

    public PresenceTracker(BayeuxServer bayeux, CollectionRegistry registry, IEnumerable<IPresenceShare> shares)
    {
        _bayeux = bayeux;
        _registry = registry;
        _share = shares.FirstOrDefault();
    }

    /// <summary>Starts following the Bayeux server's subscriptions (and the other nodes', when shared).</summary>
    public void Start()
    {
        _bayeux.Subscribed += OnSubscribed;
        _bayeux.Unsubscribed += OnUnsubscribed;
        if (_share is not null)
        {
            _share.RemoteChanged += OnRemoteChanged;
        }
    }

    /// <summary>The lock a presence subscriber's snapshot and activation are taken under.</summary>
    internal Lock Gate => _gate;

    /// <summary>Who watches <paramref name="path"/> now: users by name (ordinal order) with their session counts, and anonymous sessions.</summary>
    public PresenceSnapshot Snapshot(string path)
    {
        lock (_gate)
        {
            var local = _local.GetValueOrDefault(path) ?? (IReadOnlyDictionary<string, int>)None;
            var remote = _remote.GetValueOrDefault(path) ?? None;
            var users = local.Keys.Union(remote.Keys).Where(u => u != Anonymous).Order(StringComparer.Ordinal)
                .Select(u => new PresenceUser(u, local.GetValueOrDefault(u) + remote.GetValueOrDefault(u))).ToList();
            return new PresenceSnapshot(path, users, local.GetValueOrDefault(Anonymous) + remote.GetValueOrDefault(Anonymous));
        }
    }

    private int Total(string channel, string user) =>
        (_local.TryGetValue(channel, out var local) ? local.GetValueOrDefault(user) : 0)
        + (_remote.TryGetValue(channel, out var remote) ? remote.GetValueOrDefault(user) : 0);

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

                if (watched.Add(pattern))
                {
                    ChangeLocal(pattern, UserName(session) ?? Anonymous, +1);
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
                if (watched.Remove(pattern))
                {
                    ChangeLocal(pattern, UserName(session) ?? Anonymous, -1);
                }
            }

            if (watched.Count == 0)
            {
                _sessions.Remove(session.Id);
            }
        }
    }

    /// <summary>One of this node's sessions of <paramref name="user"/> came or went. Under the lock.</summary>
    private void ChangeLocal(string channel, string user, int delta)
    {
        var before = Total(channel, user);
        if (!_local.TryGetValue(channel, out var users))
        {
            _local[channel] = users = new Dictionary<string, int>(StringComparer.Ordinal);
        }

        var sessions = users.GetValueOrDefault(user) + delta;
        if (sessions > 0)
        {
            users[user] = sessions;
        }
        else
        {
            users.Remove(user);
            if (users.Count == 0)
            {
                _local.Remove(channel);
            }
        }

        _share?.Set(channel, user, Math.Max(0, sessions));
        AnnounceTransition(channel, user, before, Total(channel, user));
    }

    /// <summary>The other nodes' picture changed: announce whoever joined or left overall.</summary>
    private void OnRemoteChanged(IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> remote)
    {
        lock (_gate)
        {
            var previous = _remote;
            var before = new Dictionary<(string Channel, string User), int>();
            foreach (var (channel, users) in previous.Concat(remote))
            {
                foreach (var user in users.Keys)
                {
                    before.TryAdd((channel, user), Total(channel, user));
                }
            }

            _remote = remote;
            foreach (var ((channel, user), total) in before)
            {
                AnnounceTransition(channel, user, total, Total(channel, user));
            }
        }
    }

    private void AnnounceTransition(string channel, string user, int before, int after)
    {
        if (user == Anonymous)
        {
            return; // signed-out sessions change the count only
        }

        if (before == 0 && after > 0)
        {
            Announce(channel, "JOIN", user);
        }
        else if (before > 0 && after == 0)
        {
            Announce(channel, "LEAVE", user);
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
        if (_registry.Resolve(path) is not { } target)
        {
            return; // another node's channel this node does not declare
        }

        var data = JsonSerializer.SerializeToUtf8Bytes(new PresenceEvent(method, user), PresenceJson.Default.PresenceEvent);
        var delivery = Delivery.CreateRaw(ChannelPrefix + path, data);
        _bayeux.Publish(target.Collection.IsReadableByAnyone ? delivery : delivery.WithFilter(new ReadersOnly(target)));
    }

    /// <summary>The presence channel a subscriber asked for, or null when it names no collection.</summary>
    public CollectionTarget? Resolve(string presenceChannel) =>
        presenceChannel.StartsWith(ChannelPrefix + "/", StringComparison.Ordinal) && presenceChannel[ChannelPrefix.Length..] is var path
            && !ChannelName.IsWildcard(path)
            ? _registry.Resolve(path)
            : null;

    /// <summary>
    /// Presence is delivered to those who may list the collection (say, a subscriber through <c>/**</c>). A List policy
    /// counts as decided when the recipient subscribed to this presence channel or to the collection's own channel.
    /// </summary>
    private sealed class ReadersOnly(CollectionTarget target) : IDeliveryFilter
    {
        public Delivery? Select(BayeuxSession recipient, Delivery delivery)
        {
            var list = target.Collection.Access.List;
            var decisions = list.UsesPolicies
                ? SubscribeDecisions.For(recipient, delivery.Channel) ?? SubscribeDecisions.For(recipient, target.Path)
                : null;
            return list.Allows(new AccessContext(recipient.User, target.RouteValues) { Decisions = decisions }) ? delivery : null;
        }
    }
}
