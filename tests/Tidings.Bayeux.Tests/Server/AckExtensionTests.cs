using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class AckExtensionTests
{
    private static async Task<string> AckSubscriberAsync(BayeuxHarness h, string channel)
    {
        var clientId = await h.HandshakeAsync(ack: true);
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, $"\"{channel}\""));
        return clientId;
    }

    private static long AckOf(ConnectResult result) =>
        result.SuccessfulReply.GetProperty("ext").GetProperty("ack").GetInt64();

    [Fact]
    public async Task With_acks_deliveries_travel_in_connect_replies_numbered_by_batch()
    {
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");

        var first = await h.PollAsync(clientId);
        var held = await h.ConnectAsync(clientId, $$""","ext":{"ack":{{AckOf(first)}}}""");
        h.Server.Publish("/chat", System.Text.Json.JsonSerializer.SerializeToElement("a"));
        var second = await held.ResultAsync();

        Assert.Empty(first.Deliveries);
        Assert.Equal(ConnectRelease.Delivery, second.Reason);
        Assert.Equal(["\"a\""], second.Data);
        Assert.True(AckOf(second) > AckOf(first));
    }

    [Fact]
    public async Task Unacknowledged_batches_are_sent_again_on_the_next_connect_in_order()
    {
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat", "1");
        await h.PublishAsync(publisher, "/chat", "2");
        var first = await h.PollAsync(clientId);
        await h.PublishAsync(publisher, "/chat", "3");

        // The client never saw batch `first` (say the response was lost), so it acknowledges nothing new.
        var second = await h.PollAsync(clientId);

        Assert.Equal(["1", "2"], first.Data);
        Assert.Equal(["1", "2", "3"], second.Data);
    }

    [Theory]
    [InlineData("\"1\"")]
    [InlineData("{}")]
    [InlineData("null")]
    public async Task An_ack_that_is_not_a_number_acknowledges_nothing(string ack)
    {
        // Found by the chaos fuzzer: TryGetInt64 threw on a string, and the connect got HTTP 500.
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat", "1");
        var first = await h.PollAsync(clientId);
        var second = await h.PollAsync(clientId, $$""","ext":{"ack":{{ack}}}""");

        Assert.Equal(["1"], first.Data);
        Assert.Equal(["1"], second.Data);
    }

    [Fact]
    public async Task Acknowledged_batches_are_not_sent_again()
    {
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat", "1");
        var first = await h.PollAsync(clientId);
        await h.PublishAsync(publisher, "/chat", "2");
        var second = await h.PollAsync(clientId, $$""","ext":{"ack":{{AckOf(first)}}}""");
        var third = await h.PollAsync(clientId, $$""","ext":{"ack":{{AckOf(second)}}}""");

        Assert.Equal(["1"], first.Data);
        Assert.Equal(["2"], second.Data);
        Assert.Empty(third.Deliveries);
    }

    [Fact]
    public async Task A_connect_that_acknowledges_everything_is_held()
    {
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");
        var publisher = await h.HandshakeAsync();
        await h.PublishAsync(publisher, "/chat", "1");
        var first = await h.PollAsync(clientId);

        var connect = await h.ConnectAsync(clientId, $$""","ext":{"ack":{{AckOf(first)}}}""");

        Assert.Equal(["1"], first.Data);
        Assert.True(connect.IsHeld);
    }

    [Fact]
    public async Task Acknowledging_frees_room_in_the_queue()
    {
        using var h = new BayeuxHarness(o => o.MaxQueuedBytes = 200);
        var clientId = await AckSubscriberAsync(h, "/chat");
        var payload = System.Text.Json.JsonSerializer.SerializeToElement(new string('x', 60));
        long ack = 0;

        for (var i = 0; i < 5; i++)
        {
            h.Server.Publish("/chat", payload);
            h.Server.Publish("/chat", payload);
            var result = await h.PollAsync(clientId, $$""","ext":{"ack":{{ack}}}""");
            Assert.Equal(2, result.Deliveries.Count);

            // Only the next connect acknowledges them; until then they hold their room.
            var acked = await h.PollAsync(clientId, $$""","ext":{"ack":{{AckOf(result)}}}""");
            Assert.Empty(acked.Deliveries);
            ack = AckOf(acked);
        }

        Assert.Equal(1, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_connect_that_leaves_a_batch_unacknowledged_is_answered_at_once_with_it()
    {
        using var h = new BayeuxHarness();
        var clientId = await AckSubscriberAsync(h, "/chat");
        var publisher = await h.HandshakeAsync();
        await h.PublishAsync(publisher, "/chat", "1");
        _ = await h.PollAsync(clientId);

        var result = await (await h.ConnectAsync(clientId)).ResultAsync();

        Assert.Equal(ConnectRelease.Immediate, result.Reason);
        Assert.Equal(["1"], result.Data);
    }

    [Fact]
    public async Task Without_acks_a_delivery_is_sent_once()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/chat");
        var publisher = await h.HandshakeAsync();

        await h.PublishAsync(publisher, "/chat", "1");
        var first = await h.PollAsync(clientId);
        var second = await h.PollAsync(clientId);

        Assert.Equal(["1"], first.Data);
        Assert.Empty(second.Deliveries);
        Assert.False(first.SuccessfulReply.TryGetProperty("ext", out _));
    }
}
