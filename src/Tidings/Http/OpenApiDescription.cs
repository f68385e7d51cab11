using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Tidings.Collections;
using Tidings.Jobs;

namespace Tidings.Http;

public static class TidingsOpenApiExtensions
{
    /// <summary>
    /// Adds every declared collection's REST endpoints (and the job endpoints of every queue) to the OpenAPI document, with
    /// each collection's JSON Schema, its problem+json errors and examples. Collection routes are mapped at run time from the
    /// declarations, so they are described from the declarations too: <c>builder.Services.AddOpenApi(o => o.AddTidings())</c>.
    /// </summary>
    public static OpenApiOptions AddTidings(this OpenApiOptions options) => options.AddDocumentTransformer<TidingsOpenApiTransformer>();
}

/// <summary>Merges the collections' description (<see cref="OpenApiDescription"/>) into the document ASP.NET Core builds.</summary>
internal sealed class TidingsOpenApiTransformer(CollectionRegistry collections, QueueRegistry queues) : IOpenApiDocumentTransformer
{
    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        // Written as OpenAPI JSON and read back with the OpenAPI library, so the schemas stay exactly as declared.
        var described = OpenApiDocument.Parse(OpenApiDescription.Build(collections, queues).ToJsonString(), "json").Document
            ?? throw new InvalidOperationException("The collections' OpenAPI description could not be read.");
        document.Paths ??= [];
        foreach (var (path, item) in described.Paths)
        {
            document.Paths[path] = item;
        }

        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        foreach (var (name, schema) in described.Components?.Schemas ?? new Dictionary<string, IOpenApiSchema>())
        {
            document.Components.Schemas[name] = schema;
        }

        document.Tags ??= new HashSet<OpenApiTag>();
        foreach (var tag in described.Tags ?? new HashSet<OpenApiTag>())
        {
            document.Tags.Add(tag);
        }

        return Task.CompletedTask;
    }
}

/// <summary>
/// The REST contract of every collection (README, "Live collections") and queue (README, "Jobs and workers") as an
/// OpenAPI 3.1 fragment: paths, a record and a write schema per collection (its declared JSON Schema plus the server's
/// fields), errors as problem+json, and examples built from the schema.
/// </summary>
internal static class OpenApiDescription
{
    private const string Json = "application/json";
    private const string ProblemJson = "application/problem+json";

    public static JsonObject Build(CollectionRegistry collections, QueueRegistry queues)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject
        {
            ["Problem"] = new JsonObject
            {
                ["type"] = "object",
                ["description"] = "RFC 9457 problem details; 422 adds 'errors': field → messages.",
                ["properties"] = new JsonObject
                {
                    ["type"] = Str(), ["title"] = Str(), ["status"] = new JsonObject { ["type"] = "integer" }, ["detail"] = Str(),
                    ["errors"] = new JsonObject { ["type"] = "object", ["additionalProperties"] = new JsonObject { ["type"] = "array", ["items"] = Str() } },
                },
            },
        };
        var tags = new JsonArray();
        foreach (var collection in collections.Collections)
        {
            var name = SchemaName(collection.Route.Template);
            var declared = JsonNode.Parse(collection.SchemaJson)!.AsObject();
            schemas[name] = RecordSchema(collection, declared);
            schemas[name + "Write"] = WriteSchema(collection, declared);
            var tag = collection.Queue is { } q ? $"queue {q.Name}" : collection.Route.Template;
            tags.Add(new JsonObject { ["name"] = tag, ["description"] = Describe(collection) });
            AddCollection(paths, collection, name, declared, tag);
            if (collection.Queue is { } queue)
            {
                AddQueue(paths, queue, name, tag);
            }
        }

