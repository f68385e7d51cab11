using System.Text.Json;

namespace Tidings.Access;

/// <summary>
/// The resource an app's authorization handlers get when an access rule defers to a policy or requirements: where
/// (the concrete collection path — a queue's is <c>/api/queues/{name}/jobs</c> — and its route values), what (<see cref="Operation"/>) and, for record
/// operations, the record — on update <see cref="Record"/> is the new state and <see cref="Existing"/> the stored one.
/// </summary>
public sealed record TidingsResource(string? Path, IReadOnlyDictionary<string, string> RouteValues, JsonElement? Record, JsonElement? Existing,
    string? Operation)
{
    internal static TidingsResource From(AccessContext context) =>
        new(context.Path, context.RouteValues, ToElement(context.Record), ToElement(context.Existing), context.Operation);

    private static JsonElement? ToElement(System.Text.Json.Nodes.JsonObject? record) =>
        record is null ? null : JsonSerializer.SerializeToElement(record, AccessJson.Default.JsonObject);
}

/// <summary>The operations a <see cref="TidingsResource"/> names.</summary>
public static class TidingsOperations
{
    /// <summary>Listing a partition or subscribing to it (also its presence).</summary>
    public const string List = "list";
    public const string Read = "read";
    public const string Create = "create";
    public const string Update = "update";
    public const string Delete = "delete";
    public const string Enqueue = "enqueue";
    public const string Cancel = "cancel";
    public const string Work = "work";
}

[System.Text.Json.Serialization.JsonSerializable(typeof(System.Text.Json.Nodes.JsonObject))]
internal sealed partial class AccessJson : System.Text.Json.Serialization.JsonSerializerContext;
