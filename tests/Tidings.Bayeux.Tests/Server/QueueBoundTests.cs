using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class QueueBoundTests
{
    // Each delivery of Payload on /q is a little under 100 bytes, so two fit in 200 and a third does not.
    private static readonly JsonElement Payload = JsonSerializer.SerializeToElement(new string('x', 60));

    private static BayeuxHarness NewHarness() => new(o => o.MaxQueuedBytes = 200);

    [Fact]
    public async Task A_session_that_overflows_its_queue_is_closed_while_others_keep_receiving()
    {
        using var h = NewHarness();
        var slow = await h.SubscriberAsync("/q");
        var fast = await h.SubscriberAsync("/q");
        Assert.True(h.Server.TryGetSession(slow, out var slowSession));

        for (var i = 0; i < 3; i++)
        {
            Assert.True(h.Server.Publish("/q", Payload) >= 1);
            Assert.Single((await h.PollAsync(fast)).Deliveries);
        }

        Assert.True(slowSession.IsClosed);
        Assert.Equal(SessionCloseReason.QueueOverflow, slowSession.CloseReason);
        Assert.Equal(1, h.Server.SessionCount);

        var outcome = await h.SendAsync($$"""{"channel":"/meta/connect","clientId":"{{slow}}","connectionType":"long-polling"}""");
        var reply = BayeuxHarness.ToJson(Assert.Single(outcome.Replies));
        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());

        Assert.Equal(1, h.Server.Publish("/q", Payload));
        Assert.Single((await h.PollAsync(fast)).Deliveries);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task With_acks_sent_but_unacknowledged_deliveries_still_count_against_the_limit(bool ack)
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync(ack);
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/q\""));
        h.Server.Publish("/q", Payload);
        h.Server.Publish("/q", Payload);
        Assert.Equal(2, (await h.PollAsync(clientId)).Deliveries.Count);

        h.Server.Publish("/q", Payload);

        Assert.Equal(ack ? 0 : 1, h.Server.SessionCount);
    }

    [Fact]
    public async Task The_held_connect_of_an_overflowing_session_fails_with_401()
    {
        using var h = new BayeuxHarness(o => o.MaxQueuedBytes = 50);
        var clientId = await h.SubscriberAsync("/q");
        var connect = await h.ConnectAsync(clientId);

        h.Server.Publish("/q", Payload);
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.SessionClosed, result.Reason);
        var reply = Assert.NotNull(result.Reply);
        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());
        Assert.Empty(result.Deliveries);
        Assert.Equal(0, h.Server.SessionCount);
    }

    [Fact]
    public async Task Delivered_messages_free_their_room_in_the_queue()
    {
        using var h = NewHarness();
        var clientId = await h.SubscriberAsync("/q");

        for (var i = 0; i < 10; i++)
        {
            h.Server.Publish("/q", Payload);
            h.Server.Publish("/q", Payload);
            Assert.Equal(2, (await h.PollAsync(clientId)).Deliveries.Count);
        }

        Assert.Equal(1, h.Server.SessionCount);
    }
}
