using Tidings.Bayeux.Protocol;

namespace Tidings.Collections;

/// <summary>
/// A collection's route, such as <c>/api/flows/{flow}/messages</c>. A concrete path of it (a partition,
/// <c>/api/flows/main/messages</c>) is both the REST path and the Bayeux channel of that partition's events;
/// <see cref="ChannelPattern"/> (<c>/api/flows/*/messages</c>) subscribes to every partition.
/// </summary>
public sealed class RouteTemplate
{
    private readonly string[] _segments;
    private readonly bool[] _isParameter;

    public RouteTemplate(string template)
    {
        ArgumentException.ThrowIfNullOrEmpty(template);
        Template = template;
        if (!template.StartsWith('/') || template.EndsWith('/'))
        {
            throw new ArgumentException($"Collection route '{template}' must start with '/' and not end with one.", nameof(template));
        }

        _segments = template[1..].Split('/');
        _isParameter = new bool[_segments.Length];
        var names = new List<string>();
        for (var i = 0; i < _segments.Length; i++)
        {
            var segment = _segments[i];
            if (segment.Length > 2 && segment[0] == '{' && segment[^1] == '}')
            {
                var name = segment[1..^1];
                if (name is "id" || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                {
                    throw new ArgumentException($"Route parameter '{{{name}}}' in '{template}' is not allowed: use letters, digits and '_' (and not 'id', which names records).", nameof(template));
                }

                _segments[i] = name;
                _isParameter[i] = true;
                names.Add(name);
            }
        }

        ParameterNames = names;
        ChannelPattern = "/" + string.Join('/', _segments.Select((s, i) => _isParameter[i] ? "*" : s));
        if (!ChannelName.IsValidPattern(ChannelPattern.Replace("*", "x", StringComparison.Ordinal)))
        {
            throw new ArgumentException($"Collection route '{template}' is not a valid Bayeux channel name (letters, digits and -_!~()$@ per segment).", nameof(template));
        }
    }

    public string Template { get; }
    public IReadOnlyList<string> ParameterNames { get; }

    /// <summary>The template with each parameter as <c>*</c>: the channel pattern of every partition.</summary>
    public string ChannelPattern { get; }

    /// <summary>Matches a concrete path, giving the parameter values.</summary>
    public bool TryMatch(string path, out IReadOnlyDictionary<string, string> values)
    {
        values = EmptyValues;
        if (!path.StartsWith('/') || path.Length > ChannelName.MaxLength)
        {
            return false;
        }

        var parts = path[1..].Split('/');
        if (parts.Length != _segments.Length)
        {
            return false;
        }

        Dictionary<string, string>? found = null;
        for (var i = 0; i < parts.Length; i++)
        {
            if (_isParameter[i])
            {
                if (!IsValue(parts[i]))
                {
                    return false;
                }

                (found ??= new(StringComparer.Ordinal))[_segments[i]] = parts[i];
            }
            else if (!string.Equals(parts[i], _segments[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        values = found ?? EmptyValues;
        return true;
    }

    /// <summary>True when a subscription pattern (segments literal or <c>*</c>) only matches paths of this route.</summary>
    public bool Covers(string pattern)
    {
        if (!pattern.StartsWith('/'))
        {
            return false;
        }

        var parts = pattern[1..].Split('/');
        if (parts.Length != _segments.Length)
        {
            return false;
        }

        for (var i = 0; i < parts.Length; i++)
        {
            var ok = _isParameter[i] ? parts[i] == "*" || IsValue(parts[i]) : parts[i] == _segments[i];
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// True when one concrete path could belong to both routes, or to one route and the other's record path
    /// (<c>{route}/{id}</c>). Such routes would resolve a path to different collections (and rules) in REST routing
    /// and in Bayeux, so they are refused at startup.
    /// </summary>
    public bool Overlaps(RouteTemplate other) =>
        SegmentsOverlap(_segments, _isParameter, other._segments, other._isParameter)
        || SegmentsOverlap([.. _segments, "id"], [.. _isParameter, true], other._segments, other._isParameter)
        || SegmentsOverlap(_segments, _isParameter, [.. other._segments, "id"], [.. other._isParameter, true]);

    private static bool SegmentsOverlap(string[] a, bool[] aIsParameter, string[] b, bool[] bIsParameter)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (!aIsParameter[i] && !bIsParameter[i] && !string.Equals(a[i], b[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Builds the concrete path from parameter values; false when a value is not a valid channel segment or
    /// the path would be longer than a channel name.</summary>
    public bool TryBuildPath(Func<string, string?> valueOf, out string path)
    {
        var parts = new string[_segments.Length];
        for (var i = 0; i < _segments.Length; i++)
        {
            if (!_isParameter[i])
            {
                parts[i] = _segments[i];
                continue;
            }

            var value = valueOf(_segments[i]);
            if (value is null || !IsValue(value))
            {
                path = string.Empty;
                return false;
            }

            parts[i] = value;
        }

        // The path is also the channel of its events: one longer than a channel name could be stored, never published.
        path = "/" + string.Join('/', parts);
        if (path.Length > ChannelName.MaxLength)
        {
            path = string.Empty;
            return false;
        }

        return true;
    }

    private static bool IsValue(string value) => value is not ("*" or "**") && ChannelName.IsValidName("/" + value);

    private static readonly IReadOnlyDictionary<string, string> EmptyValues = new Dictionary<string, string>();
}
