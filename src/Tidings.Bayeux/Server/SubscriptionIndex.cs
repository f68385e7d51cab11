using System.Collections.Concurrent;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Channel name or pattern → subscribers. A publish expands its channel into the few patterns that can
/// match it (<see cref="ChannelName.Expand"/>) and looks each up, so its cost does not grow with the
/// number of wildcard subscriptions. Each set keeps an array snapshot for the fan-out loop, rebuilt only
/// after a change: publishing takes no lock per subscriber and allocates nothing per subscriber.
/// Patterns with an inner <c>*</c> (<c>/api/flows/*/messages</c>) cannot be found by expansion; they live in a tree
/// of segments (<see cref="InnerWildcardTrie"/>) that a publish walks along its channel's segments, so their number
/// does not cost anything per publish either. (Sessions are capped in how many they hold:
/// <see cref="BayeuxOptions.MaxInnerWildcardsPerSession"/>.)
/// </summary>
internal sealed class SubscriptionIndex
{
    private readonly ConcurrentDictionary<string, SubscriberSet> _sets = new(StringComparer.Ordinal);
    private readonly InnerWildcardTrie _innerPatterns = new();
    private readonly Lock _innerGate = new();

    [ThreadStatic]
    private static HashSet<Subscriber>? t_seen;

    [ThreadStatic]
    private static List<SubscriberSet>? t_matched;

    /// <summary>How many <see cref="Publish"/> calls are running on this thread (more than one when a callback publishes).</summary>
    [ThreadStatic]
    private static int t_depth;

    /// <summary>Channels and patterns with a subscriber (a count over the table: for operators, not for the publish path).</summary>
    public int PatternCount => _sets.Count;

    public void Add(string pattern, Subscriber subscriber)
    {
        while (true)
        {
            var set = _sets.GetOrAdd(pattern, static _ => new SubscriberSet());
            if (set.TryAdd(subscriber))
            {
                // Added to the set first, then to the tree: a concurrent removal of the pattern's last subscriber
                // then sees the set and keeps the pattern in the tree.
                if (ChannelName.HasInnerWildcard(pattern))
                {
                    lock (_innerGate)
                    {
                        _innerPatterns.Add(pattern);
                    }
                }

                return;
            }

            // The set was emptied and retired between the lookup and the add; use its replacement.
        }
    }

    public void Remove(string pattern, Subscriber subscriber)
    {
        if (_sets.TryGetValue(pattern, out var set) && set.RemoveAndRetireIfEmpty(subscriber))
        {
            _sets.TryRemove(new KeyValuePair<string, SubscriberSet>(pattern, set));
            if (ChannelName.HasInnerWildcard(pattern))
            {
                lock (_innerGate)
                {
                    if (!_sets.ContainsKey(pattern))
                    {
                        _innerPatterns.Remove(pattern);
                    }
                }
            }
        }
    }

    /// <summary>Fills <paramref name="matched"/> with the sets whose pattern matches <paramref name="channel"/>.</summary>
    /// <returns>The one matching set when exactly one matches, else null.</returns>
    private SubscriberSet? Match(string channel, List<SubscriberSet> matched)
    {
        foreach (var pattern in ChannelName.Expand(channel))
        {
            if (_sets.TryGetValue(pattern, out var set))
            {
                matched.Add(set);
            }
        }

        _innerPatterns.Match(channel, (_sets, matched), static (pattern, state) =>
        {
            if (state._sets.TryGetValue(pattern, out var set))
            {
                state.matched.Add(set);
            }
        });

        return matched.Count == 1 ? matched[0] : null;
    }

    /// <summary>Hands <paramref name="delivery"/> to every subscriber whose pattern matches, once each.</summary>
    /// <returns>How many subscribers it reached.</returns>
    public int Publish(Delivery delivery)
    {
        // A server subscriber's callback runs inside this loop and may publish on the same thread. Only the
        // outermost publish uses the thread's scratch collections; a nested one allocates its own, so it
        // cannot clear them under the loop that is still iterating them.
        var nested = t_depth > 0;
        var matched = nested ? new List<SubscriberSet>() : (t_matched ??= []);
        t_depth++;
        try
        {
            if (Match(delivery.Channel, matched) is { } only)
            {
                var members = only.Snapshot();
                foreach (var subscriber in members)
                {
                    DeliverTo(subscriber, delivery);
                }

                return members.Length;
            }

            if (matched.Count == 0)
            {
                return 0;
            }

            // Several patterns match (say /a/b and /a/*): a subscriber of both still gets one copy.
            var seen = nested ? new HashSet<Subscriber>() : (t_seen ??= []);
            try
            {
                foreach (var set in matched)
                {
                    foreach (var subscriber in set.Snapshot())
                    {
                        if (seen.Add(subscriber))
                        {
                            DeliverTo(subscriber, delivery);
                        }
                    }
                }

                return seen.Count;
            }
            finally
            {
                seen.Clear();
            }
        }
        finally
        {
            t_depth--;
            matched.Clear();
        }
    }

    private static void DeliverTo(Subscriber subscriber, Delivery delivery)
    {
        if (delivery.Filter is { } filter && subscriber.Recipient is { } session)
        {
            if (filter.Select(session, delivery) is { } selected)
            {
                subscriber.Deliver(selected);
            }

            return;
        }

        subscriber.Deliver(delivery);
    }

    private sealed class SubscriberSet
    {
        private readonly HashSet<Subscriber> _members = [];
        private Subscriber[]? _snapshot;
        private bool _retired;

        public bool TryAdd(Subscriber subscriber)
        {
            lock (_members)
            {
                if (_retired)
                {
                    return false;
                }

                if (_members.Add(subscriber))
                {
                    _snapshot = null;
                }

                return true;
            }
        }

        public bool RemoveAndRetireIfEmpty(Subscriber subscriber)
        {
            lock (_members)
            {
                if (_members.Remove(subscriber))
                {
                    _snapshot = null;
                }

                _retired = _members.Count == 0;
                return _retired;
            }
        }

        public Subscriber[] Snapshot()
        {
            var snapshot = Volatile.Read(ref _snapshot);
            if (snapshot is not null)
            {
                return snapshot;
            }

            lock (_members)
            {
                return _snapshot ??= [.. _members];
            }
        }
    }
}
