using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

/// <summary>What a WebSocket holds for its client: deliveries not yet on the network, and where they go when it is replaced or breaks.</summary>
public sealed class SocketQueueTests
{
    // Each delivery of Payload on /q is a little under 500 bytes, so two fit in 1,000 and a third does not; the
    // limit is above the protocol replies (a handshake reply is a few hundred bytes), which share the outbox.
    private const int Limit = 1000;
    private static readonly JsonElement Payload = JsonSerializer.SerializeToElement(new string('x', 450));

    private static JsonElement Json(int n) => JsonSerializer.SerializeToElement(n);

    private static async Task<(SocketClient Client, string ClientId)> SubscribedSocketAsync(BayeuxHarness h, string channel)
    {
        var client = h.OpenSocket();
        var clientId = await client.HandshakeAsync();
        await client.SubscribeAsync(clientId, channel);
        return (client, clientId);
    }

    [Fact]
    public async Task A_plain_clients_unsent_deliveries_move_to_its_new_socket_ahead_of_newer_ones()
    {
        using var h = new BayeuxHarness();
        var (old, clientId) = await SubscribedSocketAsync(h, "/q");
        old.Socket.StallSends();
        h.Server.Publish("/q", Json(0));
        await old.Socket.NextStalledSendAsync();
        h.Server.Publish("/q", Json(1));
        h.Server.Publish("/q", Json(2));

        var replacement = h.OpenSocket();
        replacement.SendImmediateConnect(clientId);
        var (_, beforeConnectReply) = await replacement.Socket.ReadUntilAsync("/meta/connect");
        h.Server.Publish("/q", Json(3));
        var newer = await replacement.Socket.ReadAsync();
        old.Socket.ResumeSends();

        Assert.Equal(["1", "2"], SocketClient.Data(beforeConnectReply));
        Assert.Equal(["3"], SocketClient.Data([newer]));
        Assert.Equal(["0"], SocketClient.Data([await old.Socket.ReadAsync()]));
    }

    [Fact]
    public async Task A_batch_being_sent_still_counts_against_the_queue_limit()
    {
        using var h = new BayeuxHarness(o => o.MaxQueuedBytes = Limit);
        var (client, clientId) = await SubscribedSocketAsync(h, "/q");
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        client.Socket.StallSends();
        h.Server.Publish("/q", Payload);
        await client.Socket.NextStalledSendAsync();

        h.Server.Publish("/q", Payload);
        var closedAtTwo = session.IsClosed;
        h.Server.Publish("/q", Payload);
        client.Socket.ResumeSends();

        Assert.False(closedAtTwo);
        Assert.Equal(SessionCloseReason.QueueOverflow, session.CloseReason);
    }

    [Fact]
    public async Task A_batch_whose_send_fails_is_kept_with_the_rest_for_the_clients_next_connect()
    {
        using var h = new BayeuxHarness();
        var (client, clientId) = await SubscribedSocketAsync(h, "/q");
        client.Socket.StallSends();
        h.Server.Publish("/q", Json(0));
        await client.Socket.NextStalledSendAsync();
        h.Server.Publish("/q", Json(1));
        h.Server.Publish("/q", Json(2));

        client.Socket.Break();
        await client.WaitClosedAsync();

        Assert.Equal(["0", "1", "2"], (await h.PollAsync(clientId)).Data);
    }
}
