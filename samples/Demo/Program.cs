using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication;
using Tidings;
using Tidings.Access;
using Tidings.Identity;
using Tidings.Jobs;
using Tidings.Http;
using Tidings.Observability;
using Scalar.AspNetCore;
using Tidings.Operations;
using Tidings.Operations.Admin;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Tidings.Storage;
using Tidings.Writes;
using Tidings.Bayeux.Server;
using Tidings.Postgres;
using Tidings.Sqlite;

// The Tidings demo server. `dotnet run --project samples/Demo` serves http://127.0.0.1:5080;
// `--urls` picks other addresses and `--data DIR` another data directory (default ./data).
// `--postgres "<Npgsql connection string>"` stores in PostgreSQL instead of ./data/tidings.db, so several demo
// nodes can serve one app (name each with `--Bayeux:NodeId=a` and give them the same `--data` for the sign-in key).
// `dotnet Tidings.Demo.dll export FILE [--under /api/flows]` and `import FILE` (with the same --data or --postgres as when
// serving) write the store's records to JSON lines and load them into an empty store: how a demo moves from SQLite to
// PostgreSQL. Over HTTP the same is GET /tidings/export and POST /tidings/import, for the names in --Tidings:Admins.
string? transfer = null, transferFile = null;
if (args is [("import" or "export") and var verb, var file, ..])
{
    (transfer, transferFile, args) = (verb, file, args[2..]);
}

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

const string TaskSchema = """
    {
      "type": "object",
      "properties": {
        "title": { "type": "string", "minLength": 1, "maxLength": 500 },
        "done": { "type": "boolean" }
      },
      "required": ["title"]
    }
    """;

var tidings = builder.Services.AddTidings();
if (builder.Configuration["postgres"] is { Length: > 0 } postgres)
{
    tidings.UsePostgres(postgres);
}
else
{
    tidings.UseSqlite(Path.Combine(dataDirectory, "tidings.db"));
}

tidings
    .AddIdentity(identity => identity.SigningKey ??= DemoSigningKey(dataDirectory))
    .AddCollection("/api/todos", todos => todos
        .Public()
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
        .Stamp("user", ctx => ctx.User?.Identity?.Name)
        // Flows need sign-in; a message is editable and deletable only by its author.
        .Access(a => a
            .List(AccessRule.SignedIn)
            .Create(AccessRule.SignedIn)
            .Update(AccessRule.RecordUser("user"))
            .Delete(AccessRule.RecordUser("user"))))
    // Every signed-in user reads anyone's tasks; only {user} changes (and reorders) their own. A sorted feed:
    // POST .../tasks/{id}/move {"before": id} | {"after": id} | {"to": "start" | "end"}.
    .AddCollection("/api/users/{user}/tasks", tasks => tasks
        .Sorted()
        .Schema(TaskSchema)
        .Writable("title", "done")
        .Default("done", false)
        .Access(a => a.List(AccessRule.SignedIn).Write(AccessRule.RouteUser("user"))))
    // Only {user} reads or writes their notes.
    .AddCollection("/api/users/{user}/notes", notes => notes
        .Schema("""{ "type": "object", "properties": { "text": { "type": "string", "maxLength": 10000 } }, "required": ["text"] }""")
        .Writable("text")
        .Access(a => a.List(AccessRule.RouteUser("user")).Write(AccessRule.RouteUser("user"))))
    // Shipped tasks: written only by the ship worker (in one transaction with the task leaving the list).
    .AddCollection("/api/users/{user}/shipped", shipped => shipped
        .Schema(TaskSchema)
        .Writable("title", "done", "task")
        .Access(a => a.List(AccessRule.SignedIn)))
    // Ship a task: the requester's own tasks only; everyone signed in sees their own jobs; the in-process ShipTask works it.
    .AddQueue("ship", ship => ship
        .Schema("""{ "type": "object", "properties": { "task": { "type": "string" } }, "required": ["task"], "additionalProperties": false }""")
        .Access(a => a.List(AccessRule.SignedIn).Read(AccessRule.RecordUser("requestedBy"))
            .Enqueue(AccessRule.SignedIn).Cancel(AccessRule.RecordUser("requestedBy")))
        .MaxAttempts(3)
        .Worker<ShipTask, ShipPayload>(concurrency: 2))
    // Echo: any signed-in user enqueues any JSON object and works the queue over HTTP (samples/workers/echo-worker.mjs).
    .AddQueue("echo", echo => echo
        .Access(a => a.List(AccessRule.SignedIn).Enqueue(AccessRule.SignedIn).Cancel(AccessRule.RecordUser("requestedBy"))
            .Work(AccessRule.SignedIn)));

