using System.Text.Json;

namespace Tidings.Bayeux.Protocol;

/// <summary>
/// One message a client sent. Fields are read once at parse time; <see cref="Data"/> and <see cref="Ext"/>
/// stay as JSON so a publish can be forwarded without a round trip through objects. Incoming extensions may
/// change any field before the server handles the message.
/// </summary>
public sealed class BayeuxMessage
{
    public string? Channel { get; set; }
    public string? ClientId { get; set; }

    /// <summary>The message id exactly as sent (string or number); every reply echoes it.</summary>
    public JsonElement? Id { get; set; }

    public JsonElement? Data { get; set; }
    public JsonElement? Ext { get; set; }
    public JsonElement? Advice { get; set; }
    public string? ConnectionType { get; set; }
    public string? Version { get; set; }
    public IReadOnlyList<string>? SupportedConnectionTypes { get; set; }

    /// <summary>Subscribe/unsubscribe targets; <see cref="SubscriptionIsArray"/> tells how to echo them.</summary>
    public IReadOnlyList<string>? Subscriptions { get; set; }
    public bool SubscriptionIsArray { get; set; }

    /// <summary>Set when the message could not be read (wrong field types); the server replies with it.</summary>
    public string? ParseError { get; set; }

    /// <summary>The size of the message's JSON text in bytes.</summary>
    public int SizeInBytes { get; init; }

    /// <summary>
    /// The client's requested connect timeout in milliseconds, when it sent <c>advice.timeout</c> as a whole number;
    /// anything else is ignored, as an absent one is.
    /// </summary>
    public long? AdviceTimeout =>
        Advice is { ValueKind: JsonValueKind.Object } advice
        && advice.TryGetProperty("timeout", out var t) && t.ValueKind == JsonValueKind.Number && t.TryGetInt64(out var ms) ? ms : null;

    /// <summary>Reads a field of <c>ext</c>, if present.</summary>
    public bool TryGetExt(string name, out JsonElement value)
    {
        if (Ext is { ValueKind: JsonValueKind.Object } ext && ext.TryGetProperty(name, out value))
        {
            return true;
        }

        value = default;
        return false;
    }
}
