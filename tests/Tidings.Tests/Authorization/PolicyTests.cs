using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Identity;
using Tidings.Sqlite;
using Tidings.Tests.Support;

namespace Tidings.Tests.Authorization;

/// <summary>
/// The app's own ASP.NET Core authorization governs collections, queues and presence: a role policy, a resource-based
/// handler that sees the record and the route values, and a handler that awaits I/O, all through IAuthorizationService.
/// </summary>
public sealed class PolicyTests : IAsyncLifetime
{
    private const string Wiki = "/api/wiki/main/pages";
    private const string LockedWiki = "/api/wiki/locked/pages";
    private const string Reviews = "/api/reviews";
    private const string Reports = "/api/queues/reports/jobs";
    private const string PageSchema = """{ "type": "object", "properties": { "title": { "type": "string" }, "user": { "type": "string" } }, "required": ["title"] }""";

    private readonly TempDirectory _folder = new();
    private readonly ApprovalGate _gate = new();
    private TidingsApp _app = null!;

    public async Task InitializeAsync()
    {
        await File.WriteAllLinesAsync(_folder.File("approved.txt"), ["ada"]);
        _gate.Directory = _folder.File("approved.txt");
        _app = await TidingsApp.StartAsync(declare: Declare, map: MapSignIn);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _folder.Dispose();
    }

    private void Declare(TidingsBuilder tidings)
    {
        tidings.Services.AddAuthorization(o =>
        {
            o.AddPolicy("Editors", p => p.RequireRole("editor"));
            o.AddPolicy("Workers", p => p.RequireRole("worker"));
        });
        tidings.Services.AddSingleton<IAuthorizationHandler, PageOwnerHandler>();
        tidings.Services.AddSingleton<IAuthorizationHandler>(new ApprovedAuthorHandler(_gate));
        SecuredApp.Declare(tidings); // the existing in-memory rules, side by side with policies
        tidings
            .AddCollection("/api/wiki/{space}/pages", c => c
                .Schema(PageSchema).Writable("title").Stamp("user", ctx => ctx.User?.Identity?.Name)
                .Access(a => a.List(AccessRule.Policy("Editors")).Create(AccessRule.Policy("Editors"))
                    .Update(AccessRule.Requirements(new PageOwnerRequirement())).Delete(AccessRule.SignedIn.And(AccessRule.Policy("Editors")))))
            .AddCollection(Reviews, c => c
                .Schema(PageSchema).Writable("title")
                .Access(a => a.List(AccessRule.SignedIn).Create(AccessRule.Requirements(new ApprovedAuthorRequirement()))))
            .AddQueue("reports", q => q
                .Schema("""{ "type": "object" }""")
                .Access(a => a.List(AccessRule.Policy("Editors")).Enqueue(AccessRule.Policy("Editors"))
                    .Cancel(AccessRule.Policy("Editors")).Work(AccessRule.Policy("Workers"))));
    }

