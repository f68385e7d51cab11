using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Tidings.Access;
using Tidings.Http;
using Tidings.Tests.Support;

namespace Tidings.Tests.Http;

/// <summary>The OpenAPI document a real server serves: valid OpenAPI 3.1, naming every collection and queue with its schema.</summary>
public sealed class OpenApiTests
{
    private static Task<TidingsApp> StartAsync() =>
        TidingsApp.StartAsync(
            declare: t =>
            {
                TidingsApp.DeclareDefaults(t);
                t.AddCollection("/api/users/{user}/tasks", c => c.Sorted()
                        .Schema("""{ "type": "object", "properties": { "title": { "type": "string" }, "done": { "type": "boolean" } }, "required": ["title"] }""")
                        .Writable("title", "done").Access(a => a.List(AccessRule.SignedIn).Write(AccessRule.RouteUser("user"))))
                    .AddQueue("ship", q => q
                        .Schema("""{ "type": "object", "properties": { "task": { "type": "string" } }, "required": ["task"] }""")
                        .Access(a => a.List(AccessRule.SignedIn).Enqueue(AccessRule.SignedIn).Work(AccessRule.SignedIn)));
                t.Services.AddOpenApi(o => o.AddTidings());
            },
            map: app => app.MapOpenApi());

    [Fact]
    public async Task The_document_is_valid_openapi_3_1_and_names_every_collection_with_its_schema()
    {
        await using var app = await StartAsync();
        var text = await app.Http.GetStringAsync("/openapi/v1.json");

        var read = OpenApiDocument.Parse(text, "json");
        Assert.Empty(read.Diagnostic?.Errors ?? []);
        var json = JsonNode.Parse(text)!.AsObject();
        Assert.StartsWith("3.1.", json["openapi"]!.GetValue<string>());
        var paths = json["paths"]!.AsObject();
        var schemas = json["components"]!["schemas"]!.AsObject();

        foreach (var collection in new[] { "/api/todos", "/api/flows/{flow}/messages", "/api/users/{user}/tasks", "/api/queues/ship/jobs" })
        {
            Assert.True(paths.ContainsKey(collection), collection);
            Assert.True(paths.ContainsKey(collection + "/{id}"), collection + "/{id}");
            var list = paths[collection]!["get"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!;
            var record = list["properties"]!["items"]!["items"]!["$ref"]!.GetValue<string>().Split('/').Last();
            Assert.True(schemas.ContainsKey(record), record);
        }

        // A collection's own JSON Schema, with the server's fields; the write body holds only writable fields.
        Assert.Equal("string", schemas["ApiTodos"]!["properties"]!["title"]!["type"]!.GetValue<string>());
        Assert.Equal("uuid", schemas["ApiTodos"]!["properties"]!["id"]!["format"]!.GetValue<string>());
        Assert.Null(schemas["ApiFlowsFlowMessagesWrite"]!["properties"]!["user"]); // stamped by the server
        Assert.NotNull(schemas["ApiUsersUserTasks"]!["properties"]!["position"]);

        var create = paths["/api/todos"]!["post"]!;
        Assert.Equal("#/components/schemas/ApiTodosWrite", create["requestBody"]!["content"]!["application/json"]!["schema"]!["$ref"]!.GetValue<string>());
        Assert.Equal("title example", create["requestBody"]!["content"]!["application/json"]!["example"]!["title"]!.GetValue<string>());
        Assert.Equal("#/components/schemas/Problem", create["responses"]!["422"]!["content"]!["application/problem+json"]!["schema"]!["$ref"]!.GetValue<string>());
        Assert.NotNull(paths["/api/users/{user}/tasks/{id}/move"]!["post"]);
        Assert.Null(paths["/api/queues/ship/jobs/{id}"]!["put"]); // jobs change only through the job endpoints
        foreach (var job in new[] { "/api/queues/ship/claim", "/api/queues/ship/jobs/{id}/cancel", "/api/queues/ship/jobs/{id}/finish" })
        {
            Assert.NotNull(paths[job]?["post"]);
        }

        Assert.Equal("string", paths["/api/queues/ship/jobs"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!["properties"]!["payload"]!["properties"]!["task"]!["type"]!.GetValue<string>());
    }
}
