namespace Tidings.Bayeux.Protocol;

/// <summary>
/// The Bayeux channel grammar (Faye's): segments of letters, digits and <c>-_!~()$@</c>, separated by
/// <c>/</c>; a pattern ends in <c>/*</c> (one segment) or <c>/**</c> (any depth). Tidings also accepts
/// <c>*</c> as an inner segment (<c>/api/flows/*/messages</c>: one segment there) so a subscription can span
/// the partitions of a collection. One place decides what a
/// valid name is, so the meta-channel checks cannot drift apart (cf. CVE-2020-11020, where
/// <c>/meta/subscribe/x</c> was treated as <c>/meta/subscribe</c>).
/// </summary>
public static class ChannelName
{
    public const string Handshake = "/meta/handshake";
    public const string Connect = "/meta/connect";
    public const string Subscribe = "/meta/subscribe";
    public const string Unsubscribe = "/meta/unsubscribe";
    public const string Disconnect = "/meta/disconnect";

    /// <summary>The longest channel name accepted; longer names are invalid rather than expensive.</summary>
    public const int MaxLength = 1024;

    /// <summary>True for a concrete channel name (no wildcard).</summary>
    public static bool IsValidName(string? channel) => Check(channel, allowWildcard: false);

    /// <summary>True for a concrete name or a pattern ending in <c>/*</c> or <c>/**</c>.</summary>
    public static bool IsValidPattern(string? channel) => Check(channel, allowWildcard: true);

    public static bool IsWildcard(string channel) => IsTrailingWildcard(channel) || HasInnerWildcard(channel);

    /// <summary>True for a pattern with <c>*</c> before its last segment, which <see cref="Expand"/> does not produce.</summary>
    public static bool HasInnerWildcard(string pattern)
    {
        var lastSlash = pattern.LastIndexOf('/');
        return lastSlash > 0 && pattern.AsSpan(0, lastSlash + 1).IndexOf("/*/") >= 0;
    }

    /// <summary>True for a pattern whose last segment is <c>*</c> or <c>**</c>.</summary>
    public static bool IsTrailingWildcard(string pattern) =>
        pattern.EndsWith("/*", StringComparison.Ordinal) || pattern.EndsWith("/**", StringComparison.Ordinal);

    /// <summary>
    /// The trailing wildcard that covers an inner-wildcard pattern, for clients whose grammar has no inner <c>*</c>:
    /// <c>/api/flows/*/messages</c> → <c>/api/flows/**</c>. Other names and patterns come back as they are.
    /// </summary>
    public static string TrailingWildcardFor(string pattern)
    {
        var star = pattern.IndexOf("/*/", StringComparison.Ordinal);
        return star < 0 ? pattern : string.Concat(pattern.AsSpan(0, star + 1), "**");
    }

    /// <summary>Meta channels, including patterns such as <c>/meta/*</c>, which clients may not subscribe to.</summary>
    public static bool IsMeta(string channel) => channel.StartsWith("/meta/", StringComparison.Ordinal);

    /// <summary>Service channels are for client-to-server requests; publishes there are never broadcast.</summary>
    public static bool IsService(string channel) => channel.StartsWith("/service/", StringComparison.Ordinal);

    private static bool Check(string? channel, bool allowWildcard)
    {
        if (string.IsNullOrEmpty(channel) || channel.Length > MaxLength || channel[0] != '/')
        {
            return false;
        }

        var segmentStart = 1;
        for (var i = 1; i <= channel.Length; i++)
        {
            if (i < channel.Length && channel[i] != '/')
            {
                continue;
            }

            var segment = channel.AsSpan(segmentStart, i - segmentStart);
            var isLast = i == channel.Length;
            if (segment.IsEmpty)
            {
                return false;
            }

            if (segment is "*" or "**")
            {
                // "**" only ends a pattern; "*" may stand for any one segment.
                if (!allowWildcard || (!isLast && segment is "**"))
                {
                    return false;
                }
            }
            else if (!IsSegment(segment))
            {
                return false;
            }

            segmentStart = i + 1;
        }

        return true;
    }

    private static bool IsSegment(ReadOnlySpan<char> segment)
    {
        foreach (var c in segment)
        {
            var ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
                or '-' or '_' or '!' or '~' or '(' or ')' or '$' or '@';
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Every subscription that matches a concrete channel: the name itself, its parent's <c>/*</c>, and
    /// <c>/**</c> at every ancestor. <c>/a/b/c</c> gives <c>/a/b/c</c>, <c>/a/b/*</c>, <c>/a/b/**</c>,
    /// <c>/a/**</c>, <c>/**</c>. Matching a publish is then a handful of dictionary lookups, however many
    /// wildcard subscriptions exist.
    /// </summary>
    public static string[] Expand(string channel)
    {
        var depth = 0;
        foreach (var c in channel)
        {
            if (c == '/')
            {
                depth++;
            }
        }

        var result = new string[depth + 2];
        var n = 0;
        result[n++] = channel;
        var lastSlash = channel.LastIndexOf('/');
        result[n++] = string.Concat(channel.AsSpan(0, lastSlash + 1), "*");
        for (var end = lastSlash; end >= 0; end = end == 0 ? -1 : channel.LastIndexOf('/', end - 1))
        {
            result[n++] = string.Concat(channel.AsSpan(0, end + 1), "**");
        }

        return result;
    }

    /// <summary>True when <paramref name="pattern"/> (a name or wildcard) matches the concrete <paramref name="channel"/>.</summary>
    public static bool Matches(string pattern, string channel)
    {
        var p = pattern.AsSpan(1);
        var c = channel.AsSpan(1);
        while (true)
        {
            var pEnd = p.IndexOf('/');
            var pSegment = pEnd < 0 ? p : p[..pEnd];
            if (pSegment is "**")
            {
                return !c.IsEmpty;
            }

            if (c.IsEmpty)
            {
                return false;
            }

            var cEnd = c.IndexOf('/');
            var cSegment = cEnd < 0 ? c : c[..cEnd];
            if (pSegment is not "*" && !pSegment.SequenceEqual(cSegment))
            {
                return false;
            }

            if (pEnd < 0 || cEnd < 0)
            {
                return pEnd < 0 && cEnd < 0;
            }

            p = p[(pEnd + 1)..];
            c = c[(cEnd + 1)..];
        }
    }
}
