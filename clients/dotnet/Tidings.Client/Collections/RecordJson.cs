using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace Tidings.Client.Collections;

/// <summary>JSON helpers for records: ids, versions, merge patches, and the T ⇄ JSON mapping.</summary>
internal static class RecordJson
{
    /// <summary>Fields the server owns; never sent in a write body.</summary>
    public static readonly string[] ServerFields = ["id", "version", "createdAt", "updatedAt"];

    public static string? Id(JsonNode? record) =>
        record is JsonObject o && o["id"] is JsonValue v && v.TryGetValue<string>(out var id) && id.Length > 0 ? id : null;

    public static long? Version(JsonObject record) =>
        record["version"] is JsonValue v && v.TryGetValue<long>(out var version) ? version : null;

    /// <summary>True when <paramref name="a"/> is a later version of the record than <paramref name="b"/> (or either has none).</summary>
    public static bool Newer(JsonObject a, JsonObject b) =>
        Version(a) is not { } va || Version(b) is not { } vb || va > vb;

    public static long? Long(JsonNode? node) => node is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;

    public static string? String(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>A copy without server fields and without null members (a new or replaced record has no nulls to send).</summary>
    public static JsonObject WriteBody(JsonObject record, bool keepId)
    {
        var body = new JsonObject();
        foreach (var (name, value) in record)
        {
            if (value is null || (Array.IndexOf(ServerFields, name) >= 0 && !(keepId && name == "id")))
            {
                continue;
            }

            body[name] = value.DeepClone();
        }

        return body;
    }

    /// <summary>RFC 7396 merge patch of <paramref name="patch"/> onto a copy of <paramref name="target"/>.</summary>
    public static JsonObject MergePatch(JsonObject target, JsonObject patch)
    {
        var result = (JsonObject)target.DeepClone();
        foreach (var (name, value) in patch)
        {
            if (value is null)
            {
                result.Remove(name);
            }
            else if (value is JsonObject inner && result[name] is JsonObject existing)
            {
                result[name] = MergePatch(existing, inner);
            }
            else
            {
                result[name] = value.DeepClone();
            }
        }

        return result;
    }
}

/// <summary>How a collection maps its records to <typeparamref name="T"/> and back.</summary>
internal sealed class RecordMapper<T>
{
    private readonly JsonTypeInfo<T>? _typeInfo;

    public RecordMapper(JsonTypeInfo<T>? typeInfo)
    {
        if (typeInfo is null && typeof(T) != typeof(JsonObject))
        {
            throw new ArgumentNullException(nameof(typeInfo));
        }

        _typeInfo = typeInfo;
    }

    public T Read(JsonObject record) =>
        _typeInfo is null ? (T)(object)record.DeepClone() : record.Deserialize(_typeInfo)!;

    public JsonObject Write(T item)
    {
        if (_typeInfo is null)
        {
            return (JsonObject)((JsonObject)(object)item!).DeepClone();
        }

        return JsonSerializer.SerializeToNode(item, _typeInfo) as JsonObject
            ?? throw new ArgumentException($"{typeof(T).Name} does not serialize to a JSON object.", nameof(item));
    }
}
