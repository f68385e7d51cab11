using System.Collections.Concurrent;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// Channel name or pattern → subscribers. A publish expands its channel into the few patterns that can
/// match it (<see cref="ChannelName.Expand"/>) and looks each up, so its cost does not grow with the
/// number of wildcard subscriptions. Each set keeps an array snapshot for the fan-out loop, rebuilt only
/// after a change: publishing takes no lock per subscriber and allocates nothing per subscriber.
/// </summary>
internal sealed class SubscriptionIndex
{
    private readonly ConcurrentDictionary<string, SubscriberSet> _sets = new(StringComparer.Ordinal);

    [ThreadStatic]
    private static HashSet<Subscriber>? t_seen;

    public int PatternCount => _sets.Count;

    public void Add(string pattern, Subscriber subscriber)
    {
        while (true)
        {
            var set = _sets.GetOrAdd(pattern, static _ => new SubscriberSet());
            if (set.TryAdd(subscriber))
            {
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
        }
    }

    /// <summary>Hands <paramref name="delivery"/> to every subscriber whose pattern matches, once each.</summary>
    /// <returns>How many subscribers it reached.</returns>
    public int Publish(Delivery delivery)
    {
        var patterns = ChannelName.Expand(delivery.Channel);
        SubscriberSet? only = null;
        var matchedSets = 0;
        foreach (var pattern in patterns)
        {
            if (_sets.TryGetValue(pattern, out var set))
            {
                only = set;
                matchedSets++;
            }
        }

        if (matchedSets == 0)
        {
            return 0;
        }

        if (matchedSets == 1)
        {
            var members = only!.Snapshot();
            foreach (var subscriber in members)
            {
                subscriber.Deliver(delivery);
            }

            return members.Length;
        }

        // Several patterns match (say /a/b and /a/*): a subscriber of both still gets one copy.
        var seen = t_seen ??= [];
        try
        {
            foreach (var pattern in patterns)
            {
                if (_sets.TryGetValue(pattern, out var set))
                {
                    foreach (var subscriber in set.Snapshot())
                    {
                        if (seen.Add(subscriber))
                        {
                            subscriber.Deliver(delivery);
                        }
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
