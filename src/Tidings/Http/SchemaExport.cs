using System.Text.Json.Nodes;
using Tidings.Collections;

namespace Tidings.Http;

/// <summary>
/// What clients need to build forms and hide controls the server would refuse: each collection's route,
/// channel pattern, JSON Schema, writable and server-set fields, defaults and a summary of its access rules.
/// </summary>
internal static class SchemaExport
{
    public static JsonObject Describe(CollectionRegistry registry)
    {
        var collections = new JsonArray();
        foreach (var c in registry.Collections)
        {
            var access = c.Access;
            collections.Add(new JsonObject
            {
                ["route"] = c.Route.Template,
                ["channel"] = c.Route.ChannelPattern,
                ["schema"] = JsonNode.Parse(c.SchemaJson),
                ["writable"] = new JsonArray([.. c.Writable.Order(StringComparer.Ordinal).Select(f => (JsonNode)f)]),
                ["serverFields"] = new JsonArray([.. CollectionDefinition.ServerFields.Concat(c.IsSorted ? [CollectionDefinition.PositionField] : []).Concat(c.Stamps.Keys).Select(f => (JsonNode)f)]),
                ["defaults"] = new JsonObject([.. c.Defaults.Select(d => KeyValuePair.Create(d.Key, d.Value?.DeepClone()))]),
                ["access"] = new JsonObject
                {
                    ["list"] = access.List.Description,
                    ["read"] = access.Read.Description,
                    ["create"] = access.Create.Description,
                    ["update"] = access.Update.Description,
                    ["delete"] = access.Delete.Description,
                },
            });
        }

        return new JsonObject { ["collections"] = collections };
    }
}
