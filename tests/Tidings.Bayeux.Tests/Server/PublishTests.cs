using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class PublishTests
{
    [Fact]
    public async Task A_delivery_is_exactly_channel_and_data_without_the_publishers_client_id_or_message_id()
    {
        using var h = new BayeuxHarness();
        var subscriber = await h.SubscriberAsync("/chat");
        var publisher = await h.HandshakeAsync();

        var reply = await h.PublishAsync(publisher, "/chat", """{"text":"hi","n":[1,2.5,null]}""", id: "\"m42\"");
        var result = await h.PollAsync(subscriber);

        Assert.Equal(["""{"channel":"/chat","data":{"text":"hi","n":[1,2.5,null]}}"""], result.Deliveries);
        ReplyAssert.Succeeded(reply);
        Assert.Equal("/chat", reply.GetProperty("channel").GetString());
        Assert.Equal("m42", reply.GetProperty("id").GetString());
        Assert.False(reply.TryGetProperty("data", out _));
    }

    [Fact]
    public async Task The_publisher_receives_its_own_message_when_subscribed()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat");

        await h.PublishAsync(clientId, "/chat", "\"echo\"");

        Assert.Equal(["\"echo\""], (await h.PollAsync(clientId)).Data);
    }

    [Theory]
    [InlineData("/meta/subscribe/x")]
    [InlineData("/meta/connect/x")]
    [InlineData("/meta/foo")]
    [InlineData("/meta/**")]
    public async Task Publishing_to_a_meta_channel_is_forbidden_with_403(string channel)
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();
        var seen = 0;
        using var spy = h.Server.Subscribe("/**", _ => seen++);

        var reply = await h.PublishAsync(clientId, channel, "1");

        ReplyAssert.FailedWith(403, reply);
        Assert.Equal(0, seen);
        Assert.Equal(1, h.Server.SessionCount);
    }

    [Theory]
    [InlineData("/chat/*")]
    [InlineData("/chat/**")]
    [InlineData("chat")]
    [InlineData("/a b")]
    [InlineData("/a//b")]
    [InlineData("/a/")]
    public async Task Publishing_to_an_invalid_channel_fails_with_405(string channel)
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        ReplyAssert.FailedWith(405, await h.PublishAsync(clientId, channel, "1"));
    }

    [Fact]
    public async Task Publishing_without_data_fails_with_402()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat");

        var reply = await h.RequestAsync($$"""{"channel":"/chat","clientId":"{{clientId}}","id":"p"}""");

        ReplyAssert.FailedWith(402, reply);
        Assert.Contains("data", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty((await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public async Task An_oversized_publish_fails_with_413_carrying_its_id_and_reaches_nobody()
    {
        using var h = new BayeuxHarness(o => o.MaxMessageBytes = 200);
        var clientId = await h.SubscriberAsync("/chat");

        var reply = await h.PublishAsync(clientId, "/chat", $"\"{new string('x', 300)}\"", id: "\"big\"");

        ReplyAssert.FailedWith(413, reply);
        Assert.Equal("big", reply.GetProperty("id").GetString());
        Assert.Equal("/chat", reply.GetProperty("channel").GetString());
        Assert.Empty((await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public async Task Publishing_null_data_is_a_publish()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat");

        ReplyAssert.Succeeded(await h.PublishAsync(clientId, "/chat", "null"));

        Assert.Equal(["""{"channel":"/chat","data":null}"""], (await h.PollAsync(clientId)).Deliveries);
    }

    [Fact]
    public async Task Publishing_from_an_unknown_client_fails_with_401_and_delivers_nothing()
    {
        using var h = new BayeuxHarness();
        var subscriber = await h.SubscriberAsync("/chat");

        var reply = await h.PublishAsync("nobody", "/chat", "1");

        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());
        Assert.Empty((await h.PollAsync(subscriber)).Deliveries);
    }

    [Fact]
    public async Task Publishing_without_a_client_id_fails_with_402()
    {
        using var h = new BayeuxHarness();

        ReplyAssert.FailedWith(402, await h.RequestAsync("""{"channel":"/chat","data":1}"""));
    }

    [Fact]
    public async Task A_session_whose_several_subscriptions_match_gets_one_copy()
    {
        using var h = new BayeuxHarness();
        var subscriber = await h.SubscriberAsync("/chat/room", "/chat/*", "/chat/**", "/**");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat/room", "1");

        Assert.Equal(["1"], (await h.PollAsync(subscriber)).Data);
    }

    [Fact]
    public async Task Wildcard_subscriptions_receive_what_their_pattern_matches()
    {
        using var h = new BayeuxHarness();
        var oneLevel = await h.SubscriberAsync("/chat/*");
        var anyDepth = await h.SubscriberAsync("/chat/**");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat", "0");
        await h.PublishAsync(publisher, "/chat/room", "1");
        await h.PublishAsync(publisher, "/chat/room/private", "2");
        await h.PublishAsync(publisher, "/chatter/room", "3");

        Assert.Equal(["1"], (await h.PollAsync(oneLevel)).Data);
        Assert.Equal(["1", "2"], (await h.PollAsync(anyDepth)).Data);
    }

    [Fact]
    public async Task A_service_publish_reaches_only_its_handler_never_subscribers()
    {
        using var h = new BayeuxHarness();
        var everything = await h.SubscriberAsync("/**");
        var caller = await h.HandshakeAsync();
        var serverSeen = 0;
        using var serverSpy = h.Server.Subscribe("/**", _ => serverSeen++);
        BayeuxServiceCall? received = null;
        h.Server.MapService("/service/echo", (call, _) =>
        {
            received = call;
            return ValueTask.CompletedTask;
        });

        var reply = await h.PublishAsync(caller, "/service/echo", """{"q":1}""");

        ReplyAssert.Succeeded(reply);
        Assert.NotNull(received);
        Assert.Equal("/service/echo", received.Channel);
        Assert.Equal(caller, received.Session.Id);
        Assert.Equal("""{"q":1}""", received.Data.GetRawText());
        Assert.False(reply.TryGetProperty("data", out _));
        Assert.Empty((await h.PollAsync(everything)).Deliveries);
        Assert.Equal(0, serverSeen);
    }

    [Fact]
    public async Task A_service_handler_reply_travels_in_the_publish_reply_with_the_same_id()
    {
        using var h = new BayeuxHarness();
        var caller = await h.HandshakeAsync();
        h.Server.MapService("/service/add", (call, _) =>
        {
            var sum = call.Data.EnumerateArray().Sum(n => n.GetInt32());
            call.Reply(new JsonObject { ["sum"] = sum });
            return ValueTask.CompletedTask;
        });

        var reply = await h.PublishAsync(caller, "/service/add", "[1,2,3]", id: "\"call-9\"");

        ReplyAssert.Succeeded(reply);
        Assert.Equal("call-9", reply.GetProperty("id").GetString());
        Assert.Equal("/service/add", reply.GetProperty("channel").GetString());
        Assert.Equal(6, reply.GetProperty("data").GetProperty("sum").GetInt32());
    }

    [Fact]
    public async Task A_service_handler_mapped_to_a_pattern_serves_every_channel_below_it()
    {
        using var h = new BayeuxHarness();
        var caller = await h.HandshakeAsync();
        h.Server.MapService("/service/rpc/**", (call, _) =>
        {
            call.Reply(JsonValue.Create(call.Channel));
            return ValueTask.CompletedTask;
        });

        var reply = await h.PublishAsync(caller, "/service/rpc/users/get", "{}");

        Assert.Equal("/service/rpc/users/get", reply.GetProperty("data").GetString());
    }

    [Fact]
    public async Task A_service_publish_without_a_handler_fails_with_404()
    {
        using var h = new BayeuxHarness();
        var caller = await h.HandshakeAsync();

        ReplyAssert.FailedWith(404, await h.PublishAsync(caller, "/service/missing", "1"));
    }

    [Fact]
    public async Task A_service_handler_that_throws_gives_a_500_reply_and_the_session_lives_on()
    {
        using var h = new BayeuxHarness();
        var caller = await h.HandshakeAsync();
        h.Server.MapService("/service/boom", (_, _) => throw new InvalidOperationException("secret detail"));

        var reply = await h.PublishAsync(caller, "/service/boom", "1", id: "\"b\"");

        ReplyAssert.FailedWith(500, reply);
        Assert.Equal("b", reply.GetProperty("id").GetString());
        Assert.DoesNotContain("secret detail", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_service_handler_can_fail_the_call_with_its_own_error()
    {
        using var h = new BayeuxHarness();
        var caller = await h.HandshakeAsync();
        h.Server.MapService("/service/guarded", (call, _) =>
        {
            call.Fail("403::Not for you");
            return ValueTask.CompletedTask;
        });

        var reply = await h.PublishAsync(caller, "/service/guarded", "1");

        ReplyAssert.FailedWith(403, reply);
    }

    [Fact]
    public void Mapping_a_service_outside_service_channels_or_twice_is_refused()
    {
        using var h = new BayeuxHarness();
        h.Server.MapService("/service/one", (_, _) => ValueTask.CompletedTask);

        Assert.Throws<ArgumentException>(() => h.Server.MapService("/chat", (_, _) => ValueTask.CompletedTask));
        Assert.Throws<InvalidOperationException>(() => h.Server.MapService("/service/one", (_, _) => ValueTask.CompletedTask));
    }
}
