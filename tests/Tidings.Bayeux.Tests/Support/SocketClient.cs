using Microsoft.AspNetCore.Http;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Transports;

namespace Tidings.Bayeux.Tests.Support;

/// <summary>A Bayeux client on a <see cref="ScriptedWebSocket"/>, served by a real <see cref="WebSocketConnection"/>.</summary>
internal sealed class SocketClient
{
    public SocketClient(BayeuxServer server)
    {
        Connection = new WebSocketConnection(Socket, server, new DefaultHttpContext());
        Run = Task.Run(Connection.RunAsync);
    }

    public ScriptedWebSocket Socket { get; } = new();

    public WebSocketConnection Connection { get; }

    /// <summary>The connection's receive and send loops; completes once the session has let go of the socket.</summary>
    public Task Run { get; }

    public async Task<string> HandshakeAsync()
    {
        Socket.ClientSends("""[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]""");
        var (reply, _) = await Socket.ReadUntilAsync("/meta/handshake");
        ReplyAssert.Succeeded(reply);
        return reply.GetProperty("clientId").GetString()!;
    }

    public async Task SubscribeAsync(string clientId, string channel)
    {
        Socket.ClientSends($$"""[{"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":"{{channel}}"}]""");
        var (reply, _) = await Socket.ReadUntilAsync("/meta/subscribe");
        ReplyAssert.Succeeded(reply);
    }

    /// <summary>A connect answered at once: the session is bound to this socket once its reply arrives.</summary>
    public void SendImmediateConnect(string clientId) =>
        Socket.ClientSends($$$"""[{"channel":"/meta/connect","clientId":"{{{clientId}}}","connectionType":"websocket","advice":{"timeout":0}}]""");

    /// <summary>The data of the deliveries among <paramref name="messages"/>, as JSON text.</summary>
    public static List<string> Data(IEnumerable<System.Text.Json.JsonElement> messages) =>
        [.. messages.Where(m => m.TryGetProperty("data", out _)).Select(m => m.GetProperty("data").GetRawText())];

    public Task WaitClosedAsync() => Run.WaitAsync(BayeuxHarness.Patience);
}
