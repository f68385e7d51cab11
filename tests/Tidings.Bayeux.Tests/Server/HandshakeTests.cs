using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class HandshakeTests
{
    [Fact]
    public async Task A_handshake_returns_a_client_id_version_connection_types_and_advice()
    {
        using var h = new BayeuxHarness(o => o.ConnectTimeout = TimeSpan.FromSeconds(45));

        var reply = await h.RequestAsync(
            """{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling","websocket"],"id":"h1"}""");

        ReplyAssert.Succeeded(reply);
        Assert.Equal("/meta/handshake", reply.GetProperty("channel").GetString());
        Assert.Equal("h1", reply.GetProperty("id").GetString());
        Assert.Equal("1.0", reply.GetProperty("version").GetString());
        Assert.Equal(BayeuxServer.ConnectionTypes, reply.GetProperty("supportedConnectionTypes").EnumerateArray().Select(t => t.GetString()));
        var advice = reply.GetProperty("advice");
        Assert.Equal("retry", advice.GetProperty("reconnect").GetString());
        Assert.Equal(45_000, advice.GetProperty("timeout").GetInt64());
        Assert.Equal(0, advice.GetProperty("interval").GetInt64());
        var clientId = reply.GetProperty("clientId").GetString()!;
        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.Equal(clientId, session.Id);
        Assert.Equal(1, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_handshake_without_a_version_fails_with_402_and_opens_no_session()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","supportedConnectionTypes":["long-polling"]}""");

        ReplyAssert.FailedWith(402, reply);
        Assert.False(reply.TryGetProperty("clientId", out _));
        Assert.Equal(0, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_handshake_for_version_2_fails_with_300()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","version":"2.0","supportedConnectionTypes":["long-polling"]}""");

        ReplyAssert.FailedWith(300, reply);
        Assert.Equal(0, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_handshake_without_supported_connection_types_fails_with_402()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0"}""");

        ReplyAssert.FailedWith(402, reply);
    }

    [Fact]
    public async Task A_handshake_offering_only_unsupported_connection_types_fails_with_301()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["iframe","flash"]}""");

        ReplyAssert.FailedWith(301, reply);
        Assert.Contains("iframe", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, h.Server.SessionCount);
    }

    [Fact]
    public async Task The_ack_extension_is_granted_when_the_client_asks_and_the_server_allows_it()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync(
            """{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}""");

        Assert.True(reply.GetProperty("ext").GetProperty("ack").GetBoolean());
        Assert.True(h.Server.TryGetSession(reply.GetProperty("clientId").GetString()!, out var session));
        Assert.True(session.AckEnabled);
    }

    [Fact]
    public async Task The_ack_extension_is_not_granted_when_the_option_turns_it_off()
    {
        using var h = new BayeuxHarness(o => o.EnableAckExtension = false);

        var reply = await h.RequestAsync(
            """{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}""");

        ReplyAssert.Succeeded(reply);
        Assert.False(reply.TryGetProperty("ext", out _));
        Assert.True(h.Server.TryGetSession(reply.GetProperty("clientId").GetString()!, out var session));
        Assert.False(session.AckEnabled);
    }

    [Fact]
    public async Task The_ack_extension_is_off_when_the_client_does_not_ask()
    {
        using var h = new BayeuxHarness();

        var clientId = await h.HandshakeAsync(ack: false);

        Assert.True(h.Server.TryGetSession(clientId, out var session));
        Assert.False(session.AckEnabled);
    }

    [Fact]
    public async Task Client_ids_are_26_base32_characters_and_never_repeat()
    {
        // 2,000 live sessions from one test address: past the per-address cap, which has its own test.
        using var h = new BayeuxHarness(o => o.MaxSessionsPerAddress = int.MaxValue);
        var ids = new HashSet<string>(StringComparer.Ordinal);

        for (var i = 0; i < 2000; i++)
        {
            ids.Add(await h.HandshakeAsync());
        }

        Assert.Equal(2000, ids.Count);
        Assert.All(ids, id =>
        {
            Assert.Equal(26, id.Length);
            Assert.All(id, c => Assert.Contains(c, "abcdefghijklmnopqrstuvwxyz234567"));
        });

        // 128 random bits: every leading character (5 random bits) should turn up among 2000 ids.
        Assert.Equal(32, ids.Select(id => id[0]).Distinct().Count());
    }

    [Fact]
    public async Task Handshakes_beyond_the_session_limit_are_refused()
    {
        using var h = new BayeuxHarness(o => o.MaxSessions = 2);
        await h.HandshakeAsync();
        await h.HandshakeAsync();

        var reply = await h.RequestAsync("""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}""");

        ReplyAssert.FailedWith(503, reply);
        Assert.Contains("Bayeux.MaxSessions", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_message_without_a_channel_fails_with_402()
    {
        using var h = new BayeuxHarness();

        var reply = await h.RequestAsync("""{"id":"x","clientId":"abc"}""");

        ReplyAssert.FailedWith(402, reply);
        Assert.Equal("x", reply.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_message_with_a_parse_error_is_answered_with_it_and_its_neighbours_are_handled()
    {
        using var h = new BayeuxHarness();

        var outcome = await h.SendAsync(
            """[{"channel":42,"id":"bad"},{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"id":"good"}]""");

        var replies = outcome.Replies.Select(BayeuxHarness.ToJson).ToList();
        Assert.Equal(2, replies.Count);
        ReplyAssert.FailedWith(400, replies[0]);
        Assert.Equal("bad", replies[0].GetProperty("id").GetString());
        ReplyAssert.Succeeded(replies[1]);
        Assert.Equal("good", replies[1].GetProperty("id").GetString());
    }
}