// Traces and metrics when asked: `--otel console` prints spans and metrics; `--otel otlp` sends them to an OpenTelemetry
// collector (OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4317). A REST write, its commit and its publish (with the
// delivery count) are one trace under the request's span.
if (builder.Configuration["otel"] is { Length: > 0 } otel)
{
    if (otel is not ("console" or "otlp"))
    {
        throw new ArgumentException($"--otel {otel}: use 'console' or 'otlp'.");
    }

    builder.Services.AddOpenTelemetry()
        .ConfigureResource(resource => resource.AddService("tidings-demo", serviceInstanceId: builder.Configuration["Bayeux:NodeId"]))
        .WithTracing(tracing =>
        {
            tracing.AddSource(TidingsTracing.SourceName, "Microsoft.AspNetCore");
            _ = otel == "console" ? tracing.AddConsoleExporter() : tracing.AddOtlpExporter();
        })
        .WithMetrics(metrics =>
        {
            metrics.AddMeter("Tidings.Bayeux", "Tidings.Store", "Microsoft.AspNetCore.Hosting");
            _ = otel == "console" ? metrics.AddConsoleExporter() : metrics.AddOtlpExporter();
        });
}

// The API reference: an OpenAPI 3.1 document of every collection and queue at /openapi/v1.json, read by Scalar at /scalar
// (its script ships inside Scalar.AspNetCore and is served from here: the page needs no CDN).
builder.Services.AddOpenApi(openApi => openApi.AddTidings());

// Health: the store answers, its writer keeps up and (several nodes) the change tail keeps up — JSON at /healthz.
builder.Services.AddHealthChecks().AddTidings();

var app = builder.Build();
if (transfer is not null)
{
    Environment.ExitCode = await TransferAsync(app.Services, transfer, transferFile!, builder.Configuration["under"]);
    return;
}

app.UseDefaultFiles();
app.UseStaticFiles();
app.MapTidings();
app.MapTidingsHealthChecks("/healthz");
app.MapOpenApi();
app.MapTidingsTransfer();
app.MapTidingsAdmin(); // /tidings/admin: live figures and a session inspector, for the names in --Tidings:Admins
app.MapScalarApiReference(scalar => scalar.WithTitle("Tidings demo API").DisableDefaultFonts());

// A service channel: what a client publishes to /service/echo comes back in the publish reply only
// (CometD's remoteCall), never broadcast to other clients.
var bayeux = app.Services.GetRequiredService<BayeuxServer>();
bayeux.MapService("/service/echo", (call, _) =>
{
    call.Reply(new JsonObject { ["echo"] = JsonNode.Parse(call.Data.GetRawText()), ["clientId"] = call.Session.Id });
    return ValueTask.CompletedTask;
});

// Sign-in by name (a demo, not a password system): sets the cookie for browsers and returns a token for
// clients that cannot use cookies (ext.token in a Bayeux handshake, or Authorization: Bearer).
app.MapPost("/api/session", async (HttpContext http, SignIn body, TidingsTokens tokens) =>
{
    var name = body.Name?.Trim() ?? "";
    if (name.Length is 0 or > 40 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
    {
        return Results.Problem(statusCode: 400, title: "Invalid name", detail: "Use 1-40 letters, digits, '-' or '_'.");
    }

    var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], TidingsIdentityOptions.CookieScheme);
    await http.SignInAsync(TidingsIdentityOptions.CookieScheme, new ClaimsPrincipal(identity));
    return Results.Ok(new { name, token = tokens.Issue(name) });
});
app.MapGet("/api/session", (HttpContext http) =>
    http.User.Identity?.IsAuthenticated == true ? Results.Ok(new { name = http.User.Identity.Name }) : Results.Ok(new { name = (string?)null }));
