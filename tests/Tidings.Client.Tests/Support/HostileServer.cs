using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// A scripted Bayeux server over WebSocket on Kestrel, for what the real one never sends: it handshakes, holds
/// connects, confirms subscribes and then sends the frames the test scripted for that channel, verbatim.
/// </summary>
internal sealed class HostileServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HostileServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public int Handshakes { get; private set; }

    /// <summary>Frames sent right after a subscribe to the channel is confirmed.</summary>
    public Dictionary<string, string[]> AfterSubscribe { get; } = [];

    public static async Task<HostileServer> StartAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.UseWebSockets();
        HostileServer? server = null;
        app.Map("/bayeux", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await server!.ServeAsync(socket, context.RequestAborted);
        });
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        server = new HostileServer(app, address);
        return server;
    }

    private WebSocket? _socket;

    /// <summary>Sends frames on the latest socket.</summary>
    public async Task PushAsync(params string[] frames)
    {
        foreach (var frame in frames)
        {
            await SendAsync(_socket!, frame, CancellationToken.None);
        }
    }

    private async Task ServeAsync(WebSocket socket, CancellationToken aborted)
    {
        _socket = socket;
        var buffer = new byte[64 * 1024];
        while (socket.State == WebSocketState.Open && !aborted.IsCancellationRequested)
        {
            var result = await socket.ReceiveAsync(buffer, aborted);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }

            foreach (var node in JsonNode.Parse(buffer.AsSpan(0, result.Count))!.AsArray())
            {
                var message = node!.AsObject();
                var channel = (string)message["channel"]!;
                var reply = new JsonObject { ["channel"] = channel, ["id"] = message["id"]?.DeepClone(), ["successful"] = true };
                switch (channel)
                {
                    case "/meta/handshake":
                        Handshakes++;
                        reply["clientId"] = "hostile" + Handshakes;
                        reply["version"] = "1.0";
                        reply["supportedConnectionTypes"] = new JsonArray("websocket");
                        reply["advice"] = new JsonObject { ["reconnect"] = "retry", ["interval"] = 0, ["timeout"] = 30_000 };
                        break;
                    case "/meta/connect":
                        continue; // held for good: deliveries come on their own frames
                    case "/meta/subscribe":
                        reply["subscription"] = message["subscription"]?.DeepClone();
                        break;
                }

                await SendAsync(socket, new JsonArray(reply).ToJsonString(), aborted);
                if (channel == "/meta/subscribe" && AfterSubscribe.TryGetValue((string)message["subscription"]!, out var frames))
                {
                    foreach (var frame in frames)
                    {
                        await SendAsync(socket, frame, aborted);
                    }
                }
            }
        }
    }

    private static Task SendAsync(WebSocket socket, string text, CancellationToken aborted) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, aborted);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
