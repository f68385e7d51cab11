using System.Text;
using System.Text.Json;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class ServerApiTests
{
    [Fact]
    public async Task A_server_publish_reaches_client_sessions_and_counts_them()
    {
        using var h = new BayeuxHarness();
        var a = await h.SubscriberAsync("/news");
        var b = await h.SubscriberAsync("/news/*");
        var connect = await h.ConnectAsync(a);

        var reached = h.Server.Publish("/news", JsonSerializer.SerializeToElement(new { headline = "hi" }));

        Assert.Equal(1, reached);
        Assert.Equal(["""{"channel":"/news","data":{"headline":"hi"}}"""], (await connect.ResultAsync()).Deliveries);
        Assert.Empty((await h.PollAsync(b)).Deliveries);
    }

    [Fact]
    public async Task A_raw_server_publish_delivers_the_bytes_it_was_given()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/news");

        Assert.Equal(1, h.Server.PublishRaw("/news", """{"a":[1,2]}"""u8));

        Assert.Equal(["""{"channel":"/news","data":{"a":[1,2]}}"""], (await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public void A_server_publish_to_a_meta_or_invalid_channel_throws()
    {
        using var h = new BayeuxHarness();
        var data = JsonSerializer.SerializeToElement(1);

        Assert.Throws<ArgumentException>(() => h.Server.Publish("/meta/connect", data));
        Assert.Throws<ArgumentException>(() => h.Server.Publish("/news/*", data));
    }

    [Fact]
    public async Task A_raw_server_publish_of_invalid_json_throws_and_delivers_nothing()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/news");

        Assert.ThrowsAny<JsonException>(() => h.Server.PublishRaw("/news", "{not json"u8));

        Assert.Empty((await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public async Task A_server_subscription_receives_client_publishes()
    {
        using var h = new BayeuxHarness();
        var received = new List<Delivery>();
        using var subscription = h.Server.Subscribe("/chat/**", received.Add);
        var clientId = await h.HandshakeAsync();

        await h.PublishAsync(clientId, "/chat/room", """{"text":"hi"}""");

        var delivery = Assert.Single(received);
        Assert.Equal("/chat/room", delivery.Channel);
        Assert.Equal("hi", delivery.Data.GetProperty("text").GetString());
        Assert.Equal("""{"channel":"/chat/room","data":{"text":"hi"}}""", Encoding.UTF8.GetString(delivery.Message.Span));
    }

    [Fact]
    public async Task Disposing_a_server_subscription_unsubscribes_it()
    {
        using var h = new BayeuxHarness();
        var received = 0;
        var subscription = h.Server.Subscribe("/chat", _ => received++);
        var clientId = await h.HandshakeAsync();
        await h.PublishAsync(clientId, "/chat", "1");

        subscription.Dispose();
        subscription.Dispose();
        await h.PublishAsync(clientId, "/chat", "2");

        Assert.Equal(1, received);
        Assert.Equal(0, h.Server.Publish("/chat", JsonSerializer.SerializeToElement(3)));
    }

    [Fact]
    public async Task A_throwing_server_subscriber_does_not_stop_delivery_to_others()
    {
        using var h = new BayeuxHarness();
        using var bad = h.Server.Subscribe("/chat", _ => throw new InvalidOperationException("boom"));
        var clientId = await h.SubscriberAsync("/chat");

        var reply = await h.PublishAsync(clientId, "/chat", "1");

        ReplyAssert.Succeeded(reply);
        Assert.Equal(["1"], (await h.PollAsync(clientId)).Data);
    }

    [Fact]
    public async Task A_server_subscriber_that_publishes_from_its_callback_leaves_both_fan_outs_whole()
    {
        using var h = new BayeuxHarness();
        // Two patterns match each channel, so both publishes take the de-duplicating path.
        var both = await h.SubscriberAsync("/a/b", "/a/**");
        var later = await h.SubscriberAsync("/a/**");
        var relayed = await h.SubscriberAsync("/n/m", "/n/*");
        var innerReached = new List<int>();
        using var relay = h.Server.Subscribe("/a/*", d => innerReached.Add(h.Server.Publish("/n/m", d.Data)));

        var outerReached = h.Server.Publish("/a/b", JsonSerializer.SerializeToElement(1));

        Assert.Equal(3, outerReached);
        Assert.Equal([1], innerReached);
        Assert.Equal(["1"], (await h.PollAsync(both)).Data);
        Assert.Equal(["1"], (await h.PollAsync(later)).Data);
        Assert.Equal(["1"], (await h.PollAsync(relayed)).Data);
    }

    [Fact]
    public void Subscribing_server_code_to_an_invalid_pattern_throws()
    {
        using var h = new BayeuxHarness();

        Assert.Throws<ArgumentException>(() => h.Server.Subscribe("/chat/**/x", _ => { }));
    }

    [Fact]
    public async Task Closing_a_session_from_server_code_ends_its_held_connect()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat");
        var connect = await h.ConnectAsync(clientId);
        Assert.True(h.Server.TryGetSession(clientId, out var session));

        h.Server.CloseSession(session, SessionCloseReason.ServerShutdown);
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.SessionClosed, result.Reason);
        ReplyAssert.FailedWith(401, Assert.NotNull(result.Reply));
        Assert.Equal(0, h.Server.Publish("/chat", JsonSerializer.SerializeToElement(1)));
    }

    [Fact]
    public async Task Disposing_the_server_closes_every_session_and_stops_its_sweeper()
    {
        var h = new BayeuxHarness();
        await h.HandshakeAsync();
        await h.HandshakeAsync();
        Assert.Equal(1, h.Time.ActiveTimerCount);

        h.Dispose();

        Assert.Equal(0, h.Server.SessionCount);
        Assert.Equal(0, h.Time.ActiveTimerCount);
    }

    [Fact]
    public async Task Shutting_down_answers_held_connects_with_handshake_advice_and_refuses_new_handshakes()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        var connect = await h.ConnectAsync(clientId);

        h.Server.Shutdown();

        var result = await connect.ResultAsync();
        Assert.Equal(ConnectRelease.SessionClosed, result.Reason);
        Assert.Equal(0, h.Server.SessionCount);
        var refused = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"h"}""");
        ReplyAssert.FailedWith(503, refused);
        Assert.Equal("handshake", refused.GetProperty("advice").GetProperty("reconnect").GetString());
        Assert.Equal(0, h.Server.SessionCount);
    }
}
