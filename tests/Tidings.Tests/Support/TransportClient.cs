using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Tests.Support;

/// <summary>
/// A Bayeux client on either transport: long-polling (HTTP POSTs) or WebSocket (one socket, frames of
/// message arrays). It handshakes, then sends one message at a time and returns the reply with its id.
/// </summary>
internal sealed class TransportClient : IAsyncDisposable
{
    private readonly HttpClient? _http;
    private readonly ClientWebSocket? _socket;
    private int _id;

    private TransportClient(HttpClient? http, ClientWebSocket? socket)
    {
        _http = http;
        _socket = socket;
    }

    public string? ClientId { get; private set; }

    public static async Task<TransportClient> OpenAsync(TidingsApp app, string transport, JsonObject? handshakeExt = null)
    {
        TransportClient client;
        if (transport == "websocket")
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(new Uri($"ws://{app.Address.Authority}/bayeux"), CancellationToken.None).WaitAsync(Eventually.Patience);
            client = new TransportClient(null, socket);
        }
        else
        {
            client = new TransportClient(new HttpClient { BaseAddress = app.Address, Timeout = TimeSpan.FromSeconds(30) }, null);
        }

        var handshake = new JsonObject
        {
            ["channel"] = "/meta/handshake",
            ["version"] = "1.0",
            ["supportedConnectionTypes"] = new JsonArray(transport),
        };
        if (handshakeExt is not null)
        {
            handshake["ext"] = handshakeExt;
        }

        var reply = await client.RequestAsync(handshake);
        BayeuxClient.Succeeded(reply);
        client.ClientId = reply["clientId"]!.GetValue<string>();
        return client;
    }

    public async Task<JsonObject> RequestAsync(JsonObject message)
    {
        var id = (++_id).ToString(System.Globalization.CultureInfo.InvariantCulture);
        message["id"] = id;
        if (ClientId is not null)
        {
            message["clientId"] ??= ClientId;
        }

        var text = new JsonArray(message).ToJsonString();
        if (_http is not null)
        {
            using var response = await _http.PostAsync("/bayeux", new StringContent(text, Encoding.UTF8, "application/json"));
            return Find(JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray(), id)
                ?? throw new InvalidOperationException("no reply to " + text);
        }

        await _socket!.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        using var timeout = new CancellationTokenSource(Eventually.Patience);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var frame = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await _socket.ReceiveAsync(buffer, timeout.Token);
                frame.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);

            if (Find(JsonNode.Parse(frame.ToArray())!.AsArray(), id) is { } reply)
            {
                return reply;
            }
        }
    }

    private static JsonObject? Find(JsonArray messages, string id) =>
        messages.Select(m => m!.AsObject()).FirstOrDefault(m => m["id"]?.GetValue<string>() == id && m.ContainsKey("successful"));

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        if (_socket is not null)
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token).ConfigureAwait(false);
            }

            _socket.Dispose();
        }
    }
}
