using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Tidings.Bayeux.Server;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.SecuredApp;

namespace Tidings.Tests.Http;

/// <summary>
/// The defects an outside probe found in <c>/bayeux</c> (issue 16), each seen as a client sees it, on a real server:
/// response framing, hostile text, duplicate deliveries after a re-handshake on one socket, CORS.
/// </summary>
public sealed class BayeuxHardeningTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(declare: t =>
    {
        Declare(t);
        t.Bayeux.AddExtension(new PoisonedReplyExtension());
    }, map: MapSignIn);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    // Defect 1: the connect reply (its id echoed) could not be serialized after "[" and the waiting delivery were
    // written; Kestrel answered 500 and sent those bytes after it, as the start of the next response on the connection.
    [Theory]
    [InlineData("\"id\":\"\\ud800\"")]
    [InlineData("\"id\":\"c\",\"ext\":{\"poison\":true}")] // a reply that fails to serialize, whatever the cause
    public async Task A_reply_that_cannot_be_written_never_leaves_bytes_for_the_next_response_on_the_connection(string connectTail)
    {
        var attacker = new BayeuxClient(_app.Http);
        var clientId = await attacker.HandshakeAsync();
        BayeuxClient.Succeeded(await attacker.SubscribeAsync("/x"));
        BayeuxClient.Succeeded(await attacker.PublishAsync("/x", new JsonObject { ["injected"] = 1 }));

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_app.Address.Host, _app.Address.Port);
        var stream = tcp.GetStream();
        var connect = $$"""[{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"long-polling","advice":{"timeout":0},{{connectTail}}}]""";
        var host = _app.Address.Authority;
        await SendAsync(stream, $"POST /bayeux HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(connect)}\r\n\r\n{connect}");
        var first = await RawHttp.ReadResponseAsync(stream);
        await SendAsync(stream, $"GET {Todos} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        var second = await RawHttp.ReadResponseAsync(stream);

        Assert.StartsWith("HTTP/1.1 ", first.Head, StringComparison.Ordinal);
        Assert.True(second.Head.StartsWith("HTTP/1.1 200 ", StringComparison.Ordinal), second.Head + second.Body);
        Assert.StartsWith("{\"items\":", second.Body, StringComparison.Ordinal);
    }

    // Defect 2: the write beside a hostile handshake was stored and broadcast, then the client got 500 and retried.
    [Theory]
    [InlineData("""[{"channel":"/api/todos","clientId":"CLIENT","data":{"method":"POST","body":{"title":"once"}},"id":"1"},{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"token":"\ud800"}}]""")]
    [InlineData("""[{"channel":"/api/todos","clientId":"CLIENT","data":{"method":"POST","body":{"title":"once"}},"id":"\ud800"}]""")]
    [InlineData("""[{"channel":"/api/todos","clientId":"CLIENT","data":{"method":"POST","body":{"title":"x\udc00"}},"id":"1"}]""")]
    public async Task A_batch_with_text_that_is_not_unicode_is_refused_whole_with_400_and_stores_nothing(string batch)
    {
        var client = new BayeuxClient(_app.Http);
        var clientId = await client.HandshakeAsync();
        var before = await _app.ListAsync(Todos);

        using var response = await _app.Http.PostAsync("/bayeux", TidingsApp.Json(batch.Replace("CLIENT", clientId, StringComparison.Ordinal)));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before.Seq, (await _app.ListAsync(Todos)).Seq);
    }

    [Fact]
    public async Task Invalid_utf8_in_a_bayeux_body_is_refused_with_400()
    {
        var client = new BayeuxClient(_app.Http);
        var clientId = await client.HandshakeAsync();
        var before = await _app.ListAsync(Todos);
        var head = $$"""[{"channel":"/api/todos","clientId":"{{clientId}}","data":{"method":"POST","body":{"title":"a""";
        const string tail = "\"}}}]";
        byte[] json = [.. Encoding.UTF8.GetBytes(head), 0xFF, .. Encoding.UTF8.GetBytes(tail)];
        var form = Encoding.ASCII.GetBytes($"message={Uri.EscapeDataString(head)}%FF{Uri.EscapeDataString(tail)}");

        foreach (var (body, type) in new[] { (json, "application/json"), (form, "application/x-www-form-urlencoded") })
        {
            using var content = new ByteArrayContent(body);
            content.Headers.TryAddWithoutValidation("Content-Type", type);
            using var response = await _app.Http.PostAsync("/bayeux", content);

            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{type}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        Assert.Equal(before.Seq, (await _app.ListAsync(Todos)).Seq);
    }

    // Defect 4, as the probe saw it: on one socket, handshake / connect / subscribe twice, then one POST.
    [Fact]
    public async Task A_client_that_handshakes_again_on_its_socket_gets_each_event_once()
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://{_app.Address.Authority}/bayeux"), CancellationToken.None).WaitAsync(Eventually.Patience);
        var frames = new SocketFrames(socket);
        for (var round = 0; round < 2; round++)
        {
            var handshake = await frames.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}""", "/meta/handshake");
            var clientId = handshake["clientId"]!.GetValue<string>();
            await frames.SendAsync($$"""{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"websocket"}""");
            BayeuxClient.Succeeded(await frames.RequestAsync($$"""{"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":"{{Todos}}"}""", "/meta/subscribe"));
        }

        var once = await _app.CreateAsync(Todos, """{"title":"once"}""");
        var marker = await _app.CreateAsync(Todos, """{"title":"marker"}""");

        // Every subscriber gets "once" before "marker" (one publisher, in seq order): count the copies that came first.
        var copies = 0;
        while (await frames.NextDeliveryAsync(Todos) is var data && data["body"]!["id"]!.GetValue<string>() != marker["id"]!.GetValue<string>())
        {
            Assert.Equal(once["id"]!.GetValue<string>(), data["body"]!["id"]!.GetValue<string>());
            copies++;
        }

        Assert.Equal(1, copies);
    }

    [Fact]
    public async Task Cors_headers_answer_only_this_site_when_no_origins_are_allowed()
    {
        var own = $"{_app.Address.Scheme}://{_app.Address.Authority}";
        var handshake = """[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]""";

        foreach (var (origin, echoed) in new[] { ("https://evil.example", false), (own, true) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/bayeux") { Content = TidingsApp.Json(handshake) };
            request.Headers.TryAddWithoutValidation("Origin", origin);
            using var response = await _app.Http.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(echoed, response.Headers.Contains("Access-Control-Allow-Origin"));
            Assert.Equal(echoed, response.Headers.Contains("Access-Control-Allow-Credentials"));
        }
    }

    [Fact]
    public async Task A_session_signed_in_by_cookie_is_an_unknown_client_to_requests_without_that_cookie()
    {
        using var cookies = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = _app.Address };
        cookies.DefaultRequestHeaders.Add("X-Requested-With", "XMLHttpRequest"); // this site's page, as the origin check wants
        (await cookies.PostAsync("/signin/ada", null)).EnsureSuccessStatusCode();
        var ada = new BayeuxClient(cookies);
        var clientId = await ada.HandshakeAsync();

        using var bobHttp = _app.ClientFor("bob");
        foreach (var thief in new[] { new BayeuxClient(_app.Http), new BayeuxClient(bobHttp) })
        {
            BayeuxClient.FailedWith(401, await thief.RequestAsync(new JsonObject
            {
                ["channel"] = "/meta/subscribe", ["clientId"] = clientId, ["subscription"] = AdaNotes,
            }));
        }

        BayeuxClient.Succeeded(await ada.SubscribeAsync(AdaNotes));
    }

    private static Task SendAsync(NetworkStream stream, string text) => stream.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask();

    /// <summary>
    /// Makes a connect reply fail to serialize when the connect asks for it (<c>ext.poison</c>): its ext nests deeper
    /// than a JSON writer goes. Stands for any bug that makes a reply unwritable.
    /// </summary>
    private sealed class PoisonedReplyExtension : IBayeuxExtension
    {
        public ValueTask OutgoingAsync(BayeuxOutgoing outgoing, CancellationToken cancellationToken)
        {
            if (outgoing.Request.TryGetExt("poison", out _) && outgoing.Reply.Channel == "/meta/connect")
            {
                var deep = new JsonObject();
                for (var i = 0; i < 1100; i++)
                {
                    deep = new JsonObject { ["x"] = deep };
                }

                outgoing.Reply.GetOrCreateExt()["deep"] = deep;
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Bayeux over one client WebSocket: a frame per message sent, every received frame split into its messages.</summary>
    private sealed class SocketFrames(ClientWebSocket socket)
    {
        private readonly Queue<JsonObject> _received = new();

        public Task SendAsync(string message) =>
            socket.SendAsync(Encoding.UTF8.GetBytes($"[{message}]"), WebSocketMessageType.Text, true, CancellationToken.None);

        public async Task<JsonObject> RequestAsync(string message, string channel)
        {
            await SendAsync(message);
            return await NextAsync(m => m["channel"]!.GetValue<string>() == channel && m.ContainsKey("successful"));
        }

        public async Task<JsonObject> NextDeliveryAsync(string channel) =>
            (await NextAsync(m => m["channel"]!.GetValue<string>() == channel && m.ContainsKey("data")))["data"]!.AsObject();

        /// <summary>The next message that matches, dropping those before it (connect replies and the like).</summary>
        private async Task<JsonObject> NextAsync(Func<JsonObject, bool> match)
        {
            using var timeout = new CancellationTokenSource(Eventually.Patience);
            while (true)
            {
                while (_received.TryDequeue(out var message))
                {
                    if (match(message))
                    {
                        return message;
                    }
                }

                var frame = new MemoryStream();
                var buffer = new byte[16 * 1024];
                WebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer, timeout.Token);
                    frame.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage);

                foreach (var message in JsonNode.Parse(frame.ToArray())!.AsArray())
                {
                    _received.Enqueue(message!.AsObject());
                }
            }
        }
    }
}

/// <summary>Reads HTTP/1.1 responses off a raw connection, so a test sees exactly the bytes a proxy would.</summary>
internal static class RawHttp
{
    public sealed record Response(string Head, string Body);

    public static async Task<Response> ReadResponseAsync(Stream stream)
    {
        using var timeout = new CancellationTokenSource(Eventually.Patience);
        var head = new List<byte>();
        while (!EndsWith(head, "\r\n\r\n"u8))
        {
            head.Add(await ReadByteAsync(stream, timeout.Token));
        }

        var headText = Encoding.Latin1.GetString([.. head]);
        var body = new MemoryStream();
        var lines = headText.Split("\r\n");
        if (lines.FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) is { } length)
        {
            await ReadExactlyAsync(stream, body, int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture), timeout.Token);
        }
        else if (lines.Any(l => l.Equals("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)))
        {
            while (true)
            {
                var sizeLine = await ReadLineAsync(stream, timeout.Token);
                var size = Convert.ToInt32(sizeLine.Split(';')[0].Trim(), 16);
                await ReadExactlyAsync(stream, body, size, timeout.Token);
                await ReadLineAsync(stream, timeout.Token);
                if (size == 0)
                {
                    break;
                }
            }
        }

        return new Response(headText, Encoding.UTF8.GetString(body.ToArray()));
    }

    private static bool EndsWith(List<byte> bytes, ReadOnlySpan<byte> tail) =>
        bytes.Count >= tail.Length && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)[^tail.Length..].SequenceEqual(tail);

    private static async Task<byte> ReadByteAsync(Stream stream, CancellationToken cancellationToken)
    {
        var one = new byte[1];
        if (await stream.ReadAsync(one, cancellationToken) == 0)
        {
            throw new EndOfStreamException("the server closed the connection");
        }

        return one[0];
    }

    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        while (!EndsWith(line, "\r\n"u8))
        {
            line.Add(await ReadByteAsync(stream, cancellationToken));
        }

        return Encoding.Latin1.GetString([.. line])[..^2];
    }

    private static async Task ReadExactlyAsync(Stream stream, MemoryStream into, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, cancellationToken);
        into.Write(buffer);
    }
}
