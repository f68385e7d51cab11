using System.Text.Json.Nodes;
using Tidings;
using Tidings.Bayeux.Server;
using Tidings.Sqlite;

// The Tidings demo server. `dotnet run --project samples/Demo` serves http://127.0.0.1:5080;
// `--urls` picks other addresses and `--data DIR` another data directory (default ./data).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // Static files and settings ship next to the binary, so the server runs from any directory.
    ContentRootPath = AppContext.BaseDirectory,
});
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

var dataDirectory = Path.GetFullPath(builder.Configuration["data"] ?? "data");
Directory.CreateDirectory(dataDirectory);

builder.Services.AddTidings()
    .UseSqlite(Path.Combine(dataDirectory, "tidings.db"))
    .AddCollection("/api/todos", todos => todos
        .Schema("""
            {
              "type": "object",
              "properties": {
                "title": { "type": "string", "minLength": 1, "maxLength": 500 },
                "completed": { "type": "boolean" },
                "order": { "type": "number" }
              },
              "required": ["title"]
            }
            """)
        .Writable("title", "completed", "order")
        .Default("completed", false))
    .AddCollection("/api/flows/{flow}/messages", messages => messages
        .Schema("""
            {
              "type": "object",
              "properties": {
                "content": { "type": "string", "minLength": 1, "maxLength": 10000 },
                "tags": { "type": "array", "items": { "type": "string", "maxLength": 100 }, "maxItems": 50 },
                "uuid": { "type": "string" },
                "user": { "type": "string" }
              },
              "required": ["content"]
            }
            """)
        .Writable("content", "tags", "uuid")
        // Anonymous until sign-in lands with the authorization work.
        .Stamp("user", ctx => ctx.User?.Identity?.Name ?? "anonymous"));

var app = builder.Build();
app.UseDefaultFiles();
app.UseStaticFiles();
app.MapTidings();

// A service channel: what a client publishes to /service/echo comes back in the publish reply only
// (CometD's remoteCall), never broadcast to other clients.
var bayeux = app.Services.GetRequiredService<BayeuxServer>();
bayeux.MapService("/service/echo", (call, _) =>
{
    call.Reply(new JsonObject { ["echo"] = JsonNode.Parse(call.Data.GetRawText()), ["clientId"] = call.Session.Id });
    return ValueTask.CompletedTask;
});

app.Logger.LogInformation("Tidings demo: data in {DataDirectory}", dataDirectory);
app.Run();
