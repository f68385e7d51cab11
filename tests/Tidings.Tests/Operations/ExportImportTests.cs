using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Tidings.Operations;
using Tidings.Tests.Support;

namespace Tidings.Tests.Operations;

/// <summary>
/// GET /tidings/export and POST /tidings/import between real servers: what an empty SQLite or PostgreSQL store imports
/// exports again exactly as the source did (ids, versions, fields, sorted positions, creation order); only admins may.
/// </summary>
public sealed class ExportImportTests
{
    private const string Items = "/api/lists/l1/items";

    private static Task<TidingsApp> StartAsync(string? postgres = null) =>
        TidingsApp.StartAsync(new Dictionary<string, string?> { ["Tidings:Admins"] = "root, boss" },
            declare: t =>
            {
                SecuredApp.Declare(t);
                t.AddCollection("/api/lists/{list}/items", c => c.Sorted().Public()
                    .Schema("""{ "type": "object", "properties": { "title": { "type": "string" } }, "required": ["title"] }""").Writable("title"));
            },
            map: app =>
            {
                SecuredApp.MapSignIn(app);
                app.MapTidingsTransfer();
            },
            postgres: postgres);

    /// <summary>A source with records in several collections, updated, deleted and moved.</summary>
    private static async Task<TidingsApp> SourceAsync()
    {
        var app = await StartAsync();
        using var ada = app.ClientFor("ada");
        var first = await CreateAsync(ada, SecuredApp.Todos, """{"title": "milk"}""");
        await CreateAsync(ada, SecuredApp.Todos, """{"title": "bread"}""");
        var gone = await CreateAsync(ada, SecuredApp.Todos, """{"title": "gone"}""");
        Assert.Equal(HttpStatusCode.OK, (await ada.PatchAsync($"{SecuredApp.Todos}/{first}", TidingsApp.Json("""{"completed": true}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await ada.DeleteAsync($"{SecuredApp.Todos}/{gone}")).StatusCode);
        await CreateAsync(ada, SecuredApp.Flow, """{"content": "hello"}""");
        await CreateAsync(ada, "/api/flows/side/messages", """{"content": "aside", "tags": ["x"]}""");
        await CreateAsync(ada, SecuredApp.AdaNotes, """{"text": "private"}""");
        await CreateAsync(ada, Items, """{"title": "a"}""");
        await CreateAsync(ada, Items, """{"title": "b"}""");
        var c = await CreateAsync(ada, Items, """{"title": "c"}""");
        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync($"{Items}/{c}/move", TidingsApp.Json("""{"to": "start"}"""))).StatusCode);
        return app;
    }

    private static async Task<string> CreateAsync(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, TidingsApp.Json(json));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        return JsonNode.Parse(body)!["id"]!.GetValue<string>();
    }

    private static async Task<string> ExportAsync(TidingsApp app, string? under = null)
    {
        using var root = app.ClientFor("root");
        using var response = await root.GetAsync("/tidings/export" + (under is null ? "" : "?path=" + Uri.EscapeDataString(under)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task<HttpResponseMessage> ImportAsync(TidingsApp app, string export, string user = "root")
    {
        using var http = app.ClientFor(user);
        return await http.PostAsync("/tidings/import", new StringContent(export, System.Text.Encoding.UTF8, "application/x-ndjson"));
    }

    /// <summary>The record lines of an export (the header names the source's epoch and time).</summary>
    private static string[] Records(string export) => [.. export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task What_an_empty_store_imports_exports_again_as_the_source_did(bool toPostgres)
    {
        await using var source = await SourceAsync();
        var export = await ExportAsync(source);
        Assert.Equal(8, Records(export).Length); // the deleted todo is not there

        await using var target = await StartAsync(toPostgres ? await PostgresServer.Instance.CreateDatabaseAsync() : null);
        using (var imported = await ImportAsync(target, export))
        {
            Assert.Equal(HttpStatusCode.OK, imported.StatusCode);
            Assert.Equal(8, (await TidingsApp.ReadJsonAsync(imported))["imported"]!.GetValue<long>());
        }

        Assert.Equal(Records(export), Records(await ExportAsync(target)));

        // Served as the source serves them, in the same order; the sequence starts again under the target's own epoch.
        var before = await source.ListAsync(Items);
        var after = await target.ListAsync(Items);
        Assert.Equal(before.Items.ToJsonString(), after.Items.ToJsonString());
        Assert.Equal(["c", "a", "b"], after.Items.Select(i => i!["title"]!.GetValue<string>()));
        Assert.Equal(0, after.Seq);
        Assert.NotEqual(before.Epoch, after.Epoch);
        Assert.Equal((await source.ListAsync(SecuredApp.Todos)).Items.ToJsonString(), (await target.ListAsync(SecuredApp.Todos)).Items.ToJsonString());

        // Writes go on from the imported versions.
        using var ada = target.ClientFor("ada");
        var milk = after.Items[1]!["id"]!.GetValue<string>();
        using var renamed = await ada.PatchAsync($"{Items}/{milk}", TidingsApp.Json("""{"title": "a2"}"""));
        Assert.Equal(HttpStatusCode.OK, renamed.StatusCode);
        Assert.Equal(2, (await TidingsApp.ReadJsonAsync(renamed))["version"]!.GetValue<long>());

        // Into a store that is no longer empty: 409, nothing changes.
        using var again = await ImportAsync(target, export);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task An_export_under_a_path_holds_only_that_part()
    {
        await using var source = await SourceAsync();
        var flows = Records(await ExportAsync(source, "/api/flows"));

        Assert.Equal(2, flows.Length);
        Assert.All(flows, line => Assert.StartsWith("/api/flows/", JsonNode.Parse(line)!["path"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_bad_line_anywhere_imports_nothing()
    {
        await using var source = await SourceAsync();
        var lines = (await ExportAsync(source)).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        lines.Insert(lines.Count - 1, """{"path": "/api/undeclared", "id": "x", "version": 1, "record": {"id": "x", "version": 1}}""");

        await using var target = await StartAsync();
        using var refused = await ImportAsync(target, string.Join('\n', lines));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains($"line {lines.Count - 1}", await refused.Content.ReadAsStringAsync());
        Assert.Empty(Records(await ExportAsync(target)));
        using var notAnExport = await ImportAsync(target, "{\"title\": \"milk\"}\n");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, notAnExport.StatusCode);
    }

    [Fact]
    public async Task Only_admins_export_or_import()
    {
        await using var app = await StartAsync();
        foreach (var (user, status) in new[] { ((string?)null, HttpStatusCode.Unauthorized), ("ada", HttpStatusCode.Forbidden) })
        {
            using var http = app.ClientFor(user);
            using var export = await http.GetAsync("/tidings/export");
            Assert.Equal(status, export.StatusCode);
            Assert.Equal("application/problem+json", export.Content.Headers.ContentType?.MediaType);
            using var import = await http.PostAsync("/tidings/import", TidingsApp.Json("{}"));
            Assert.Equal(status, import.StatusCode);
        }

        using var boss = app.ClientFor("boss"); // the second name in Tidings:Admins
        using var allowed = await boss.GetAsync("/tidings/export");
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }
}
