using System.Text.Json.Nodes;

namespace Tidings.Client.Bayeux;

/// <summary>A message delivered on a subscribed channel.</summary>
public sealed class BayeuxMessage
{
    internal BayeuxMessage(JsonObject raw)
    {
        Raw = raw;
        Channel = (string)raw["channel"]!;
    }

    /// <summary>The concrete channel it was published on (also when the subscription was a pattern).</summary>
    public string Channel { get; }

    public JsonNode? Data => Raw["data"];

    public JsonObject? Ext => Raw["ext"] as JsonObject;

    /// <summary>The whole message as received.</summary>
    public JsonObject Raw { get; }
}

/// <summary>
/// Changes messages on their way out (before the transport) and in (before replies are matched and deliveries
/// dispatched). Return the message (changed or not), or null to drop it.
/// </summary>
public interface IBayeuxClientExtension
{
    JsonObject? Outgoing(JsonObject message) => message;

    JsonObject? Incoming(JsonObject message) => message;
}

/// <summary>Where the client's link to the server stands.</summary>
public enum BayeuxConnectionState
{
    /// <summary>Not started, or disconnected on request.</summary>
    Disconnected,

    /// <summary>Handshaking (first time, or again after the server forgot the session).</summary>
    Connecting,

    /// <summary>A session is established and its connect loop is running.</summary>
    Connected,

    /// <summary>The link failed; retrying with backoff.</summary>
    Reconnecting,
}

/// <summary>Bayeux channel names and patterns.</summary>
public static class BayeuxChannel
{
    /// <summary>
    /// True when <paramref name="channel"/> matches <paramref name="pattern"/>: <c>*</c> is one segment (anywhere, as
    /// Tidings allows), a trailing <c>**</c> one or more.
    /// </summary>
    public static bool Matches(string pattern, string channel)
    {
        if (string.Equals(pattern, channel, StringComparison.Ordinal))
        {
            return true;
        }

        if (!pattern.Contains('*', StringComparison.Ordinal))
        {
            return false;
        }

        var p = pattern.Split('/');
        var c = channel.Split('/');
        for (var i = 0; i < p.Length; i++)
        {
            if (p[i] == "**")
            {
                return i == p.Length - 1 && c.Length > i;
            }

            if (i >= c.Length || (p[i] != "*" && !string.Equals(p[i], c[i], StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return p.Length == c.Length;
    }

    public static bool IsMeta(string channel) => channel.StartsWith("/meta/", StringComparison.Ordinal);

    /// <summary>True for a pattern with <c>*</c> before its last segment (<c>/api/flows/*/messages</c>), a Tidings extension.</summary>
    public static bool HasInnerWildcard(string pattern)
    {
        var lastSlash = pattern.LastIndexOf('/');
        return lastSlash > 0 && pattern.AsSpan(0, lastSlash + 1).IndexOf("/*/") >= 0;
    }
}
