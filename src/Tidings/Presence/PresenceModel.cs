using System.Text.Json.Serialization;

namespace Tidings.Presence;

/// <summary>Who watches a channel: <c>{"channel", "users": [{"name", "sessions"}], "anonymous"}</c>.</summary>
public sealed record PresenceSnapshot(
    [property: JsonPropertyName("channel")] string Channel,
    [property: JsonPropertyName("users")] IReadOnlyList<PresenceUser> Users,
    [property: JsonPropertyName("anonymous")] int Anonymous);

/// <summary>A signed-in user watching a channel, with how many sessions they watch it from.</summary>
public sealed record PresenceUser([property: JsonPropertyName("name")] string Name, [property: JsonPropertyName("sessions")] int Sessions);

/// <summary>The first message on a presence channel: who is there now.</summary>
internal sealed record PresenceSnapshotEvent(
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("users")] IReadOnlyList<PresenceUser> Users,
    [property: JsonPropertyName("anonymous")] int Anonymous);

/// <summary>A user's first session arrived (JOIN) or their last one went (LEAVE).</summary>
internal sealed record PresenceEvent([property: JsonPropertyName("method")] string Method, [property: JsonPropertyName("user")] string User);

[JsonSerializable(typeof(PresenceSnapshot))]
[JsonSerializable(typeof(PresenceSnapshotEvent))]
[JsonSerializable(typeof(PresenceEvent))]
internal sealed partial class PresenceJson : JsonSerializerContext;
