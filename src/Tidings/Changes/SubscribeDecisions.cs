using System.Collections.Concurrent;
using Tidings.Access;
using Tidings.Bayeux.Server;

namespace Tidings.Changes;

/// <summary>
/// What a List rule's policies decided for a session when it subscribed, per subscribed channel. Deliveries are filtered
/// per recipient synchronously and may not wait for an authorization handler, so a policy on List is evaluated once, at
/// subscribe time, and each event to that session reuses the decision. A session with no decision for the channel (say,
/// one subscribed only through <c>/**</c>) is refused by the policy: fail closed.
/// </summary>
/// <remarks>Kept while the subscription lives (dropped on unsubscribe and with the session): bounded by
/// <c>Bayeux:MaxSubscriptionsPerSession</c>.</remarks>
internal static class SubscribeDecisions
{
    private const string Key = "tidings.subscribe-decisions";

    public static void Remember(BayeuxSession session, string channel, PolicyDecisions decisions) =>
        session.GetOrAdd(Key, () => new ConcurrentDictionary<string, PolicyDecisions>(StringComparer.Ordinal))[channel] = decisions;

    /// <summary>The decisions made when <paramref name="session"/> subscribed to <paramref name="channel"/>, or null.</summary>
    public static PolicyDecisions? For(BayeuxSession session, string channel) =>
        session.GetOrAdd(Key, () => new ConcurrentDictionary<string, PolicyDecisions>(StringComparer.Ordinal)).TryGetValue(channel, out var decided)
            ? decided
            : null;

    public static void Forget(BayeuxSession session, IReadOnlyList<string> channels)
    {
        var decided = session.GetOrAdd(Key, () => new ConcurrentDictionary<string, PolicyDecisions>(StringComparer.Ordinal));
        foreach (var channel in channels)
        {
            decided.TryRemove(channel, out _);
        }
    }
}
