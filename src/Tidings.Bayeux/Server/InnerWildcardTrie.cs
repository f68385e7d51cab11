using System.Collections.Concurrent;

namespace Tidings.Bayeux.Server;

/// <summary>
/// The patterns with an inner <c>*</c> (<c>/api/flows/*/messages</c>), which <see cref="Protocol.ChannelName.Expand"/>
/// cannot produce, in a tree of segments. A publish walks only the branches its channel's segments take (the literal
/// segment and <c>*</c> at each level), so its cost depends on the channel and the patterns that match it, not on how
/// many patterns exist. Lookups take no lock (children are concurrent maps; a lookup that races a removal at worst
/// reports a pattern whose subscriber set is already gone, which the caller skips); the caller serializes writes.
/// </summary>
internal sealed class InnerWildcardTrie
{
    private readonly Node _root = new(null, string.Empty);

    /// <summary>Adds a pattern (no effect if present). It must start with <c>/</c>.</summary>
    public void Add(string pattern)
    {
        var node = _root;
        var rest = pattern.AsSpan(1);
        while (true)
        {
            var end = rest.IndexOf('/');
            var segment = end < 0 ? rest : rest[..end];
            if (end < 0 && segment is "**")
            {
                node.AnyDepth = pattern;
                return;
            }

            node = node.Child(segment.ToString());
            if (end < 0)
            {
                node.Terminal = pattern;
                return;
            }

            rest = rest[(end + 1)..];
        }
    }

    /// <summary>Removes a pattern and the branches that then lead nowhere.</summary>
    public void Remove(string pattern)
    {
        var node = _root;
        var rest = pattern.AsSpan(1);
        while (true)
        {
            var end = rest.IndexOf('/');
            var segment = end < 0 ? rest : rest[..end];
            if (end < 0 && segment is "**")
            {
                node.AnyDepth = null;
                break;
            }

            if (node.Children?.TryGetValue(segment.ToString(), out var child) != true)
            {
                return;
            }

            node = child!;
            if (end < 0)
            {
                node.Terminal = null;
                break;
            }

            rest = rest[(end + 1)..];
        }

        while (node.Parent is { } parent && node.IsEmpty)
        {
            parent.Children!.TryRemove(node.Segment, out _);
            node = parent;
        }
    }

    /// <summary>Calls <paramref name="found"/> with every pattern that matches the concrete <paramref name="channel"/>.</summary>
    public void Match<TState>(string channel, TState state, Action<string, TState> found)
    {
        if (!_root.IsEmpty)
        {
            Walk(_root, channel.AsSpan(1), state, found);
        }
    }

    private static void Walk<TState>(Node node, ReadOnlySpan<char> rest, TState state, Action<string, TState> found)
    {
        // rest is what the channel has left below node: at least one segment.
        if (node.AnyDepth is { } anyDepth)
        {
            found(anyDepth, state);
        }

        if (node.Children is not { } children)
        {
            return;
        }

        var end = rest.IndexOf('/');
        var segment = end < 0 ? rest : rest[..end];
        var lookup = children.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(segment, out var literal))
        {
            Visit(literal, end, rest, state, found);
        }

        if (!segment.SequenceEqual("*") && lookup.TryGetValue("*", out var star))
        {
            Visit(star, end, rest, state, found);
        }
    }

    private static void Visit<TState>(Node child, int end, ReadOnlySpan<char> rest, TState state, Action<string, TState> found)
    {
        if (end < 0)
        {
            if (child.Terminal is { } terminal)
            {
                found(terminal, state);
            }
        }
        else
        {
            Walk(child, rest[(end + 1)..], state, found);
        }
    }

    private sealed class Node(Node? parent, string segment)
    {
        public Node? Parent { get; } = parent;

        public string Segment { get; } = segment;

        /// <summary>Segment → child; null until the first child.</summary>
        public volatile ConcurrentDictionary<string, Node>? Children;

        /// <summary>The pattern that ends at this node, if any.</summary>
        public volatile string? Terminal;

        /// <summary>The pattern that is this node's path followed by <c>/**</c>, if any.</summary>
        public volatile string? AnyDepth;

        public bool IsEmpty => Terminal is null && AnyDepth is null && Children is not { IsEmpty: false };

        public Node Child(string segment)
        {
            Children ??= new ConcurrentDictionary<string, Node>(StringComparer.Ordinal);
            return Children.GetOrAdd(segment, s => new Node(this, s));
        }
    }
}