    /// <summary><c>POST /signin-roles/{name}?roles=editor,worker</c>: a cookie sign-in carrying role claims, as an app's own would.</summary>
    private static void MapSignIn(WebApplication app)
    {
        SecuredApp.MapSignIn(app);
        app.MapPost("/signin-roles/{name}", async (HttpContext http, string name, string? roles) =>
        {
            var claims = new List<Claim> { new(ClaimTypes.Name, name) };
            claims.AddRange((roles ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(r => new Claim(ClaimTypes.Role, r)));
            await http.SignInAsync(TidingsIdentityOptions.CookieScheme,
                new ClaimsPrincipal(new ClaimsIdentity(claims, TidingsIdentityOptions.CookieScheme, ClaimTypes.Name, ClaimTypes.Role)));
            return Results.Ok();
        });
    }

    /// <summary>An HTTP client signed in by cookie as <paramref name="name"/> with <paramref name="roles"/>.</summary>
    private async Task<HttpClient> SignInAsync(string name, string roles = "")
    {
        var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() })
        {
            BaseAddress = _app.Address,
            Timeout = TimeSpan.FromSeconds(30),
        };
        http.DefaultRequestHeaders.Add("Origin", _app.Address.GetLeftPart(UriPartial.Authority)); // cookie writes come from this site
        using var response = await http.PostAsync($"/signin-roles/{name}?roles={roles}", null);
        response.EnsureSuccessStatusCode();
        return http;
    }

    private static async Task<BayeuxClient> SessionAsync(HttpClient http)
    {
        var client = new BayeuxClient(http);
        await client.HandshakeAsync();
        return client;
    }

    private static async Task<(HttpStatusCode Status, JsonObject? Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = TidingsApp.Json(json);
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text)!.AsObject() : null);
    }

    [Fact]
    public async Task A_role_policy_governs_rest_reads_and_writes()
    {
        var editor = await SignInAsync("ada", "editor");
        var reader = await SignInAsync("bob");

        var (created, page) = await SendAsync(editor, HttpMethod.Post, Wiki, """{"title":"Home"}""");
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(reader, HttpMethod.Post, Wiki, """{"title":"Spam"}""")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(_app.Http, HttpMethod.Post, Wiki, """{"title":"Spam"}""")).Status);

        var (listed, list) = await SendAsync(editor, HttpMethod.Get, Wiki);
        Assert.Equal(HttpStatusCode.OK, listed);
        Assert.Equal(["Home"], list!["items"]!.AsArray().Select(i => i!["title"]!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(editor, HttpMethod.Get, $"{Wiki}?since=0&epoch={list["epoch"]}")).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(editor, HttpMethod.Get, $"{Wiki}/{page!["id"]}")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(reader, HttpMethod.Get, Wiki)).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(reader, HttpMethod.Get, $"{Wiki}?since=0&epoch={list["epoch"]}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(reader, HttpMethod.Get, $"{Wiki}/{page["id"]}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(reader, HttpMethod.Delete, $"{Wiki}/{page["id"]}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(editor, HttpMethod.Delete, $"{Wiki}/{page["id"]}")).Status);
    }

    [Fact]
    public async Task A_role_policy_governs_socket_writes_and_subscribes_and_deliveries_use_the_subscribe_time_decision()
    {
        var editor = await SessionAsync(await SignInAsync("ada", "editor"));
        var reader = await SessionAsync(await SignInAsync("bob"));

        BayeuxClient.Succeeded(await editor.SubscribeAsync(Wiki, new JsonObject { ["snapshot"] = true }));
        Assert.Equal("SNAPSHOT", (await editor.NextAsync()).Method);
        BayeuxClient.FailedWith(403, await reader.SubscribeAsync(Wiki));
        BayeuxClient.FailedWith(403, await reader.SubscribeAsync(Wiki, new JsonObject { ["snapshot"] = true }));
        BayeuxClient.Succeeded(await reader.SubscribeAsync("/api/**")); // across partitions: the policy was never decided for it

        BayeuxClient.FailedWith(403, await reader.PublishAsync(Wiki, new JsonObject { ["method"] = "POST", ["body"] = new JsonObject { ["title"] = "Spam" } }));
        BayeuxClient.Succeeded(await editor.PublishAsync(Wiki, new JsonObject { ["method"] = "POST", ["body"] = new JsonObject { ["title"] = "Home" } }));

        var created = await editor.NextAsync();
        Assert.Equal(("POST", "Home", "ada"), (created.Method, created.Body["title"]!.GetValue<string>(), created.Body["user"]!.GetValue<string>()));
        await _app.CreateAsync(SecuredApp.Todos, """{"title":"public"}""");
        Assert.Equal(SecuredApp.Todos, (await reader.NextAsync()).Channel); // the wiki page never reached bob, the todo did
        await reader.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_resource_based_handler_sees_the_record_and_the_route_values()
    {
        var ada = await SignInAsync("ada", "editor");
        var cy = await SignInAsync("cy", "editor");
        var (_, page) = await SendAsync(ada, HttpMethod.Post, Wiki, """{"title":"Home"}""");
        var (_, locked) = await SendAsync(ada, HttpMethod.Post, LockedWiki, """{"title":"Rules"}""");

        // Only the page's owner (the stored record's "user") may update it, and nobody in the space named "locked".
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(cy, HttpMethod.Patch, $"{Wiki}/{page!["id"]}", """{"title":"Mine"}""")).Status);
        var (updated, body) = await SendAsync(ada, HttpMethod.Patch, $"{Wiki}/{page["id"]}", """{"title":"Welcome"}""");
        Assert.Equal(HttpStatusCode.OK, updated);
        Assert.Equal("Welcome", body!["title"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(ada, HttpMethod.Patch, $"{LockedWiki}/{locked!["id"]}", """{"title":"No"}""")).Status);

        // The socket path asks the same handler.
        var cySession = await SessionAsync(cy);
        BayeuxClient.FailedWith(403, await cySession.PublishAsync(Wiki, new JsonObject
        {
            ["method"] = "PATCH", ["body"] = new JsonObject { ["id"] = page["id"]!.DeepClone(), ["title"] = "Mine" },
        }));
        Assert.Equal("Welcome", (await SendAsync(ada, HttpMethod.Get, $"{Wiki}/{page["id"]}")).Body!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_policy_that_awaits_io_decides_a_write_while_other_writes_go_on()
    {
        var ada = await SignInAsync("ada");
        var bob = await SignInAsync("bob");
        _gate.Hold();

        var adas = SendAsync(ada, HttpMethod.Post, Reviews, """{"title":"Good"}""");
        Assert.True(await _gate.Waiting.WaitAsync(Eventually.Patience)); // the handler is awaiting, the write with it
        Assert.False(adas.IsCompleted);
        await _app.CreateAsync(SecuredApp.Todos, """{"title":"not held up"}"""); // the store's writer is not
        _gate.Release();
        Assert.Equal(HttpStatusCode.Created, (await adas.WaitAsync(Eventually.Patience)).Status);

        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(bob, HttpMethod.Post, Reviews, """{"title":"Bad"}""")).Status);
        await File.AppendAllLinesAsync(_folder.File("approved.txt"), ["bob"]);
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(bob, HttpMethod.Post, Reviews, """{"title":"Approved now"}""")).Status);
    }

    [Fact]
    public async Task A_queue_is_governed_by_policies()
    {
        var editor = await SignInAsync("ada", "editor");
        var worker = await SignInAsync("wes", "worker");
        var reader = await SignInAsync("bob");
        var request = new JsonObject { ["payload"] = new JsonObject { ["month"] = 11 } };

        using var refused = await reader.PostAsJsonAsync(Reports, request);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        using var enqueued = await editor.PostAsJsonAsync(Reports, request);
        Assert.Equal(HttpStatusCode.Created, enqueued.StatusCode);
        var job = await TidingsApp.ReadJsonAsync(enqueued);

        using var notAWorker = await editor.PostAsJsonAsync("/api/queues/reports/claim", new JsonObject { ["max"] = 1 });
        Assert.Equal(HttpStatusCode.Forbidden, notAWorker.StatusCode);
        using var claim = await worker.PostAsJsonAsync("/api/queues/reports/claim", new JsonObject { ["max"] = 1 });
        Assert.Equal(HttpStatusCode.OK, claim.StatusCode);
        Assert.Equal(job["id"]!.GetValue<string>(), (await TidingsApp.ReadJsonAsync(claim))["jobs"]![0]!["id"]!.GetValue<string>());

        using var hidden = await reader.PostAsync($"{Reports}/{job["id"]}/cancel", null);
        Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode); // who may not list the queue cannot find its jobs
        using var cancelled = await editor.PostAsync($"{Reports}/{job["id"]}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(reader, HttpMethod.Get, Reports)).Status);
    }

    [Fact]
    public async Task Presence_is_shown_only_to_whom_the_policy_allows()
    {
        var editorHttp = await SignInAsync("ada", "editor");
        var readerHttp = await SignInAsync("bob");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(editorHttp, HttpMethod.Get, $"/tidings/presence?channel={Wiki}")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(readerHttp, HttpMethod.Get, $"/tidings/presence?channel={Wiki}")).Status);

        var watcher = await SessionAsync(editorHttp);
        BayeuxClient.Succeeded(await watcher.SubscribeAsync("/tidings/presence" + Wiki));
        Assert.Equal("SNAPSHOT", (await watcher.NextAsync()).Method);
        var reader = await SessionAsync(readerHttp);
        BayeuxClient.FailedWith(403, await reader.SubscribeAsync("/tidings/presence" + Wiki));
        BayeuxClient.Succeeded(await reader.SubscribeAsync("/tidings/**"));

        var cy = await SessionAsync(await SignInAsync("cy", "editor"));
        BayeuxClient.Succeeded(await cy.SubscribeAsync(Wiki));
        var join = await watcher.NextAsync();
        Assert.Equal(("JOIN", "cy"), (join.Method, join.Data["user"]!.GetValue<string>()));
        await reader.AssertNothingWaitingAsync();
    }

    [Fact]
    public void A_policy_on_the_read_rule_is_refused_at_declaration_because_deliveries_cannot_await_it()
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<InvalidOperationException>(() => services.AddTidings().AddCollection("/api/secrets", c => c
            .Schema(PageSchema).Access(a => a.List(AccessRule.SignedIn).Read(AccessRule.Policy("Editors")))));
        Assert.Contains("Collection '/api/secrets': the Read rule 'policy 'Editors'' uses an authorization policy", error.Message);
        Assert.Contains("Put the policy on List", error.Message);

        var queueError = Assert.Throws<InvalidOperationException>(() => services.AddTidings().AddQueue("secrets", q => q
            .Schema("""{ "type": "object" }""").Access(a => a.List(AccessRule.SignedIn).Read(AccessRule.SignedIn.And(AccessRule.Policy("Editors"))))));
        Assert.Contains("Read rule", queueError.Message);
    }

    [Theory]
    [InlineData(true, "Collection '/api/drafts': the access rule 'policy 'Editor'' names the authorization policy 'Editor', which is not registered")]
    [InlineData(false, "Collection '/api/drafts': the access rule 'policy 'Editor'' uses ASP.NET Core authorization, which is not registered")]
    public async Task A_rule_naming_a_policy_the_app_lacks_stops_it_at_start_up(bool addAuthorization, string message)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = _folder.Path });
        if (addAuthorization)
        {
            builder.Services.AddAuthorization(o => o.AddPolicy("Editors", p => p.RequireRole("editor")));
        }

        builder.Services.AddTidings().UseSqlite(_folder.File($"lacking-{addAuthorization}.db"))
            .AddCollection("/api/drafts", c => c.Schema(PageSchema).Access(a => a.List(AccessRule.Policy("Editor"))));
        await using var app = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapTidings());
        Assert.Contains(message, error.Message);
    }

    private sealed class PageOwnerRequirement : IAuthorizationRequirement;

    /// <summary>Only a page's author updates it, and nobody updates pages in the space named "locked".</summary>
    private sealed class PageOwnerHandler : AuthorizationHandler<PageOwnerRequirement, TidingsResource>
    {
        protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, PageOwnerRequirement requirement, TidingsResource resource)
        {
            if (resource is { Operation: TidingsOperations.Update, Existing: { } existing }
                && resource.RouteValues["space"] != "locked"
                && existing.TryGetProperty("user", out var owner) && owner.ValueKind == JsonValueKind.String
                && owner.GetString() == context.User.Identity?.Name)
            {
                context.Succeed(requirement);
            }

            return Task.CompletedTask;
        }
    }

    private sealed class ApprovedAuthorRequirement : IAuthorizationRequirement;

    /// <summary>An author is approved when named in a file; the test can hold the handler before it reads it.</summary>
    private sealed class ApprovedAuthorHandler(ApprovalGate gate) : AuthorizationHandler<ApprovedAuthorRequirement, TidingsResource>
    {
        protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, ApprovedAuthorRequirement requirement,
            TidingsResource resource)
        {
            await gate.PassAsync();
            var approved = await File.ReadAllLinesAsync(gate.Directory);
            if (context.User.Identity?.Name is { } name && approved.Contains(name))
            {
                context.Succeed(requirement);
            }
        }
    }

    private sealed class ApprovalGate
    {
        private TaskCompletionSource _open = Open();

        public string Directory { get; set; } = "";

        public SemaphoreSlim Waiting { get; } = new(0);

        public void Hold() => _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _open.TrySetResult();

        public Task PassAsync()
        {
            Waiting.Release();
            return _open.Task;
        }

        private static TaskCompletionSource Open()
        {
            var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            open.SetResult();
            return open;
        }
    }
}
