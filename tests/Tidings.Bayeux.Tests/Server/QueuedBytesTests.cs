using System.Text.Json;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

/// <summary><see cref="Bayeux.Server.BayeuxSession.QueuedBytes"/>: what a session holds for its client and has not handed to the network.</summary>
public sealed class QueuedBytesTests
{
    private static Delivery On(string channel, int n) => Delivery.Create(channel, JsonSerializer.SerializeToElement(n));

    [Fact]
    public async Task Deliveries_waiting_for_a_connect_count_until_the_connect_takes_them()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.SubscriberAsync("/q");
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        var (first, second) = (On("/q", 1), On("/q", 22));

        h.Server.Publish(first);
        h.Server.Publish(second);
        var waiting = session.QueuedBytes;
        await h.PollAsync(clientId);

        Assert.Equal(first.Size + second.Size, waiting);
        Assert.Equal(0, session.QueuedBytes);
    }

    [Fact]
    public async Task With_acks_sent_deliveries_count_until_the_client_acknowledges_them()
    {
        using var h = new BayeuxHarness();
        var clientId = await h.HandshakeAsync(ack: true);
        ReplyAssert.Succeeded(await h.SubscribeAsync(clientId, "\"/q\""));
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        var delivery = On("/q", 1);

        h.Server.Publish(delivery);
        var sent = await h.PollAsync(clientId);
        var unacknowledged = session.QueuedBytes;
        var batch = sent.SuccessfulReply.GetProperty("ext").GetProperty("ack").GetInt64();
        await h.PollAsync(clientId, $$""","ext":{"ack":{{batch}}}""");

        Assert.Equal(delivery.Size, unacknowledged);
        Assert.Equal(0, session.QueuedBytes);
    }

    [Fact]
    public async Task A_sockets_queued_and_in_flight_deliveries_count_until_the_network_takes_them()
    {
        using var h = new BayeuxHarness();
        var client = h.OpenSocket();
        var clientId = await client.HandshakeAsync();
        await client.SubscribeAsync(clientId, "/q");
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        var (first, second, third) = (On("/q", 1), On("/q", 22), On("/q", 333));

        client.Socket.StallSends();
        h.Server.Publish(first);
        await client.Socket.NextStalledSendAsync();
        var inFlight = session.QueuedBytes;
        h.Server.Publish(second);
        var inFlightAndQueued = session.QueuedBytes;

        client.Socket.ResumeSends();
        Assert.Equal(["1", "22"], SocketClient.Data([await client.Socket.ReadAsync(), await client.Socket.ReadAsync()]));
        client.Socket.StallSends();
        h.Server.Publish(third);
        // The send loop took the third only after it had finished with the first two.
        await client.Socket.NextStalledSendAsync();
        var afterTwoSent = session.QueuedBytes;
        client.Socket.ResumeSends();

        Assert.Equal(first.Size, inFlight);
        Assert.Equal(first.Size + second.Size, inFlightAndQueued);
        Assert.Equal(third.Size, afterTwoSent);
    }
}
