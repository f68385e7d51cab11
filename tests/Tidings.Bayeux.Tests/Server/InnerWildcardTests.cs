using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

/// <summary>Subscriptions with an inner <c>*</c> (<c>/api/flows/*/messages</c>): how they are asked for, delivered and bounded.</summary>
public sealed class InnerWildcardTests
{
    /// <summary>The subscribe ext of a client that routes concrete channels to its patterns itself (the Tidings clients).</summary>
    private const string Concrete = """{"delivery":"concrete"}""";

    /// <summary>The subscribe ext of a client that routes by the message's channel (CometD).</summary>
    private const string OnPattern = """{"delivery":"pattern"}""";

    private static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value);

    [Fact]
    public async Task One_session_cannot_use_up_the_inner_wildcard_room_of_everyone_else()
    {
        // The probe of issue 16 (defect 5): ten subscribes of 100 distinct patterns from one anonymous session.
        using var h = new BayeuxHarness();
        var hog = await h.HandshakeAsync();
        var replies = new List<JsonElement>();
        for (var batch = 0; batch < 10; batch++)
        {
            var patterns = string.Join(',', Enumerable.Range(0, 100).Select(i => $"\"/z/*/p{batch}x{i}\""));
            replies.Add(await h.SubscribeAsync(hog, $"[{patterns}]", Concrete));
        }

        var other = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(other, "\"/api/flows/*/messages\"", Concrete));
        h.Server.Publish("/api/flows/f/messages", Json("reached"));
        Assert.Equal(["\"reached\""], (await h.PollAsync(other)).Data);

        // The hog was told why, in its own budget's name, and holds nothing of the refused requests.
        ReplyAssert.FailedWith(429, replies[0]);
        Assert.Contains("Bayeux.MaxInnerWildcardsPerSession", replies[0].GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(h.Server.TryGetSession(hog, out var session));
        Assert.Empty(session.Subscriptions);
    }

    [Fact]
    public async Task The_per_session_budget_counts_only_inner_wildcards_and_frees_up_on_unsubscribe()
    {
        using var h = new BayeuxHarness(o => o.MaxInnerWildcardsPerSession = 2);
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, """["/a/*/x","/b/*/x","/plain","/trailing/*"]""", Concrete));

        var refused = await h.SubscribeAsync(clientId, """["/d/y","/c/*/x"]""", Concrete);

        ReplyAssert.FailedWith(429, refused);
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.DoesNotContain("/d/y", session.Subscriptions);
        ReplyAssert.Succeeded(await h.UnsubscribeAsync(clientId, "\"/b/*/x\""));
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/c/*/x\"", Concrete));
        h.Server.Publish("/c/q/x", Json("reached"));
        Assert.Equal(["\"reached\""], (await h.PollAsync(clientId)).Data);
    }

    [Fact]
    public async Task Without_a_delivery_form_an_inner_wildcard_is_refused_with_the_trailing_wildcard_to_use_instead()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var refused = await h.SubscribeAsync(clientId, """["/chat","/api/flows/*/messages"]""");

        ReplyAssert.FailedWith(405, refused);
        Assert.Contains("Subscribe to /api/flows/** instead", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("/api/flows/**", refused.GetProperty("ext").GetProperty("instead").GetString());
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Empty(session.Subscriptions);
        ReplyAssert.FailedWith(405, await h.SubscribeAsync(clientId, "\"/a/*/b\"", """{"delivery":"sideways"}"""));
    }

    [Fact]
    public async Task Concrete_delivery_brings_every_partition_on_its_own_channel_and_nothing_else()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/api/flows/*/messages\"", Concrete));

        Assert.Equal(1, h.Server.Publish("/api/flows/main/messages", Json(1)));
        Assert.Equal(1, h.Server.Publish("/api/flows/other/messages", Json(2)));
        Assert.Equal(0, h.Server.Publish("/api/flows/main/members", Json(3)));
        Assert.Equal(0, h.Server.Publish("/api/flows/main/messages/x", Json(4)));

        var result = await h.PollAsync(clientId);
        Assert.Equal(["1", "2"], result.Data);
        Assert.Contains("\"channel\":\"/api/flows/other/messages\"", result.Deliveries[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concrete_delivery_with_overlapping_subscriptions_sends_one_copy()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, """["/api/flows/*/messages","/api/flows/main/messages","/api/flows/**"]""", Concrete));

        Assert.Equal(1, h.Server.Publish("/api/flows/main/messages", Json(1)));
        Assert.Single((await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public async Task Pattern_delivery_arrives_on_the_pattern_with_the_concrete_channel_in_ext()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/api/flows/*/messages\"", OnPattern));
        var other = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(other, "\"/api/flows/*/messages\"", OnPattern));

        h.Server.Publish("/api/flows/main/messages", Json(new { text = "hi", list = new[] { 1, 2 } }));
        h.Server.PublishRaw("/api/flows/side/messages", """{"raw":true}"""u8);

        foreach (var session in new[] { clientId, other })
        {
            var deliveries = (await h.PollAsync(session)).Deliveries.Select(d => JsonDocument.Parse(d).RootElement).ToList();
            Assert.Equal(2, deliveries.Count);
            Assert.All(deliveries, d => Assert.Equal("/api/flows/*/messages", d.GetProperty("channel").GetString()));
            Assert.Equal(["/api/flows/main/messages", "/api/flows/side/messages"],
                deliveries.Select(d => d.GetProperty("ext").GetProperty("channel").GetString()));
            Assert.Equal("""{"text":"hi","list":[1,2]}""", deliveries[0].GetProperty("data").GetRawText());
            Assert.Equal("""{"raw":true}""", deliveries[1].GetProperty("data").GetRawText());
        }
    }

    [Fact]
    public async Task Pattern_delivery_and_the_exact_channel_of_one_session_each_get_their_own_message()
    {
        // CometD routes the concrete message to the exact listener and the pattern message to the pattern's: one call each.
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/api/flows/*/messages\"", OnPattern));
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/api/flows/main/messages\""));

        Assert.Equal(2, h.Server.Publish("/api/flows/main/messages", Json(1)));

        var channels = (await h.PollAsync(clientId)).Deliveries.Select(d => JsonDocument.Parse(d).RootElement.GetProperty("channel").GetString());
        Assert.Equal(["/api/flows/*/messages", "/api/flows/main/messages"], channels.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("/api/flows/**")]
    [InlineData("/api/**")]
    [InlineData("/api/flows/*/*")]
    public async Task Pattern_delivery_is_refused_next_to_a_trailing_wildcard_that_CometD_would_also_route_it_to(string trailing)
    {
        using var h = new BayeuxHarness();
        var first = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(first, $"\"{trailing}\"", Concrete));
        var refused = await h.SubscribeAsync(first, "\"/api/flows/*/messages\"", OnPattern);
        ReplyAssert.FailedWith(409, refused);
        Assert.Contains($"Overlaps {trailing}", refused.GetProperty("error").GetString(), StringComparison.Ordinal);

        var second = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(second, "\"/api/flows/*/messages\"", OnPattern));
        ReplyAssert.FailedWith(409, await h.SubscribeAsync(second, $"\"{trailing}\"", Concrete));

        Assert.True(h.Server.TryGetSession(second, out var session));
        Assert.Equal(["/api/flows/*/messages"], session.Subscriptions);
    }

    [Fact]
    public async Task Pattern_delivery_of_a_pattern_that_ends_in_a_wildcard_is_refused()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var refused = await h.SubscribeAsync(clientId, "\"/api/*/x/*\"", OnPattern);

        ReplyAssert.FailedWith(405, refused);
        Assert.Contains("/api/**", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_inner_wildcards_of_every_shape_each_reach_exactly_their_channels()
    {
        using var h = new BayeuxHarness();
        string[] patterns = ["/a/*/c", "/*/b/c", "/*/*/c", "/a/*/**", "/x/*/c", "/a/*/c/d"];
        var sessions = new Dictionary<string, string>();
        foreach (var pattern in patterns)
        {
            var clientId = await h.HandshakeAsync();
            ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, $"\"{pattern}\"", Concrete));
            sessions[pattern] = clientId;
        }

        foreach (var channel in new[] { "/a/b/c", "/a/b/c/d", "/q/b/c", "/a/b", "/x/y/z" })
        {
            h.Server.Publish(channel, Json(channel));
        }

        foreach (var (pattern, clientId) in sessions)
        {
            var expected = new[] { "/a/b/c", "/a/b/c/d", "/q/b/c", "/a/b", "/x/y/z" }.Where(c => Tidings.Bayeux.Protocol.ChannelName.Matches(pattern, c));
            Assert.Equal(expected.Select(c => $"\"{c}\""), (await h.PollAsync(clientId)).Data);
        }

        // An unsubscribed pattern leaves the tree; the others stay.
        Assert.Equal(2, h.Server.Publish("/x/y/c", Json(1))); // /x/*/c and /*/*/c
        ReplyAssert.Succeeded(await h.UnsubscribeAsync(sessions["/x/*/c"], "\"/x/*/c\""));
        Assert.Equal(1, h.Server.Publish("/x/y/c", Json(2)));
    }
}
