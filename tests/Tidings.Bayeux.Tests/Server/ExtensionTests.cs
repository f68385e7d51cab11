using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class ExtensionTests
{
    private sealed class Extension(
        Action<BayeuxIncoming>? incoming = null,
        Action<BayeuxOutgoing>? outgoing = null) : IBayeuxExtension
    {
        public ValueTask IncomingAsync(BayeuxIncoming message, CancellationToken cancellationToken)
        {
            incoming?.Invoke(message);
            return ValueTask.CompletedTask;
        }

        public ValueTask OutgoingAsync(BayeuxOutgoing message, CancellationToken cancellationToken)
        {
            outgoing?.Invoke(message);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task An_incoming_extension_can_refuse_a_publish_which_then_reaches_nobody()
    {
        var refuse = new Extension(incoming: m =>
        {
            if (m.Message.Channel == "/secret")
            {
                m.Refuse(BayeuxError.ChannelForbidden(m.Message.Channel));
            }
        });
        using var h = new BayeuxHarness(null, refuse);
        var subscriber = await h.SubscriberAsync("/secret", "/public");

        var refused = await h.PublishAsync(subscriber, "/secret", "1", id: "\"r\"");
        var allowed = await h.PublishAsync(subscriber, "/public", "2");

        ReplyAssert.FailedWith(403, refused);
        Assert.Equal("r", refused.GetProperty("id").GetString());
        ReplyAssert.Succeeded(allowed);
        Assert.Equal(["2"], (await h.PollAsync(subscriber)).Data);
    }

    [Fact]
    public async Task An_incoming_extension_that_refuses_a_handshake_opens_no_session()
    {
        var auth = new Extension(incoming: m =>
        {
            if (m.Message.Channel == ChannelName.Handshake && !m.Message.TryGetExt("token", out _))
            {
                m.Refuse("401::Authentication required");
            }
        });
        using var h = new BayeuxHarness(null, auth);

        var refused = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}""");
        var accepted = await h.RequestAsync(
            """{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"token":"t"}}""");

        ReplyAssert.FailedWith(401, refused);
        ReplyAssert.Succeeded(accepted);
        Assert.Equal(1, h.Server.SessionCount);
    }

    [Fact]
    public async Task An_outgoing_extension_can_add_ext_fields_to_every_reply_including_connects()
    {
        var stamp = new Extension(outgoing: m => m.Reply.GetOrCreateExt()["stamp"] = m.Reply.Channel);
        using var h = new BayeuxHarness(null, stamp);

        var handshake = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}""");
        var clientId = handshake.GetProperty("clientId").GetString()!;
        var subscribe = await h.SubscribeAsync(clientId, "\"/chat\"");
        var connect = await h.PollAsync(clientId);

        Assert.Equal("/meta/handshake", handshake.GetProperty("ext").GetProperty("stamp").GetString());
        Assert.Equal("/meta/subscribe", subscribe.GetProperty("ext").GetProperty("stamp").GetString());
        Assert.Equal("/meta/connect", connect.SuccessfulReply.GetProperty("ext").GetProperty("stamp").GetString());
    }

    [Fact]
    public async Task Extensions_see_the_session_and_the_new_session_on_a_handshake_reply()
    {
        var incomingSessions = new List<(string? Channel, string? SessionId)>();
        var outgoingSessions = new List<(string Channel, string? SessionId)>();
        var watcher = new Extension(
            incoming: m => incomingSessions.Add((m.Message.Channel, m.Session?.Id)),
            outgoing: m => outgoingSessions.Add((m.Reply.Channel, m.Session?.Id)));
        using var h = new BayeuxHarness(null, watcher);

        var clientId = await h.HandshakeAsync();
        await h.PublishAsync(clientId, "/chat", "1");

        Assert.Equal([(ChannelName.Handshake, null), ("/chat", clientId)], incomingSessions);
        Assert.Equal([(ChannelName.Handshake, clientId), ("/chat", clientId)], outgoingSessions);
    }

    [Fact]
    public async Task Session_items_carry_extension_state_from_handshake_to_later_messages()
    {
        var identity = new Extension(
            outgoing: m =>
            {
                if (m.Reply.Channel == ChannelName.Handshake && m.Session is { } s)
                {
                    s.GetOrAdd("user", () => new[] { "ada" });
                }
            },
            incoming: m =>
            {
                if (m.Message.Channel == "/chat" && m.Session?.GetOrAdd("user", () => new[] { "nobody" })[0] != "ada")
                {
                    m.Refuse("403::/chat:no user");
                }
            });
        using var h = new BayeuxHarness(null, identity);
        var clientId = await h.HandshakeAsync();

        ReplyAssert.Succeeded(await h.PublishAsync(clientId, "/chat", "1"));
    }

    [Fact]
    public async Task Extensions_run_in_registration_order_and_the_first_refusal_wins()
    {
        var order = new List<string>();
        var first = new Extension(incoming: m =>
        {
            order.Add("first");
            m.Refuse("403::first");
        });
        var second = new Extension(incoming: _ => order.Add("second"));
        using var h = new BayeuxHarness(null, first, second);

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}""");

        Assert.Equal(["first"], order);
        Assert.Equal("403::first", reply.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_outgoing_extension_can_change_the_advice()
    {
        var advise = new Extension(outgoing: m =>
        {
            if (m.Reply.Channel == ChannelName.Connect)
            {
                m.Reply.GetOrCreateAdvice()["interval"] = 2500;
            }
        });
        using var h = new BayeuxHarness(null, advise);
        var clientId = await h.HandshakeAsync();

        var reply = (await h.PollAsync(clientId)).SuccessfulReply;

        Assert.Equal(2500, reply.GetProperty("advice").GetProperty("interval").GetInt32());
        Assert.Equal("retry", reply.GetProperty("advice").GetProperty("reconnect").GetString());
    }

    [Fact]
    public async Task An_incoming_extension_decides_whom_a_new_session_belongs_to()
    {
        var ada = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
            [new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, "ada")], "test"));
        var identity = new Extension(incoming: m =>
        {
            if (m.Message.Channel == ChannelName.Handshake)
            {
                m.User = ada;
            }
        });
        using var h = new BayeuxHarness(null, identity);
        var clientId = await h.HandshakeAsync();

        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal("ada", session.User?.Identity?.Name);
    }
}