app.MapDelete("/api/session", async (HttpContext http) =>
{
    await http.SignOutAsync(TidingsIdentityOptions.CookieScheme);
    return Results.NoContent();
});

app.Logger.LogInformation("Tidings demo: data in {DataDirectory}", dataDirectory);
app.Run();

// Export or import without serving: opens the store, moves the records, closes it.
static async Task<int> TransferAsync(IServiceProvider services, string verb, string file, string? under)
{
    var store = services.GetRequiredService<ITidingsStore>();
    await store.InitializeAsync(CancellationToken.None);
    try
    {
        var transfer = new StoreTransfer(store, services.GetRequiredService<Tidings.Collections.CollectionRegistry>(), TimeProvider.System);
        if (verb == "export")
        {
            await using var output = File.Create(file);
            Console.WriteLine($"Exported {await transfer.ExportAsync(output, under, CancellationToken.None)} records to {file}.");
            return 0;
        }

        var result = await transfer.ImportAsync(() => File.OpenRead(file), CancellationToken.None);
        Console.WriteLine(result.Loaded ? $"Imported {result.Records} records from {file}." : $"Nothing imported: {result.Problem}");
        return result.Loaded ? 0 : 1;
    }
    finally
    {
        await store.DisposeAsync();
    }
}

// The demo keeps its token key next to its data, so tokens survive restarts. Nodes that share --data may start at
// once: each writes a candidate aside and moves it into place only if no key is there yet, so all read the same one.
static string DemoSigningKey(string dataDirectory)
{
    var file = Path.Combine(dataDirectory, "signing.key");
    if (!File.Exists(file))
    {
        var candidate = $"{file}.{Guid.NewGuid():N}";
        File.WriteAllText(candidate, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        try
        {
            File.Move(candidate, file, overwrite: false);
        }
        catch (IOException) when (File.Exists(file))
        {
            File.Delete(candidate); // another node's key is in place
        }
    }

    return File.ReadAllText(file).Trim();
}

internal sealed record SignIn(string? Name);

internal sealed record ShipPayload(string Task);

/// <summary>
/// Ships one of the requester's tasks: checks that the task exists and is theirs to ship, then — in one transaction —
/// writes it to /api/users/{user}/shipped and removes it from /api/users/{user}/tasks. Both lists' subscribers see it
/// leave one and arrive in the other; the job's subscribers see its progress and result.
/// </summary>
internal sealed class ShipTask(CollectionWriter writer, ITidingsStore store) : IJobWorker<ShipPayload>
{
    public async Task<JsonNode?> RunAsync(JobContext<ShipPayload> job, CancellationToken cancellationToken)
    {
        var user = job.RequestedBy ?? throw new InvalidOperationException("Only a signed-in user can ship a task.");
        var tasks = $"/api/users/{user}/tasks";
        await job.ReportProgressAsync(new JsonObject { ["step"] = "checking" });
        var task = await store.ReadAsync(r => r.Get(tasks, job.Payload.Task), cancellationToken)
            ?? throw new InvalidOperationException($"{user} has no task {job.Payload.Task}.");
        var record = JsonNode.Parse(task.Json)!.AsObject();

        await job.ReportProgressAsync(new JsonObject { ["step"] = "shipping" });
        var moved = await writer.TransactAsync(
        [
            WriteRequest.Create($"/api/users/{user}/shipped", new JsonObject
            {
                ["title"] = record["title"]?.DeepClone(), ["done"] = true, ["task"] = task.Id,
            }),
            WriteRequest.Delete(tasks, task.Id, expectedVersion: task.Version),
        ], WriteContext.Server, cancellationToken); // the list is the requester's own (checked above); "shipped" is the worker's to write
        if (!moved.Committed)
        {
            var refusal = moved.Outcomes.First(o => o is not null)!;
            throw new InvalidOperationException($"Shipping {job.Payload.Task} was refused: {refusal.Status}.");
        }

        return new JsonObject { ["shipped"] = moved.Outcomes[0]!.Record!.Id, ["title"] = record["title"]?.DeepClone() };
    }
}
