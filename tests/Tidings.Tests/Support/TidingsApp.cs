using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tidings.Postgres;
using Tidings.Sqlite;

namespace Tidings.Tests.Support;

/// <summary>
/// A real Tidings server on Kestrel, on a free 127.0.0.1 port, over a SQLite file in its own temp folder —
/// declared like the demo: <c>/api/todos</c> and <c>/api/flows/{flow}/messages</c> (with a stamped <c>user</c>).
/// </summary>
internal sealed class TidingsApp : IAsyncDisposable
{
    public const string Todos = "/api/todos";
    public const string MainMessages = "/api/flows/main/messages";
    public const string SideMessages = "/api/flows/side/messages";

    public const string TodoSchema = """
        {
          "type": "object",
          "properties": {
            "title": { "type": "string", "minLength": 1, "maxLength": 500 },
            "completed": { "type": "boolean" },
            "order": { "type": "number" }
          },
          "required": ["title"]
        }
        """;

    public const string MessageSchema = """
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
        """;

    private readonly TempDirectory _folder;

    private TidingsApp(WebApplication app, TempDirectory folder, Uri address)
    {
        App = app;
        _folder = folder;
        Address = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public WebApplication App { get; }
    public Uri Address { get; }
    public HttpClient Http { get; }
    public IServiceProvider Services => App.Services;

    /// <summary>Starts a server; <paramref name="settings"/> are configuration keys such as <c>Tidings:MaxBodyBytes</c>.</summary>
    /// <param name="postgres">A PostgreSQL connection string to store in instead of the app's own SQLite file.</param>
    public static async Task<TidingsApp> StartAsync(IDictionary<string, string?>? settings = null, Action<TidingsBuilder>? declare = null,
        Action<WebApplication>? map = null, string? postgres = null)
    {
        var folder = new TempDirectory();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = folder.Path });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        // These tests drive thousands of requests from one address; rate limits have tests of their own.
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Tidings:RequestsPerSecond"] = "1000000",
            ["Tidings:RequestBurst"] = "1000000",
            ["Tidings:PublishesPerSecond"] = "1000000",
            ["Tidings:PublishBurst"] = "1000000",
            ["Tidings:HandshakesPerSecond"] = "1000000",
            ["Tidings:HandshakeBurst"] = "1000000",
            ["Bayeux:MaxSessionsPerAddress"] = "1000000",
        });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        var tidings = postgres is null
            ? builder.Services.AddTidings().UseSqlite(folder.File("tidings.db"))
            : builder.Services.AddTidings().UsePostgres(postgres);
        if (declare is not null)
        {
            declare(tidings);
        }
        else
        {
            DeclareDefaults(tidings);
        }

        var app = builder.Build();
        map?.Invoke(app);
        app.MapTidings();
        await app.StartAsync().WaitAsync(Eventually.Patience);
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        return new TidingsApp(app, folder, new Uri(addresses.First()));
    }

    public static void DeclareDefaults(TidingsBuilder tidings) =>
        tidings
            .AddCollection("/api/todos", todos => todos
                .Public()
                .Schema(TodoSchema)
                .Writable("title", "completed", "order")
                .Default("completed", false))
            .AddCollection("/api/flows/{flow}/messages", messages => messages
                .Public()
                .Schema(MessageSchema)
                .Writable("content", "tags", "uuid")
                .Stamp("user", ctx => ctx.User?.Identity?.Name ?? "anonymous"));

    public static StringContent Json(string json, string mediaType = "application/json") =>
        new(json, Encoding.UTF8, mediaType);

    public static StringContent Json(JsonNode json) => Json(json.ToJsonString());

    public Task<HttpResponseMessage> PostAsync(string path, string json) => Http.PostAsync(path, Json(json));

    public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json = null, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = Json(json);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return Http.SendAsync(request);
    }

    /// <summary>Creates a record through REST and returns it.</summary>
    public async Task<JsonObject> CreateAsync(string path, string json)
    {
        using var response = await PostAsync(path, json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, $"{(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!.AsObject();
    }

    /// <summary>The list answer: items, seq and epoch.</summary>
    public async Task<CollectionState> ListAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        var json = JsonNode.Parse(body)!.AsObject();
        return new CollectionState(json["items"]!.AsArray(), json["seq"]!.GetValue<long>(), json["epoch"]!.GetValue<string>());
    }

    public static async Task<JsonObject> ReadJsonAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();

    public static MediaTypeHeaderValue? ContentType(HttpResponseMessage response) => response.Content.Headers.ContentType;

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync().WaitAsync(Eventually.Patience);
        await App.DisposeAsync();
        _folder.Dispose();
    }
}

/// <summary>What <c>GET P</c> answered.</summary>
internal sealed record CollectionState(JsonArray Items, long Seq, string Epoch)
{
    public IReadOnlyList<string> Ids => [.. Items.Select(i => i!["id"]!.GetValue<string>())];
}