        return new JsonObject
        {
            ["openapi"] = "3.1.1",
            ["info"] = new JsonObject { ["title"] = "Tidings collections", ["version"] = "1" },
            ["tags"] = tags,
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    private static void AddCollection(JsonObject paths, CollectionDefinition c, string name, JsonObject declared, string tag)
    {
        var routeParameters = c.Route.ParameterNames.Select(p => (JsonNode)PathParameter(p)).ToArray();
        var record = Ref(name);
        var list = new JsonObject
        {
            ["tags"] = Tags(tag),
            ["summary"] = "List the records (one consistent snapshot), or the changes since a seq",
            ["description"] = "With `since` and `epoch`: the changes after that seq (`410` when the log no longer reaches back; reload). " +
                              "Every change is also published on the Bayeux channel of this path.",
            ["parameters"] = new JsonArray([.. Clone(routeParameters),
                Query("since", "Return the changes after this seq instead of the records.", new JsonObject { ["type"] = "integer", ["minimum"] = 0 }),
                Query("epoch", "The epoch the seq belongs to (from an earlier answer).", Str())]),
            ["responses"] = Responses(("200", Ok("The records (`items`), or the changes (`changes`), with `seq` and `epoch`.", new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject
                {
                    ["items"] = new JsonObject { ["type"] = "array", ["items"] = Ref(name) },
                    ["changes"] = new JsonObject { ["type"] = "array", ["items"] = ChangeSchema(name) },
                    ["seq"] = new JsonObject { ["type"] = "integer" },
                    ["epoch"] = Str(),
                    ["sorted"] = new JsonObject { ["type"] = "boolean" },
                    ["truncated"] = new JsonObject { ["type"] = "boolean" },
                },
                ["required"] = new JsonArray("seq", "epoch"),
            })), Errors("400", "401", "403", "410", "429", "503")),
        };
        var collectionPath = new JsonObject { ["get"] = list };
        var recordPath = new JsonObject
        {
            ["get"] = new JsonObject
            {
                ["tags"] = Tags(tag),
                ["summary"] = "Read one record",
                ["parameters"] = new JsonArray([.. Clone(routeParameters), IdParameter()]),
                ["responses"] = Responses(("200", OkWithETag("The record; `ETag` is its version.", record)), Errors("400", "401", "403", "404", "429", "503")),
            },
        };
        paths[c.Route.Template] = collectionPath;
        paths[c.Route.Template + "/{id}"] = recordPath;
        if (c.Queue is not null)
        {
            return; // a queue's jobs change only through the job endpoints
        }

        var example = Example(declared, c);
        var placeParameters = c.IsSorted
            ? new JsonNode[]
            {
                Query("before", "Sorted collections: create it before this record.", Uuid()),
                Query("after", "Sorted collections: create it after this record.", Uuid()),
                Query("to", "Sorted collections: `start` or `end` (the default).", new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("start", "end") }),
            }
            : [];
        collectionPath["post"] = new JsonObject
        {
            ["tags"] = Tags(tag),
            ["summary"] = "Create a record",
            ["description"] = "A client-supplied UUID `id` makes the create idempotent: a repeat answers `200` with the record and emits nothing.",
            ["parameters"] = new JsonArray([.. Clone(routeParameters), .. placeParameters]),
            ["requestBody"] = Body(Ref(name + "Write"), example),
            ["responses"] = Responses(("201", Ok("Created.", record)), ("200", Ok("A repeat of an idempotent create: the record as stored.", record)),
                Errors("400", "401", "403", "413", "415", "422", "429", "503")),
        };
        var ifMatch = new JsonObject
        {
            ["name"] = "If-Match", ["in"] = "header", ["required"] = false,
            ["description"] = "The version the change is based on, e.g. `\"3\"`: `412` when the record has moved on.", ["schema"] = Str(),
        };
        var writeErrors = Errors("400", "401", "403", "404", "409", "412", "413", "415", "422", "429", "503");
        recordPath["put"] = new JsonObject
        {
            ["tags"] = Tags(tag),
            ["summary"] = "Replace a record's writable fields",
            ["parameters"] = new JsonArray([.. Clone(routeParameters), IdParameter(), ifMatch.DeepClone()]),
            ["requestBody"] = Body(Ref(name + "Write"), example),
            ["responses"] = Responses(("200", OkWithETag("Updated.", record)), writeErrors),
        };
        recordPath["patch"] = new JsonObject
        {
            ["tags"] = Tags(tag),
            ["summary"] = "Change some fields (a JSON merge patch: null removes a field)",
            ["parameters"] = new JsonArray([.. Clone(routeParameters), IdParameter(), ifMatch.DeepClone()]),
            ["requestBody"] = Body(new JsonObject { ["type"] = "object" }, example),
            ["responses"] = Responses(("200", OkWithETag("Updated.", record)), writeErrors.DeepClone().AsObject()),
        };
        recordPath["delete"] = new JsonObject
        {
            ["tags"] = Tags(tag),
            ["summary"] = "Delete a record",
            ["parameters"] = new JsonArray([.. Clone(routeParameters), IdParameter(), ifMatch.DeepClone()]),
            ["responses"] = Responses(("204", new JsonObject { ["description"] = "Deleted." }), Errors("400", "401", "403", "404", "409", "412", "429", "503")),
        };
        if (c.IsSorted)
        {
            paths[c.Route.Template + "/{id}/move"] = new JsonObject
            {
                ["post"] = new JsonObject
                {
                    ["tags"] = Tags(tag),
                    ["summary"] = "Move a record: before or after another, or to the start or end",
                    ["parameters"] = new JsonArray([.. Clone(routeParameters), IdParameter(), ifMatch.DeepClone()]),
                    ["requestBody"] = Body(new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject { ["before"] = Uuid(), ["after"] = Uuid(), ["to"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("start", "end") } },
                        ["minProperties"] = 1, ["maxProperties"] = 1,
                    }, new JsonObject { ["to"] = "start" }),
                    ["responses"] = Responses(("200", Ok("The record after the move (its new `position`).", record)), writeErrors.DeepClone().AsObject()),
                },
            };
        }
    }

    private static void AddQueue(JsonObject paths, QueueDefinition queue, string name, string tag)
    {
        var job = Ref(name);
        var prefix = $"/api/queues/{queue.Name}";
        var payload = queue.PayloadSchema is { } schema ? JsonNode.Parse(schema.ToJson())!.AsObject() : new JsonObject { ["type"] = "object" };
        JsonObject Post(string summary, JsonObject? body, JsonNode? example, JsonObject responses, bool byId = true)
        {
            var operation = new JsonObject
            {
                ["tags"] = Tags(tag),
                ["summary"] = summary,
                ["parameters"] = byId ? new JsonArray(IdParameter()) : new JsonArray(),
                ["responses"] = responses,
            };
            if (body is not null)
            {
                operation["requestBody"] = Body(body, example);
            }

            return new JsonObject { ["post"] = operation };
        }

        var lease = new JsonObject { ["type"] = "string", ["description"] = "The lease token the claim gave." };
        var jobErrors = Errors("400", "401", "403", "404", "409", "415", "422", "429", "503");
        paths[prefix + "/jobs"]!["post"] = Post("Enqueue a job", new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["payload"] = payload, ["priority"] = new JsonObject { ["type"] = "integer" }, ["runAt"] = DateTime(),
                ["key"] = new JsonObject { ["type"] = "string", ["description"] = "While a job with this key is queued or running, enqueueing again answers it (200)." },
                ["maxAttempts"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1 },
            },
            ["required"] = new JsonArray("payload"),
        }, new JsonObject { ["payload"] = Example(payload, null) },
            Responses(("201", Ok("Enqueued.", job)), ("200", Ok("A job with this key is already queued or running.", job)), jobErrors), byId: false)["post"]!.DeepClone();
        paths[prefix + "/claim"] = Post("Claim due jobs (external workers)", new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject { ["max"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["maximum"] = 100 }, ["leaseSeconds"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1 } },
        }, new JsonObject { ["max"] = 10, ["leaseSeconds"] = 30 }, Responses(("200", Ok("The claimed jobs, each with a `lease`.", new JsonObject
        {
            ["type"] = "object", ["properties"] = new JsonObject { ["jobs"] = new JsonObject { ["type"] = "array", ["items"] = job.DeepClone() } },
        })), jobErrors.DeepClone().AsObject()), byId: false);
        paths[prefix + "/jobs/{id}/cancel"] = Post("Cancel a queued or running job", null, null, Responses(("200", Ok("Cancelled.", job)), jobErrors.DeepClone().AsObject()));
        paths[prefix + "/jobs/{id}/retry"] = Post("Queue a dead or cancelled job again", null, null, Responses(("200", Ok("Queued again.", job)), jobErrors.DeepClone().AsObject()));
        paths[prefix + "/jobs/{id}/heartbeat"] = Post("Extend a running job's lease (and report progress)", new JsonObject
        {
            ["type"] = "object", ["properties"] = new JsonObject { ["lease"] = lease.DeepClone(), ["progress"] = new JsonObject(), ["leaseSeconds"] = new JsonObject { ["type"] = "integer" } },
            ["required"] = new JsonArray("lease"),
        }, new JsonObject { ["lease"] = "…", ["progress"] = new JsonObject { ["step"] = "half way" } }, Responses(("200", Ok("The job.", job)), jobErrors.DeepClone().AsObject()));
        paths[prefix + "/jobs/{id}/finish"] = Post("Finish a running job with its result", new JsonObject
        {
            ["type"] = "object", ["properties"] = new JsonObject { ["lease"] = lease.DeepClone(), ["result"] = new JsonObject() }, ["required"] = new JsonArray("lease"),
        }, new JsonObject { ["lease"] = "…", ["result"] = new JsonObject { ["ok"] = true } }, Responses(("200", Ok("Succeeded.", job)), jobErrors.DeepClone().AsObject()));
        paths[prefix + "/jobs/{id}/fail"] = Post("Fail a running job (retried with backoff, or dead)", new JsonObject
        {
            ["type"] = "object", ["properties"] = new JsonObject { ["lease"] = lease.DeepClone(), ["error"] = Str(), ["retry"] = new JsonObject { ["type"] = "boolean" } },
            ["required"] = new JsonArray("lease"),
        }, new JsonObject { ["lease"] = "…", ["error"] = "out of stock" }, Responses(("200", Ok("Failed.", job)), jobErrors.DeepClone().AsObject()));
    }

    /// <summary>A record as the server answers it: the declared schema plus the server's fields (and stamps).</summary>
    private static JsonObject RecordSchema(CollectionDefinition c, JsonObject declared)
    {
        var schema = declared.DeepClone().AsObject();
        var properties = schema["properties"] as JsonObject ?? [];
        schema["properties"] = properties;
        properties["id"] = Uuid();
        properties["version"] = new JsonObject { ["type"] = "integer", ["minimum"] = 1, ["description"] = "1 on create, +1 per change; the ETag." };
        properties["createdAt"] = DateTime();
        properties["updatedAt"] = DateTime();
        if (c.IsSorted)
        {
            properties[CollectionDefinition.PositionField] = new JsonObject { ["type"] = "string", ["description"] = "The record's place: sort by it (ordinal)." };
        }

        foreach (var stamp in c.Stamps.Keys)
        {
            properties[stamp] ??= new JsonObject();
            properties[stamp]!["readOnly"] = true;
        }

        var required = schema["required"] as JsonArray ?? [];
        foreach (var field in new[] { "id", "version" })
        {
            if (!required.Any(r => r?.GetValue<string>() == field))
            {
                required.Add(field);
            }
        }

        schema["required"] = required;
        return schema;
    }

    /// <summary>What a client may send: the declared properties it may write (anything else is refused with 422).</summary>
    private static JsonObject WriteSchema(CollectionDefinition c, JsonObject declared)
    {
        var schema = declared.DeepClone().AsObject();
        if (schema["properties"] is JsonObject properties)
        {
            foreach (var name in properties.Select(p => p.Key).ToArray())
            {
                if (!c.Writable.Contains(name))
                {
                    properties.Remove(name);
                }
            }

            properties["id"] = Uuid("A client UUID makes the create idempotent.");
        }

        if (schema["required"] is JsonArray required)
        {
            schema["required"] = new JsonArray([.. required.Where(r => r is not null && c.Writable.Contains(r.GetValue<string>())).Select(r => r!.DeepClone())]);
        }

        return schema;
    }

    private static JsonObject ChangeSchema(string name) => new()
    {
        ["type"] = "object",
        ["properties"] = new JsonObject
        {
            ["method"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("POST", "PUT", "DELETE", "MOVE") },
            ["body"] = Ref(name), ["seq"] = new JsonObject { ["type"] = "integer" },
            ["after"] = new JsonObject { ["type"] = new JsonArray("string", "null"), ["description"] = "MOVE: the id it now follows." },
        },
    };

    /// <summary>An example body: each required property (or, with none, each property) with a value of its type.</summary>
    private static JsonObject Example(JsonObject schema, CollectionDefinition? c)
    {
        var example = new JsonObject();
        if (schema["properties"] is not JsonObject properties)
        {
            return example;
        }

        var required = (schema["required"] as JsonArray)?.Select(r => r?.GetValue<string>()).ToHashSet() ?? [];
        foreach (var (name, property) in properties)
        {
            if ((required.Count > 0 && !required.Contains(name)) || (c is not null && !c.Writable.Contains(name)))
            {
                continue;
            }

            example[name] = (property?["type"] as JsonValue)?.GetValue<string>() switch
            {
                "boolean" => false,
                "integer" or "number" => 1,
                "array" => new JsonArray(),
                "object" => new JsonObject(),
                _ => property?["enum"] is JsonArray { Count: > 0 } values ? values[0]!.DeepClone() : $"{name} example",
            };
        }

        return example;
    }

    private static string Describe(CollectionDefinition c) =>
        $"Records at `{c.Route.Template}`, live on the Bayeux channel of each concrete path ({c.Route.ChannelPattern}). " +
        $"Access: list {c.Access.List.Description}, read {c.Access.Read.Description}, create {c.Access.Create.Description}, " +
        $"update {c.Access.Update.Description}, delete {c.Access.Delete.Description}." + (c.IsSorted ? " Sorted: records keep an order." : "");

    /// <summary><c>/api/flows/{flow}/messages</c> → <c>ApiFlowsFlowMessages</c>.</summary>
    internal static string SchemaName(string template) =>
        string.Concat(template.Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(part => part.Trim('{', '}'))
            .Select(part => string.Concat(part.Split('-', '_', '.').Where(w => w.Length > 0).Select(w => char.ToUpperInvariant(w[0]) + w[1..]))));

    private static JsonObject Responses(params object[] entries)
    {
        var responses = new JsonObject();
        foreach (var entry in entries)
        {
            if (entry is ValueTuple<string, JsonObject> (var status, var response))
            {
                responses[status] = response;
            }
            else if (entry is JsonObject errors)
            {
                foreach (var (code, problem) in errors)
                {
                    responses[code] = problem!.DeepClone();
                }
            }
        }

        return responses;
    }

    private static readonly Dictionary<string, string> ErrorMeanings = new()
    {
        ["400"] = "Bad path, id or query.",
        ["401"] = "Sign in to do this.",
        ["403"] = "The access rules do not allow it.",
        ["404"] = "No such record.",
        ["409"] = "The record kept changing (or a job's lease is stale); nothing changed.",
        ["410"] = "The log no longer reaches back to `since`: reload.",
        ["412"] = "`If-Match` names an older version.",
        ["413"] = "The body is larger than Tidings:MaxBodyBytes.",
        ["415"] = "Send application/json.",
        ["422"] = "The record is not valid: `errors` says what to change per field.",
        ["429"] = "Too many requests: slow down.",
        ["503"] = "The store cannot be reached right now; nothing changed.",
    };

    private static JsonObject Errors(params string[] statuses)
    {
        var errors = new JsonObject();
        foreach (var status in statuses)
        {
            errors[status] = new JsonObject
            {
                ["description"] = ErrorMeanings[status],
                ["content"] = new JsonObject
                {
                    [ProblemJson] = new JsonObject
                    {
                        ["schema"] = Ref("Problem"),
                        ["example"] = new JsonObject { ["title"] = ErrorMeanings[status], ["status"] = int.Parse(status, System.Globalization.CultureInfo.InvariantCulture) },
                    },
                },
            };
        }

        return errors;
    }

    private static JsonObject Ok(string description, JsonObject schema) => new()
    {
        ["description"] = description,
        ["content"] = new JsonObject { [Json] = new JsonObject { ["schema"] = schema.DeepClone() } },
    };

    private static JsonObject OkWithETag(string description, JsonObject schema)
    {
        var ok = Ok(description, schema);
        ok["headers"] = new JsonObject { ["ETag"] = new JsonObject { ["description"] = "The record's version, quoted.", ["schema"] = Str() } };
        return ok;
    }

    private static JsonObject Body(JsonObject schema, JsonNode? example)
    {
        var media = new JsonObject { ["schema"] = schema.DeepClone() };
        if (example is not null)
        {
            media["example"] = example.DeepClone();
        }

        return new JsonObject { ["required"] = true, ["content"] = new JsonObject { [Json] = media } };
    }

    private static JsonObject PathParameter(string name) => new() { ["name"] = name, ["in"] = "path", ["required"] = true, ["schema"] = Str() };

    private static JsonObject IdParameter() => new() { ["name"] = "id", ["in"] = "path", ["required"] = true, ["schema"] = Uuid() };

    private static JsonObject Query(string name, string description, JsonObject schema) =>
        new() { ["name"] = name, ["in"] = "query", ["required"] = false, ["description"] = description, ["schema"] = schema };

    private static JsonObject Ref(string name) => new() { ["$ref"] = "#/components/schemas/" + name };

    private static JsonObject Str() => new() { ["type"] = "string" };

    private static JsonObject Uuid(string? description = null) =>
        description is null ? new() { ["type"] = "string", ["format"] = "uuid" } : new() { ["type"] = "string", ["format"] = "uuid", ["description"] = description };

    private static JsonObject DateTime() => new() { ["type"] = "string", ["format"] = "date-time" };

    private static JsonArray Tags(string tag) => new(tag);

    private static JsonNode[] Clone(JsonNode[] nodes) => [.. nodes.Select(n => n.DeepClone())];
}
