using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Bayeux.Server;
using Tidings.Identity;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.SecuredApp;

namespace Tidings.Tests.Authorization;

/// <summary>Nothing denied is delivered, by any path; identity is fixed at handshake; the other defences hold.</summary>
public sealed class DeliveryAndIdentityTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await SecuredApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task<BayeuxClient> SessionAsync(string user)
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync(new JsonObject { ["token"] = _app.TokenFor(user) });
        return client;
    }

    private async Task<JsonObject> WriteAsync(string user, HttpMethod method, string path, string json)
    {
        using var http = _app.ClientFor(user);
        using var response = await http.SendAsync(new HttpRequestMessage(method, path) { Content = TidingsApp.Json(json) });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return await TidingsApp.ReadJsonAsync(response);
    }

    [Fact]
    public async Task Another_users_notes_never_reach_bob_through_wildcards_replays_snapshots_or_rest_catch_up()
    {
        var bob = await SessionAsync("bob");
        var ada = await SessionAsync("ada");
        BayeuxClient.Succeeded(await bob.SubscribeAsync("/api/users/*/notes"));
        BayeuxClient.Succeeded(await bob.SubscribeAsync("/api/**"));
        BayeuxClient.Succeeded(await bob.SubscribeAsync(Todos));
        BayeuxClient.Succeeded(await ada.SubscribeAsync(AdaNotes));

        await WriteAsync("ada", HttpMethod.Post, AdaNotes, """{"text":"secret"}""");
        await WriteAsync("ada", HttpMethod.Post, Todos, """{"title":"public"}""");

        Assert.Equal("secret", (await ada.NextAsync()).Body["text"]!.GetValue<string>());
        var bobs = await bob.NextAsync();
        Assert.Equal(Todos, bobs.Channel);
        await bob.AssertNothingWaitingAsync();

        var epoch = (await _app.ListAsync(Todos)).Epoch;
        BayeuxClient.FailedWith(403, await bob.SubscribeAsync(AdaNotes, new JsonObject { ["since"] = 0, ["epoch"] = epoch }));
        BayeuxClient.FailedWith(403, await bob.SubscribeAsync(AdaNotes, new JsonObject { ["snapshot"] = true }));
        using var bobHttp = _app.ClientFor("bob");
        Assert.Equal(HttpStatusCode.Forbidden, (await bobHttp.GetAsync($"{AdaNotes}?since=0&epoch={epoch}")).StatusCode);
        await bob.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_record_that_leaves_a_readers_view_arrives_as_a_removal_then_as_skips_with_contiguous_seqs()
    {
        var bob = await SessionAsync("bob");
        BayeuxClient.Succeeded(await bob.SubscribeAsync(Board));
        var card = await WriteAsync("ada", HttpMethod.Post, Board, """{"text":"plan"}""");
        var id = card["id"]!.GetValue<string>();
        await WriteAsync("ada", HttpMethod.Patch, $"{Board}/{id}", """{"private":true}""");
        await WriteAsync("ada", HttpMethod.Patch, $"{Board}/{id}", """{"text":"secret plan"}""");

        var events = await bob.NextAsync(3);
        Assert.Equal([("POST", 1L), ("DELETE", 2L), ("SKIP", 3L)], events.Select(e => (e.Method, e.Seq)));
        Assert.Equal(new JsonObject { ["id"] = id }.ToJsonString(), events[1].Body.ToJsonString());
        Assert.Null(events[2].Data["body"]);

        // The same view on every path: a since replay and REST catch-up.
        var epoch = (await _app.ListAsync(Todos)).Epoch;
        var replay = await SessionAsync("bob");
        BayeuxClient.Succeeded(await replay.SubscribeAsync(Board, new JsonObject { ["since"] = 0, ["epoch"] = epoch }));
        Assert.Equal(["POST", "DELETE", "SKIP"], (await replay.NextAsync(3)).Select(e => e.Method));
        using var bobHttp = _app.ClientFor("bob");
        var changes = JsonNode.Parse(await bobHttp.GetStringAsync($"{Board}?since=0&epoch={epoch}"))!["changes"]!.AsArray();
        Assert.Equal(["POST", "DELETE", "SKIP"], changes.Select(c => c!["method"]!.GetValue<string>()));
        Assert.DoesNotContain("secret", changes.ToJsonString(), StringComparison.Ordinal);

        // The author still sees everything; bob's list and snapshot leave the card out.
        using var adaHttp = _app.ClientFor("ada");
        Assert.Single(JsonNode.Parse(await adaHttp.GetStringAsync(Board))!["items"]!.AsArray());
        Assert.Empty(JsonNode.Parse(await bobHttp.GetStringAsync(Board))!["items"]!.AsArray());
        var snapshot = await SessionAsync("bob");
        BayeuxClient.Succeeded(await snapshot.SubscribeAsync(Board, new JsonObject { ["snapshot"] = true }));
        var state = await snapshot.NextAsync();
        Assert.Equal(("SNAPSHOT", 3L), (state.Method, state.Seq));
        Assert.Empty(state.Data["items"]!.AsArray());
    }

    [Fact]
    public async Task A_session_keeps_the_user_it_was_handshaken_with_whatever_later_requests_carry()
    {
        var bob = await SessionAsync("bob");
        var http = new BayeuxClient(_app.ClientFor("ada"));
        // bob's session, driven over requests that carry ada's token: still bob, so ada's notes stay closed.
        var reply = await http.RequestAsync(new JsonObject { ["channel"] = "/meta/subscribe", ["clientId"] = bob.ClientId, ["subscription"] = AdaNotes });
        BayeuxClient.FailedWith(403, reply);
    }

    [Theory]
    [InlineData("expired")]
    [InlineData("tampered")]
    [InlineData("foreign-key")]
    [InlineData("wrong-audience")]
    [InlineData("empty")]
    public async Task Bad_tokens_are_refused_with_a_reason_over_rest_and_bayeux(string kind)
    {
        await using var other = await TidingsApp.StartAsync(
            new Dictionary<string, string?> { ["Tidings:Identity:Audience"] = kind == "wrong-audience" ? "elsewhere" : "tidings" }, Declare);
        var tokens = _app.Services.GetRequiredService<TidingsTokens>();
        var token = kind switch
        {
            "expired" => tokens.Issue("ada", TimeSpan.FromMinutes(-5)),
            "tampered" => Tamper(tokens.Issue("ada")),
            "empty" => "",
            _ => other.TokenFor("ada"),
        };

        var handshake = await new BayeuxClient(_app.Http).TryHandshakeAsync(new JsonObject { ["token"] = token });
        BayeuxClient.FailedWith(403, handshake);
        Assert.StartsWith("403:token:", handshake["error"]!.GetValue<string>(), StringComparison.Ordinal);
        if (kind == "expired")
        {
            Assert.Contains("expired", handshake["error"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        if (kind != "empty")
        {
            using var http = new HttpClient { BaseAddress = _app.Address };
            http.DefaultRequestHeaders.Authorization = new("Bearer", token);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(Flow)).StatusCode);
        }
    }

    private static string Tamper(string token) => token[..^3] + (token[^3] == 'A' ? 'B' : 'A') + token[^2..];

    [Fact]
    public async Task Without_a_token_a_session_is_anonymous()
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        BayeuxClient.FailedWith(403, await client.SubscribeAsync(Flow));
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos));
    }

    [Fact]
    public async Task A_cookie_sign_in_labelled_by_the_app_is_still_held_to_the_same_site_rule()
    {
        var cookies = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = _app.Address };
        (await browser.PostAsync("/signin-labelled/ada", null)).EnsureSuccessStatusCode();
        using var adaHttp = _app.ClientFor("ada");
        var before = JsonNode.Parse(await adaHttp.GetStringAsync(Flow))!["seq"]!.GetValue<long>();

        using var foreign = new HttpRequestMessage(HttpMethod.Post, Flow) { Content = TidingsApp.Json("""{"content":"forged"}""") };
        foreign.Headers.Add("Origin", "http://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.SendAsync(foreign)).StatusCode);

        const string handshake = """[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"h"}]""";
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "/bayeux") { Content = TidingsApp.Json(handshake) };
        crossSite.Headers.Add("Origin", "http://evil.example");
        BayeuxClient.FailedWith(403, JsonNode.Parse(await (await browser.SendAsync(crossSite)).Content.ReadAsStringAsync())![0]!.AsObject());
        Assert.Equal(before, JsonNode.Parse(await adaHttp.GetStringAsync(Flow))!["seq"]!.GetValue<long>());
    }

    [Fact]
    public async Task Cookie_writes_and_handshakes_are_accepted_from_this_site_only_and_jsonp_ignores_the_cookie()
    {
        var cookies = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = _app.Address };
        (await browser.PostAsync("/signin/ada", null)).EnsureSuccessStatusCode();
        var own = _app.Address.GetLeftPart(UriPartial.Authority);

        using var foreign = new HttpRequestMessage(HttpMethod.Post, Flow) { Content = TidingsApp.Json("""{"content":"forged"}""") };
        foreign.Headers.Add("Origin", "http://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.SendAsync(foreign)).StatusCode);
        using var same = new HttpRequestMessage(HttpMethod.Post, Flow) { Content = TidingsApp.Json("""{"content":"mine"}""") };
        same.Headers.Add("Origin", own);
        Assert.Equal(HttpStatusCode.Created, (await browser.SendAsync(same)).StatusCode);
        using var adaHttp = _app.ClientFor("ada");
        var items = JsonNode.Parse(await adaHttp.GetStringAsync(Flow))!["items"]!.AsArray();
        Assert.Equal(["mine"], items.Select(i => i!["content"]!.GetValue<string>()));

        const string handshake = """[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","callback-polling"],"id":"h"}]""";
        using var crossSite = new HttpRequestMessage(HttpMethod.Post, "/bayeux") { Content = TidingsApp.Json(handshake) };
        crossSite.Headers.Add("Origin", "http://evil.example");
        var refused = JsonNode.Parse(await (await browser.SendAsync(crossSite)).Content.ReadAsStringAsync())![0]!.AsObject();
        BayeuxClient.FailedWith(403, refused);

        // JSONP: any page can include the script with the victim's cookies, so the session is anonymous.
        var jsonp = await browser.GetStringAsync("/bayeux?jsonp=cb&message=" + Uri.EscapeDataString(handshake));
        var clientId = JsonNode.Parse(jsonp["/**/cb(".Length..^2])![0]!["clientId"]!.GetValue<string>();
        var subscribe = $$"""[{"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":"{{Flow}}","id":"s"}]""";
        var answer = await browser.GetStringAsync("/bayeux?jsonp=cb&message=" + Uri.EscapeDataString(subscribe));
        BayeuxClient.FailedWith(403, JsonNode.Parse(answer["/**/cb(".Length..^2])![0]!.AsObject());
    }

    [Fact]
    public async Task A_websocket_from_an_origin_outside_the_allow_list_is_refused()
    {
        await using var app = await TidingsApp.StartAsync(new Dictionary<string, string?> { ["Bayeux:AllowedOrigins:0"] = "http://app.example" }, Declare);
        using var evil = new ClientWebSocket();
        evil.Options.SetRequestHeader("Origin", "http://evil.example");
        var refused = await Assert.ThrowsAsync<WebSocketException>(() => evil.ConnectAsync(new Uri($"ws://{app.Address.Authority}/bayeux"), CancellationToken.None));
        Assert.Contains("403", refused.Message, StringComparison.Ordinal);

        using var good = new ClientWebSocket();
        good.Options.SetRequestHeader("Origin", "http://app.example");
        await good.ConnectAsync(new Uri($"ws://{app.Address.Authority}/bayeux"), CancellationToken.None);
        Assert.Equal(WebSocketState.Open, good.State);
    }

    [Fact]
    public async Task Rest_and_bayeux_rate_limits_answer_429_for_the_busy_user_only()
    {
        await using var app = await TidingsApp.StartAsync(new Dictionary<string, string?>
        {
            ["Tidings:RequestsPerSecond"] = "1", ["Tidings:RequestBurst"] = "3",
            ["Tidings:PublishesPerSecond"] = "1", ["Tidings:PublishBurst"] = "3",
        }, Declare);
        using var ada = app.ClientFor("ada");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await ada.GetAsync(Todos);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        using var bob = app.ClientFor("bob");
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync(Todos)).StatusCode);

        var session = new BayeuxClient(app.Http);
        await session.HandshakeAsync();
        var errors = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var reply = await session.PublishAsync("/chat", new JsonObject { ["n"] = i });
            if (reply["successful"]!.GetValue<bool>() is false)
            {
                errors.Add(reply["error"]!.GetValue<string>());
            }
        }

        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.StartsWith("429:", e, StringComparison.Ordinal));
        var other = new BayeuxClient(app.Http);
        await other.HandshakeAsync();
        BayeuxClient.Succeeded(await other.PublishAsync("/chat", new JsonObject { ["n"] = 0 }));
    }

    [Fact]
    public async Task Handshakes_beyond_the_per_address_limit_are_refused_and_make_no_session()
    {
        // Refill so slow that the burst is all this test can use.
        await using var app = await TidingsApp.StartAsync(new Dictionary<string, string?>
        {
            ["Tidings:HandshakesPerSecond"] = "0.0001", ["Tidings:HandshakeBurst"] = "3",
        }, Declare);
        var bayeux = app.Services.GetRequiredService<BayeuxServer>();
        for (var i = 0; i < 3; i++)
        {
            await new BayeuxClient(app.Http).HandshakeAsync();
        }

        var refused = await new BayeuxClient(app.Http).TryHandshakeAsync();

        BayeuxClient.FailedWith(429, refused);
        Assert.Contains("Tidings.HandshakesPerSecond", refused["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(3, bayeux.SessionCount);
    }

    [Fact]
    public async Task Snapshot_and_catch_up_subscribes_count_against_the_session_limit_and_plain_ones_do_not()
    {
        await using var app = await TidingsApp.StartAsync(new Dictionary<string, string?>
        {
            ["Tidings:PublishesPerSecond"] = "0.0001", ["Tidings:PublishBurst"] = "2",
        }, Declare);
        var session = new BayeuxClient(app.Http);
        await session.HandshakeAsync();
        for (var i = 0; i < 5; i++)
        {
            BayeuxClient.Succeeded(await session.SubscribeAsync($"/chat/{i}"));
        }

        for (var i = 0; i < 2; i++)
        {
            BayeuxClient.Succeeded(await session.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
            BayeuxClient.Succeeded(await session.UnsubscribeAsync(Todos));
        }

        var refused = await session.SubscribeAsync(Todos, new JsonObject { ["since"] = 0, ["epoch"] = "x" });

        BayeuxClient.FailedWith(429, refused);
    }

    [Fact]
    public async Task The_schema_export_describes_each_collection_and_its_rules()
    {
        var export = JsonNode.Parse(await _app.Http.GetStringAsync("/tidings/schema"))!["collections"]!.AsArray();
        var notes = export.Single(c => c!["route"]!.GetValue<string>() == "/api/users/{user}/notes")!;

        Assert.Equal("/api/users/*/notes", notes["channel"]!.GetValue<string>());
        Assert.Equal(["text"], notes["writable"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Equal("the user named by {user}", notes["access"]!["list"]!.GetValue<string>());
        Assert.Equal("object", notes["schema"]!["type"]!.GetValue<string>());
        Assert.Equal(5, export.Count);
    }
}
