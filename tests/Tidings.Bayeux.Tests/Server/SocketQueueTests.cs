using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

/// <summary>What a WebSocket holds for its client: deliveries not yet on the network, and where they go when it is replaced or breaks.</summary>
public sealed class SocketQueueTests
{
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
}
