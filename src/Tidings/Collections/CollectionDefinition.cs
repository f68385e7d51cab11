using System.Security.Claims;
using System.Text.Json.Nodes;
using NJsonSchema;
using Tidings.Access;

namespace Tidings.Collections;

/// <summary>What a stamp function knows when the server sets a field.</summary>
public sealed record StampContext(ClaimsPrincipal? User, IReadOnlyDictionary<string, string> RouteValues, JsonObject? Existing);

/// <summary>A field the server sets: on create only, or on every write.</summary>
public sealed record FieldStamp(Func<StampContext, JsonNode?> Value, bool OnUpdate);

/// <summary>
/// A declared collection: its route, the JSON Schema its records' fields must satisfy, which fields a
/// client may write, their defaults, and the fields the server stamps. <c>id</c>, <c>version</c>,
/// <c>createdAt</c> and <c>updatedAt</c> are always server-owned.
/// </summary>
public sealed class CollectionDefinition
{
    /// <summary>Fields every record has and only the server sets.</summary>
    public static readonly IReadOnlySet<string> ServerFields = new HashSet<string>(StringComparer.Ordinal) { "id", "version", "createdAt", "updatedAt" };

    internal CollectionDefinition(RouteTemplate route, JsonSchema schema, string schemaJson, IReadOnlySet<string> writable,
        IReadOnlyDictionary<string, JsonNode?> defaults, IReadOnlyDictionary<string, FieldStamp> stamps, CollectionAccess access, bool sorted = false)
    {
        IsSorted = sorted;
        Access = access;
        Route = route;
        Schema = schema;
        SchemaJson = schemaJson;
        Writable = writable;
        Defaults = defaults;
        Stamps = stamps;
    }

    public RouteTemplate Route { get; }
    public JsonSchema Schema { get; }
    public string SchemaJson { get; }
    public IReadOnlySet<string> Writable { get; }
    public IReadOnlyDictionary<string, JsonNode?> Defaults { get; }
    public IReadOnlyDictionary<string, FieldStamp> Stamps { get; }

    /// <summary>The server-owned field that holds a sorted collection's position key.</summary>
    public const string PositionField = "position";

    /// <summary>Declared <c>.Sorted()</c>: records keep an order (a <see cref="PositionField"/> key each) and can be moved.</summary>
    public bool IsSorted { get; }

    /// <summary>Fields only the server sets in this collection: <see cref="ServerFields"/>, and <c>position</c> when sorted.</summary>
    public bool IsServerField(string name) => ServerFields.Contains(name) || (IsSorted && name == PositionField);

    /// <summary>Who may list, read, create, update and delete; evaluated on every path (REST, socket, events).</summary>
    public CollectionAccess Access { get; }

    /// <summary>The queue whose jobs this collection holds; null for an ordinary collection. Its records are written
    /// only through the job API, never by REST or socket writes.</summary>
    public Jobs.QueueDefinition? Queue { get; internal set; }

    /// <summary>True when every subscriber may see every event, so deliveries need no per-recipient filter.</summary>
    public bool IsReadableByAnyone => ReferenceEquals(Access.List, AccessRule.Anyone) && ReferenceEquals(Access.Read, AccessRule.Anyone);
}

/// <summary>Declares a collection: <c>AddCollection("/api/todos", c => c.Schema(…).Writable("title", …))</c>.</summary>
public sealed class CollectionBuilder
{
    private readonly string _template;
    private string? _schemaJson;
    private readonly HashSet<string> _writable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonNode?> _defaults = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FieldStamp> _stamps = new(StringComparer.Ordinal);
    private CollectionAccess? _access;
    private bool _sorted;

    internal CollectionBuilder(string template) => _template = template;

    /// <summary>
    /// Records keep an order: listings and snapshots come in it, <c>POST P/{id}/move</c> moves a record (a <c>MOVE</c>
    /// event), creates may name a place. Each record carries its server-owned position key as <c>position</c>.
    /// </summary>
    public CollectionBuilder Sorted()
    {
        _sorted = true;
        return this;
    }

    /// <summary>Anyone may list, read and write this collection. Public is a declaration like any other.</summary>
    public CollectionBuilder Public()
    {
        _access = CollectionAccess.Public;
        return this;
    }

    /// <summary>Declares who may do what; anything not granted is refused.</summary>
    public CollectionBuilder Access(Action<AccessBuilder> configure)
    {
        var builder = new AccessBuilder();
        configure(builder);
        _access = builder.Build();
        return this;
    }

    /// <summary>The JSON Schema (draft 4–7 as NJsonSchema reads it) for the record's own fields.</summary>
    public CollectionBuilder Schema(string json)
    {
        _schemaJson = json;
        return this;
    }

    /// <summary>Fields a client may set. Anything else in a request body is refused, never silently stored.</summary>
    public CollectionBuilder Writable(params string[] fields)
    {
        foreach (var field in fields)
        {
            _writable.Add(field);
        }

        return this;
    }

    /// <summary>A value a create gets when the client does not send the field.</summary>
    public CollectionBuilder Default(string field, JsonNode? value)
    {
        _defaults[field] = value;
        return this;
    }

    /// <summary>A field the server sets (e.g. <c>user</c> = the caller); a client sending another value is refused.</summary>
    public CollectionBuilder Stamp(string field, Func<StampContext, JsonNode?> value, bool onUpdate = false)
    {
        _stamps[field] = new FieldStamp(value, onUpdate);
        return this;
    }

    internal CollectionDefinition Build()
    {
        var route = new RouteTemplate(_template);
        var schemaJson = _schemaJson ?? """{ "type": "object" }""";
        JsonSchema schema;
        try
        {
            schema = JsonSchema.FromJsonAsync(schemaJson).GetAwaiter().GetResult();
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException($"The JSON Schema of collection '{_template}' could not be read: {ex.Message}", ex);
        }

        foreach (var field in _writable.Concat(_stamps.Keys).Concat(_defaults.Keys))
        {
            if (CollectionDefinition.ServerFields.Contains(field) || (_sorted && field == CollectionDefinition.PositionField))
            {
                throw new InvalidOperationException($"Collection '{_template}': '{field}' is server-owned and cannot be writable, stamped or defaulted.");
            }
        }

        foreach (var field in _writable)
        {
            if (_stamps.ContainsKey(field))
            {
                throw new InvalidOperationException($"Collection '{_template}': '{field}' is stamped by the server, so it cannot also be writable.");
            }
        }

        if (_access is null)
        {
            throw new InvalidOperationException(
                $"Collection '{_template}' declares no access rules. Add .Public() to let anyone read and write it, " +
                "or .Access(a => a.List(AccessRule.SignedIn).Create(...).Update(...).Delete(...)) to say who may do what.");
        }

        _access.EnsureDeliverable($"Collection '{_template}'");
        return new CollectionDefinition(route, schema, schemaJson, _writable, _defaults, _stamps, _access, _sorted);
    }
}
