using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class SessionExpiryTests
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(1);

    private static BayeuxHarness NewHarness() => new(o =>
    {
        o.ConnectTimeout = ConnectTimeout;
        o.SessionGrace = Grace;
        o.SweepInterval = Sweep;
    });

    [Fact]
    public async Task A_session_with_no_connect_expires_after_the_connect_timeout_plus_grace()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        h.Time.Advance(ConnectTimeout + Grace);
        Assert.Equal(1, h.Server.SessionCount);

        h.Time.Advance(Sweep);
        Assert.Equal(0, h.Server.SessionCount);
        Assert.False(h.Server.TryGetSession(clientId, out _));

        var outcome = await h.SendAsync($$"""{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"long-polling"}""");
        var reply = BayeuxHarness.ToJson(Assert.Single(outcome.Replies));
        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());
    }

    [Fact]
    public async Task Sweeping_directly_closes_only_sessions_past_their_deadline()
    {
        using var h = new BayeuxHarness(o =>
        {
            o.ConnectTimeout = ConnectTimeout;
            o.SessionGrace = Grace;
            o.SweepInterval = TimeSpan.FromHours(1);
        });
        var old = await h.HandshakeAsync();
        h.Time.Advance(TimeSpan.FromSeconds(20));
        var recent = await h.HandshakeAsync();
        h.Time.Advance(TimeSpan.FromSeconds(21));

        h.Server.SweepExpiredSessions();

        Assert.False(h.Server.TryGetSession(old, out _));
        Assert.True(h.Server.TryGetSession(recent, out var session));
        Assert.False(session.IsClosed);
    }

    [Fact]
    public async Task An_expired_session_is_closed_with_reason_expired_and_its_subscriptions_dropped()
    {
        using var h = NewHarness();
        var clientId = await h.SubscriberAsync("/chat");
        Assert.True(h.Server.TryGetSession(clientId, out var session));

        h.Time.Advance(ConnectTimeout + Grace + Sweep);

        Assert.True(session.IsClosed);
        Assert.Equal(SessionCloseReason.Expired, session.CloseReason);
        Assert.Empty(session.Subscriptions);
        Assert.Equal(0, h.Server.Publish("/chat", JsonSerializer.SerializeToElement(1)));
    }

    [Fact]
    public async Task Each_connect_restarts_the_expiry_clock()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        for (var i = 0; i < 5; i++)
        {
            h.Time.Advance(ConnectTimeout);
            _ = (await h.PollAsync(clientId)).SuccessfulReply;
        }

        Assert.Equal(1, h.Server.SessionCount);
    }

    [Fact]
    public async Task A_held_connect_keeps_its_session_alive()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();
        var connect = await h.ConnectAsync(clientId);

        // The hold was armed for 30 s. Shrinking the limits now makes the session look long overdue to
        // every sweep while the connect is still held: only the held connect can keep it alive.
        h.Server.Options.ConnectTimeout = TimeSpan.FromMilliseconds(1);
        h.Server.Options.SessionGrace = TimeSpan.Zero;
        h.Time.Advance(ConnectTimeout - TimeSpan.FromSeconds(1));

        Assert.True(connect.IsHeld);
        Assert.True(h.Server.TryGetSession(clientId, out _));
    }

    [Fact]
    public async Task Expiry_counts_from_when_the_last_connect_ended_even_if_its_client_went_away()
    {
        // BayeuxOptions.SessionGrace: "A session expires when no connect arrives within ConnectTimeout plus
        // this grace after its last one ended."
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();
        using var gone = new CancellationTokenSource();
        var connect = await h.ConnectAsync(clientId, aborted: gone.Token);

        h.Time.Advance(ConnectTimeout - TimeSpan.FromSeconds(1));
        await gone.CancelAsync();
        Assert.Null((await connect.ResultAsync()).Reply);

        // The connect ended at 29 s; the session is owed until 29 + 30 + 10 = 69 s.
        h.Time.Advance(ConnectTimeout);
        Assert.True(h.Server.TryGetSession(clientId, out _), "the session expired less than ConnectTimeout + SessionGrace after its last connect ended");
    }

    [Fact]
    public async Task Deliveries_for_a_session_between_connects_arrive_in_order_on_its_next_connect()
    {
        using var h = NewHarness();
        var clientId = await h.SubscriberAsync("/chat/*");
        var publisher = await h.HandshakeAsync();

        for (var i = 0; i < 5; i++)
        {
            await h.PublishAsync(publisher, i % 2 == 0 ? "/chat/a" : "/chat/b", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        h.Time.Advance(ConnectTimeout);
        var result = await h.PollAsync(clientId);

        Assert.Equal(["0", "1", "2", "3", "4"], result.Data);
        Assert.Empty((await h.PollAsync(clientId)).Deliveries);
    }
}
