using System.Text.Json.Nodes;

namespace Tidings.Client.Collections;

/// <summary>
/// Where a record goes in a sorted collection: before or after another record, or at the start or the end. Sent as
/// REST's and the socket's <c>{"before": id} | {"after": id} | {"to": "start" | "end"}</c>.
/// </summary>
public sealed class Placement
{
    private Placement(string key, string value)
    {
        Key = key;
        Value = value;
    }

    /// <summary>At the start of the collection.</summary>
    public static Placement Start { get; } = new("to", "start");

    /// <summary>At the end of the collection.</summary>
    public static Placement End { get; } = new("to", "end");

    /// <summary>Just before the record <paramref name="id"/>.</summary>
    public static Placement Before(string id) => new("before", Anchor(id));

    /// <summary>Just after the record <paramref name="id"/>.</summary>
    public static Placement After(string id) => new("after", Anchor(id));

    /// <summary><c>before</c>, <c>after</c> or <c>to</c>.</summary>
    internal string Key { get; }

    /// <summary>The anchor's id, or <c>start</c>/<c>end</c>.</summary>
    internal string Value { get; }

    /// <summary>The anchor's id for before/after; null for start/end.</summary>
    internal string? AnchorId => Key == "to" ? null : Value;

    internal JsonObject ToJson() => new() { [Key] = Value };

    internal string ToQuery() => $"{Key}={Uri.EscapeDataString(Value)}";

    public override string ToString() => $"{{\"{Key}\": \"{Value}\"}}";

    private static string Anchor(string id) =>
        string.IsNullOrEmpty(id) ? throw new ArgumentException("A placement names the id of the record to place beside.", nameof(id)) : id;
}
