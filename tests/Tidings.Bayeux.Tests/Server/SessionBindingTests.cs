using System.Net;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

/// <summary>
/// What a session is bound to besides its id (issue 16): the socket it was handshaken on (a second handshake there
/// takes the socket over), the identity of the request that opened it, and the client address it counts against.
/// </summary>
public sealed class SessionBindingTests
{
    private const string Handshake = """{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"h"}""";

    private static HttpContext Request(string? user = null, string address = "127.0.0.1")
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(address);
        if (user is not null)
        {
            context.User = Principal(user);
        }

        return context;
    }

    private static ClaimsPrincipal Principal(string user) => new(new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], "test"));

    private static async Task<JsonElement> SendAsync(BayeuxHarness h, string json, HttpContext request)
    {
        var transport = new BayeuxTransportContext(request, "long-polling", null, CancellationToken.None);
        var outcome = await h.Server.HandleAsync(BayeuxHarness.Parse(json), transport, CancellationToken.None).AsTask().WaitAsync(BayeuxHarness.Patience);
        return BayeuxHarness.ToJson(Assert.Single(outcome.Replies));
    }

    private static async Task<string> HandshakeAsync(BayeuxHarness h, HttpContext request)
    {
        var reply = await SendAsync(h, Handshake, request);
        ReplyAssert.Succeeded(reply);
        return reply.GetProperty("clientId").GetString()!;
    }

    private static Task<JsonElement> SubscribeAsync(BayeuxHarness h, string clientId, HttpContext request) =>
        SendAsync(h, $$"""{"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":"/q","id":"s"}""", request);

    // Defect 4: Faye handshakes again on the socket it has (after a 401, a restart); the abandoned session kept
    // pushing every event into that socket beside the new one, so the client got each one twice.
    [Fact]
    public async Task A_second_handshake_on_a_socket_takes_it_over_and_the_abandoned_session_delivers_nothing_more()
    {
        using var h = new BayeuxHarness();
        var client = h.OpenSocket();
        var first = await client.HandshakeAsync();
        await client.SubscribeAsync(first, "/q");
        client.Socket.ClientSends($$"""[{"channel":"/meta/connect","clientId":"{{first}}","connectionType":"websocket"}]""");

        var second = await client.HandshakeAsync();
        client.SendImmediateConnect(second);
        await client.Socket.ReadUntilAsync("/meta/connect");
        await client.SubscribeAsync(second, "/q");
        await client.SubscribeAsync(second, "/marker");
        h.Server.Publish("/q", JsonSerializer.SerializeToElement(1));
        h.Server.Publish("/marker", JsonSerializer.SerializeToElement(2));
        var (_, before) = await client.Socket.ReadUntilAsync("/marker");

        Assert.Equal(["1"], SocketClient.Data(before));
        Assert.False(h.Server.TryGetSession(first, out _));
        Assert.True(h.Server.TryGetSession(second, out _));
        // The abandoned session's held connect is not answered with "handshake again": Faye would obey it and
        // abandon the new session too.
        Assert.DoesNotContain(before, m => m.TryGetProperty("advice", out var advice)
            && advice.TryGetProperty("reconnect", out var reconnect) && reconnect.GetString() == "handshake");
    }

    [Fact]
    public async Task A_session_opened_by_a_signed_in_request_refuses_requests_by_anyone_else_as_an_unknown_client()
    {
        using var h = new BayeuxHarness();
        var clientId = await HandshakeAsync(h, Request("ada"));

        foreach (var stranger in new[] { Request("bob"), Request() })
        {
            var refused = await SubscribeAsync(h, clientId, stranger);

            ReplyAssert.FailedWith(401, refused);
            Assert.Equal("handshake", refused.GetProperty("advice").GetProperty("reconnect").GetString());
        }

        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Empty(session.Subscriptions);
        ReplyAssert.Succeeded(await SubscribeAsync(h, clientId, Request("ada")));
    }

    [Fact]
    public async Task A_session_whose_user_came_from_its_handshake_message_refuses_requests_signed_in_as_someone_else()
    {
        // A token in ext (TokenExtension) binds the user; later requests carry no credentials, and may not carry another's.
        using var h = new BayeuxHarness(configure: null, new TokenExtension());
        var reply = await SendAsync(h, Handshake.Replace("\"id\":\"h\"", "\"id\":\"h\",\"ext\":{\"token\":\"ada\"}"), Request());
        var clientId = reply.GetProperty("clientId").GetString()!;

        ReplyAssert.FailedWith(401, await SubscribeAsync(h, clientId, Request("bob")));
        ReplyAssert.Succeeded(await SubscribeAsync(h, clientId, Request()));
        ReplyAssert.Succeeded(await SubscribeAsync(h, clientId, Request("ada")));
    }

    [Fact]
    public async Task An_anonymous_session_takes_requests_from_anyone()
    {
        using var h = new BayeuxHarness();
        var clientId = await HandshakeAsync(h, Request());

        ReplyAssert.Succeeded(await SubscribeAsync(h, clientId, Request("ada")));
        ReplyAssert.Succeeded(await SubscribeAsync(h, clientId, Request()));
    }

    [Fact]
    public async Task Handshakes_beyond_the_live_sessions_of_one_address_are_refused_with_429_until_one_ends()
    {
        using var h = new BayeuxHarness(o => o.MaxSessionsPerAddress = 2);
        var first = await HandshakeAsync(h, Request(address: "10.0.0.1"));
        await HandshakeAsync(h, Request(address: "::ffff:10.0.0.1"));

        var refused = await SendAsync(h, Handshake, Request(address: "10.0.0.1"));

        ReplyAssert.FailedWith(429, refused);
        Assert.Contains("MaxSessionsPerAddress", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, h.Server.SessionCount);
        await HandshakeAsync(h, Request(address: "10.0.0.2"));
        ReplyAssert.Succeeded(await SendAsync(h, $$"""{"channel":"/meta/disconnect","clientId":"{{first}}","id":"d"}""", Request(address: "10.0.0.1")));
        await HandshakeAsync(h, Request(address: "10.0.0.1"));
    }

    /// <summary>Binds a handshake's session to the user named in <c>ext.token</c>, as Tidings' identity extension does.</summary>
    private sealed class TokenExtension : IBayeuxExtension
    {
        public ValueTask IncomingAsync(BayeuxIncoming incoming, CancellationToken cancellationToken)
        {
            if (incoming.Message.TryGetExt("token", out var token))
            {
                incoming.User = Principal(token.GetString()!);
            }

            return ValueTask.CompletedTask;
        }
    }
}
