using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class SubscribeTests
{
    [Fact]
    public async Task Subscribing_to_one_channel_echoes_the_subscription_as_a_string()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var reply = await h.SubscribeAsync(clientId, "\"/chat\"");

        ReplyAssert.Succeeded(reply);
        Assert.Equal("/meta/subscribe", reply.GetProperty("channel").GetString());
        Assert.Equal("s1", reply.GetProperty("id").GetString());
        Assert.Equal(clientId, reply.GetProperty("clientId").GetString());
        Assert.Equal("/chat", reply.GetProperty("subscription").GetString());
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal(["/chat"], session.Subscriptions);
    }

    [Fact]
    public async Task Subscribing_to_an_array_echoes_an_array_even_of_one()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var one = await h.SubscribeAsync(clientId, """["/a"]""");
        var many = await h.SubscribeAsync(clientId, """["/b","/c/*","/d/**"]""");

        Assert.Equal(JsonValueKind.Array, one.GetProperty("subscription").ValueKind);
        Assert.Equal(["/a"], one.GetProperty("subscription").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["/b", "/c/*", "/d/**"], many.GetProperty("subscription").EnumerateArray().Select(s => s.GetString()));
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal(["/a", "/b", "/c/*", "/d/**"], session.Subscriptions.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("\"chat\"")]
    [InlineData("\"/chat/\"")]
    [InlineData("\"/chat/**/x\"")]
    [InlineData("\"/a b\"")]
    [InlineData("[\"/ok\",\"/not ok\"]")]
    public async Task An_invalid_subscription_fails_with_405_and_subscribes_nothing(string subscription)
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var reply = await h.SubscribeAsync(clientId, subscription);

        ReplyAssert.FailedWith(405, reply);
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Empty(session.Subscriptions);
    }

    [Theory]
    [InlineData("\"/meta/connect\"")]
    [InlineData("\"/meta/*\"")]
    [InlineData("\"/meta/**\"")]
    [InlineData("\"/service/echo\"")]
    [InlineData("\"/service/**\"")]
    [InlineData("[\"/chat\",\"/meta/**\"]")]
    [InlineData("[\"/chat\",\"/service/x\",\"/news\"]")]
    public async Task Meta_and_service_subscriptions_are_forbidden_with_403_and_subscribe_nothing(string subscription)
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        var reply = await h.SubscribeAsync(clientId, subscription);

        ReplyAssert.FailedWith(403, reply);
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Empty(session.Subscriptions);
        Assert.Equal(0, h.Server.Publish("/chat", JsonSerializer.SerializeToElement(1)));
    }

    [Fact]
    public async Task A_subscribe_without_a_subscription_fails_with_402()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        ReplyAssert.FailedWith(402, await h.RequestAsync($$"""{"channel":"/meta/subscribe","clientId":"{{clientId}}"}"""));
        ReplyAssert.FailedWith(402, await h.SubscribeAsync(clientId, "[]"));
    }

    [Fact]
    public async Task A_subscribe_from_an_unknown_client_fails_with_401()
    {
        using var h = new BayeuxHarness();

        var reply = await h.SubscribeAsync("nobody", "\"/chat\"");

        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());
    }

    [Fact]
    public async Task Subscriptions_beyond_the_per_session_limit_are_refused_all_or_nothing()
    {
        using var h = new BayeuxHarness(o => o.MaxSubscriptionsPerSession = 3);
        var clientId = await h.HandshakeAsync();
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, """["/a","/b"]"""));

        var reply = await h.SubscribeAsync(clientId, """["/c","/d"]""");

        ReplyAssert.FailedWith(429, reply);
        Assert.Contains("Bayeux.MaxSubscriptionsPerSession", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal(["/a", "/b"], session.Subscriptions.Order(StringComparer.Ordinal));
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/c\""));
    }

    [Fact]
    public async Task Concurrent_subscribes_of_one_session_cannot_pass_the_limit_together()
    {
        using var h = new BayeuxHarness(o => o.MaxSubscriptionsPerSession = 3);
        var gate = new GatedHandler("/gated/", waiters: 2);
        h.Server.AddChannelHandler(gate);
        var clientId = await h.HandshakeAsync();

        // Both requests pass the early count (0 + 2 <= 3) and wait in the handler; only one can then fit.
        var first = h.SubscribeAsync(clientId, """["/gated/a","/gated/b"]""");
        var second = h.SubscribeAsync(clientId, """["/gated/c","/gated/d"]""");
        await gate.AllWaiting;
        gate.Open();
        var replies = await Task.WhenAll(first, second);

        Assert.Single(replies, r => r.GetProperty("successful").GetBoolean());
        var refused = Assert.Single(replies, r => !r.GetProperty("successful").GetBoolean());
        ReplyAssert.FailedWith(429, refused);
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal(2, session.Subscriptions.Count);
    }

    /// <summary>Owns channels under a prefix; each subscribe waits until the test opens the gate.</summary>
    private sealed class GatedHandler(string prefix, int waiters) : IBayeuxChannelHandler
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _allWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _waiting;

        public bool Owns(string channelOrPattern) => channelOrPattern.StartsWith(prefix, StringComparison.Ordinal);

        public ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _waiting) == waiters)
            {
                _allWaiting.TrySetResult();
            }

            await _open.Task.WaitAsync(cancellationToken);
        }

        public Task AllWaiting => _allWaiting.Task.WaitAsync(TimeSpan.FromSeconds(10));

        public void Open() => _open.TrySetResult();
    }

    [Fact]
    public async Task Unsubscribing_stops_deliveries_and_echoes_the_subscription()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat", "/news");
        var publisher = await h.HandshakeAsync();

        var reply = await h.UnsubscribeAsync(clientId, "\"/chat\"");
        await h.PublishAsync(publisher, "/chat", "1");
        await h.PublishAsync(publisher, "/news", "2");

        ReplyAssert.Succeeded(reply);
        Assert.Equal("/meta/unsubscribe", reply.GetProperty("channel").GetString());
        Assert.Equal("/chat", reply.GetProperty("subscription").GetString());
        Assert.Equal(["2"], (await h.PollAsync(clientId)).Data);
    }

    [Fact]
    public async Task Unsubscribing_from_something_never_subscribed_succeeds()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync();

        ReplyAssert.Succeeded(await h.UnsubscribeAsync(clientId, """["/never","/ever/*"]"""));
    }

    [Fact]
    public async Task Subscribing_twice_to_the_same_channel_delivers_once()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat", "/chat");

        Assert.Equal(1, h.Server.Publish("/chat", JsonSerializer.SerializeToElement(1)));
        Assert.Single((await h.PollAsync(clientId)).Deliveries);
    }
}
