using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Operations.Admin;
using Tidings.Tests.Support;

namespace Tidings.Tests.Operations;

/// <summary>
/// The admin page's endpoints on a real server: only the names in <c>Tidings:Admins</c> get the page, the stats, the
/// session list and the disconnect (401 signed out, 403 signed in); the figures follow the sessions; a disconnect ends
/// a session; the stats channel samples only while an admin watches, and only admins receive its samples.
/// </summary>
public sealed class AdminTests
{
    private static Task<TidingsApp> StartAsync(string? postgres = null) =>
        TidingsApp.StartAsync(new Dictionary<string, string?> { ["Tidings:Admins"] = "root" },
            declare: SecuredApp.Declare,
            map: app =>
            {
                SecuredApp.MapSignIn(app);
                app.MapTidingsAdmin();
            },
            postgres: postgres);

    private static Task<HttpResponseMessage> CallAsync(TidingsApp app, string? user, string method, string path)
    {
        var http = app.ClientFor(user);
        return http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
    }

    [Theory]
    [InlineData("GET", "/tidings/admin")]
    [InlineData("GET", "/tidings/admin/admin.js")]
    [InlineData("GET", "/tidings/admin/stats")]
    [InlineData("GET", "/tidings/admin/sessions")]
    [InlineData("POST", "/tidings/admin/sessions/nosuchsession/disconnect")]
    public async Task Only_admins_are_let_in(string method, string path)
    {
        await using var app = await StartAsync();

        using (var signedOut = await CallAsync(app, null, method, path))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, signedOut.StatusCode);
            Assert.Equal("application/problem+json", TidingsApp.ContentType(signedOut)?.MediaType);
        }

        using (var ada = await CallAsync(app, "ada", method, path))
        {
            Assert.Equal(HttpStatusCode.Forbidden, ada.StatusCode);
            Assert.Equal("application/problem+json", TidingsApp.ContentType(ada)?.MediaType);
        }

        using var root = await CallAsync(app, "root", method, path);
        Assert.Equal(method == "POST" ? HttpStatusCode.NotFound : HttpStatusCode.OK, root.StatusCode); // no such session: 404
    }

    [Fact]
    public async Task The_page_is_served_from_the_assembly_with_the_bayeux_path()
    {
        await using var app = await StartAsync();
        using var root = app.ClientFor("root");
        var page = await root.GetStringAsync("/tidings/admin");
        Assert.Contains("<meta name=\"tidings-bayeux\" content=\"/bayeux\">", page, StringComparison.Ordinal);
        Assert.Contains("/tidings/admin/stats", await root.GetStringAsync("/tidings/admin/admin.js"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_and_the_session_list_show_a_new_session()
    {
        await using var app = await StartAsync();
        using var root = app.ClientFor("root");
        var before = await StatsAsync(root);
        Assert.Equal(0, before["sessions"]!["total"]!.GetValue<int>());

        using var adaHttp = app.ClientFor("ada");
        var ada = new BayeuxClient(adaHttp);
        var id = await ada.HandshakeAsync();
        BayeuxClient.Succeeded(await ada.SubscribeAsync(SecuredApp.Flow));

        await Eventually.PassesAsync(async () =>
        {
            var stats = await StatsAsync(root);
            Assert.Equal(1, stats["sessions"]!["total"]!.GetValue<int>());
            Assert.Equal(1, stats["subscriptions"]!.GetValue<int>());
            Assert.Equal(1, stats["channels"]!.GetValue<int>());
        });

        var list = JsonNode.Parse(await root.GetStringAsync("/tidings/admin/sessions"))!.AsObject();
        Assert.Equal(1, list["count"]!.GetValue<int>());
        var session = list["sessions"]![0]!;
        Assert.Equal(id, session["id"]!.GetValue<string>());
        Assert.Equal("ada", session["user"]!.GetValue<string>());
        Assert.Equal("long-polling", session["transport"]!.GetValue<string>());
        Assert.Equal("127.0.0.1", session["address"]!.GetValue<string>());
        Assert.Equal([SecuredApp.Flow], session["subscriptions"]!.AsArray().Select(s => s!.GetValue<string>()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Stats_show_each_channels_change_log(bool postgres)
    {
        await using var app = await StartAsync(postgres ? await PostgresServer.Instance.CreateDatabaseAsync() : null);
        using var ada = app.ClientFor("ada");
        for (var i = 0; i < 2; i++)
        {
            using var created = await ada.PostAsync(SecuredApp.Flow, TidingsApp.Json($$"""{"content": "m{{i}}"}"""));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        using var root = app.ClientFor("root");
        var log = (await StatsAsync(root))["changeLogs"]!.AsArray().Single(l => l!["path"]!.GetValue<string>() == SecuredApp.Flow)!;
        Assert.Equal(2, log["seq"]!.GetValue<long>());
        Assert.Equal(1, log["oldestSeq"]!.GetValue<long>());
        Assert.Equal(2, log["entries"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_disconnected_session_is_told_to_handshake_again()
    {
        await using var app = await StartAsync();
        using var adaHttp = app.ClientFor("ada");
        var ada = new BayeuxClient(adaHttp);
        var id = await ada.HandshakeAsync();

        // A connect held open when the operator disconnects (or, if the disconnect is first, the next connect): either way the
        // client is told to handshake again, not to stop as after its own /meta/disconnect.
        var held = ada.SendAsync(new JsonObject
        {
            ["channel"] = "/meta/connect",
            ["connectionType"] = "long-polling",
            ["advice"] = new JsonObject { ["timeout"] = 20_000 },
        });
        using var root = app.ClientFor("root");
        using (var disconnected = await root.PostAsync($"/tidings/admin/sessions/{id}/disconnect", null))
        {
            Assert.Equal(HttpStatusCode.NoContent, disconnected.StatusCode);
        }

        var reply = (await Eventually.WithinAsync(held)).Select(m => m!.AsObject()).Single(m => m["channel"]!.GetValue<string>() == "/meta/connect");
        BayeuxClient.FailedWith(401, reply); // 401:clientId:Unknown client
        Assert.Equal("handshake", reply["advice"]!["reconnect"]!.GetValue<string>());
        var list = JsonNode.Parse(await root.GetStringAsync("/tidings/admin/sessions"))!;
        Assert.Equal(0, list["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task The_stats_channel_samples_for_admins_only_and_only_while_watched()
    {
        await using var app = await StartAsync();
        var sampler = app.Services.GetRequiredService<AdminSampler>();
        Assert.False(sampler.IsRunning);

        using var anonymousHttp = app.ClientFor(null);
        var anonymous = new BayeuxClient(anonymousHttp);
        await anonymous.HandshakeAsync();
        BayeuxClient.FailedWith(401, await anonymous.SubscribeAsync(AdminSampler.Channel));

        using var adaHttp = app.ClientFor("ada");
        var ada = new BayeuxClient(adaHttp);
        await ada.HandshakeAsync();
        BayeuxClient.FailedWith(403, await ada.SubscribeAsync(AdminSampler.Channel));
        BayeuxClient.Succeeded(await ada.SubscribeAsync("/tidings/**")); // a wildcard over the channel gets no samples
        Assert.False(sampler.IsRunning);

        using var rootHttp = app.ClientFor("root");
        var root = new BayeuxClient(rootHttp);
        await root.HandshakeAsync();
        BayeuxClient.Succeeded(await root.SubscribeAsync(AdminSampler.Channel));
        Assert.True(sampler.IsRunning);

        var first = await root.NextAsync();
        Assert.Equal("HISTORY", first.Method);
        var samples = await root.NextAsync(2);
        Assert.All(samples, s => Assert.Equal("SAMPLE", s.Method));
        var sample = samples[1].Data["sample"]!;
        Assert.Equal(3, sample["sessions"]!["total"]!.GetValue<int>());
        Assert.NotNull(sample["publishesPerSecond"]);
        await ada.AssertNothingWaitingAsync();

        BayeuxClient.Succeeded(await root.UnsubscribeAsync(AdminSampler.Channel));
        await Eventually.UntilAsync(() => !sampler.IsRunning, "the sampler stops when nobody watches");
    }

    private static async Task<JsonObject> StatsAsync(HttpClient root)
    {
        using var response = await root.GetAsync("/tidings/admin/stats");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await TidingsApp.ReadJsonAsync(response);
    }
}
