using System.Text.Json;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Tests.Support;

namespace Tidings.Bayeux.Tests.Server;

public sealed class ConnectTests
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    private static BayeuxHarness NewHarness() => new(o => o.ConnectTimeout = ConnectTimeout);

    [Fact]
    public async Task A_connect_from_an_unknown_client_fails_with_401_and_advice_to_handshake()
    {
        using var h = NewHarness();

        var outcome = await h.SendAsync("""{"channel":"/meta/connect","clientId":"nobody","connectionType":"long-polling","id":"1"}""");

        Assert.Null(outcome.Connect);
        var reply = BayeuxHarness.ToJson(Assert.Single(outcome.Replies));
        ReplyAssert.FailedWith(401, reply);
        Assert.Equal("1", reply.GetProperty("id").GetString());
        Assert.Equal("handshake", reply.GetProperty("advice").GetProperty("reconnect").GetString());
    }

    [Fact]
    public async Task A_connect_without_a_client_id_fails_with_402()
    {
        using var h = NewHarness();

        var reply = await h.RequestAsync("""{"channel":"/meta/connect","connectionType":"long-polling"}""");

        ReplyAssert.FailedWith(402, reply);
        Assert.Contains("clientId", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connect_without_a_connection_type_fails_with_402()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var reply = await h.RequestAsync($$"""{"channel":"/meta/connect","clientId":"{{clientId}}"}""");

        ReplyAssert.FailedWith(402, reply);
        Assert.Contains("connectionType", reply.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connect_over_an_unknown_connection_type_fails_with_301()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var reply = await h.RequestAsync($$"""{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"flash"}""");

        ReplyAssert.FailedWith(301, reply);
    }

    [Fact]
    public async Task A_connect_is_held_until_the_connect_timeout_and_then_answered_successfully()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var connect = await h.ConnectAsync(clientId);
        h.Time.Advance(ConnectTimeout - TimeSpan.FromMilliseconds(1));
        Assert.True(connect.IsHeld);

        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.Timeout, result.Reason);
        var reply = result.SuccessfulReply;
        Assert.Equal("/meta/connect", reply.GetProperty("channel").GetString());
        Assert.Equal("c1", reply.GetProperty("id").GetString());
        Assert.Equal(clientId, reply.GetProperty("clientId").GetString());
        Assert.Equal("retry", reply.GetProperty("advice").GetProperty("reconnect").GetString());
        Assert.Empty(result.Deliveries);
    }

    [Fact]
    public async Task Connect_is_released_when_a_message_arrives_and_carries_it()
    {
        using var h = NewHarness();
        var subscriber = await h.SubscriberAsync("/chat");
        var publisher = await h.HandshakeAsync();

        var connect = await h.ConnectAsync(subscriber);
        Assert.True(connect.IsHeld);
        ReplyAssert.Succeeded(await h.PublishAsync(publisher, "/chat", """{"text":"hi"}"""));
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.Delivery, result.Reason);
        Assert.Equal(["""{"channel":"/chat","data":{"text":"hi"}}"""], result.Deliveries);
        _ = result.SuccessfulReply;
    }

    [Fact]
    public async Task A_connect_asking_for_timeout_zero_is_answered_at_once()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var connect = await h.ConnectAsync(clientId, ""","advice":{"timeout":0}""");
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.Immediate, result.Reason);
        _ = result.SuccessfulReply;
    }

    [Fact]
    public async Task A_connect_asking_for_a_shorter_timeout_is_held_only_that_long()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var connect = await h.ConnectAsync(clientId, ""","advice":{"timeout":5000}""");
        h.Time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.True(connect.IsHeld);
        h.Time.Advance(TimeSpan.FromSeconds(0.1));

        Assert.Equal(ConnectRelease.Timeout, (await connect.ResultAsync()).Reason);
    }

    [Fact]
    public async Task A_connect_asking_for_a_longer_timeout_is_held_no_longer_than_the_server_allows()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var connect = await h.ConnectAsync(clientId, ""","advice":{"timeout":3600000}""");
        h.Time.Advance(ConnectTimeout);

        Assert.Equal(ConnectRelease.Timeout, (await connect.ResultAsync()).Reason);
    }

    [Fact]
    public async Task A_connect_batched_with_another_message_is_answered_at_once()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var outcome = await h.SendAsync($$"""
            [{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"long-polling","id":"c"},
             {"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":"/chat","id":"s"}]
            """);

        var subscribeReply = BayeuxHarness.ToJson(Assert.Single(outcome.Replies));
        Assert.Equal("s", subscribeReply.GetProperty("id").GetString());
        var result = await h.Start(outcome).ResultAsync();
        Assert.Equal(ConnectRelease.Immediate, result.Reason);
        Assert.Equal("c", result.SuccessfulReply.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_connect_finds_deliveries_already_waiting_and_is_answered_at_once()
    {
        using var h = NewHarness();
        var subscriber = await h.SubscriberAsync("/chat");
        h.Server.Publish("/chat", JsonSerializer.SerializeToElement(1));

        var result = await (await h.ConnectAsync(subscriber)).ResultAsync();

        Assert.Equal(ConnectRelease.Immediate, result.Reason);
        Assert.Equal(["""{"channel":"/chat","data":1}"""], result.Deliveries);
    }

    [Fact]
    public async Task A_newer_connect_supersedes_the_older_which_still_succeeds()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();

        var older = await h.ConnectAsync(clientId);
        var newer = await h.ConnectAsync(clientId);

        var olderResult = await older.ResultAsync();
        Assert.Equal(ConnectRelease.Superseded, olderResult.Reason);
        _ = olderResult.SuccessfulReply;
        Assert.True(newer.IsHeld);

        h.Time.Advance(ConnectTimeout);
        Assert.Equal(ConnectRelease.Timeout, (await newer.ResultAsync()).Reason);
    }

    [Fact]
    public async Task A_superseded_connect_leaves_waiting_deliveries_for_the_newer_connect()
    {
        using var h = NewHarness();
        var clientId = await h.SubscriberAsync("/chat");
        var older = await h.ConnectAsync(clientId);

        // The delivery lands after the newer connect took over but, possibly, before the older one is answered.
        var newer = await h.ConnectAsync(clientId);
        h.Server.Publish("/chat", System.Text.Json.JsonSerializer.SerializeToElement(1));

        var olderResult = await older.ResultAsync();
        var newerResult = await newer.ResultAsync();
        Assert.Equal(ConnectRelease.Superseded, olderResult.Reason);
        Assert.Empty(olderResult.Deliveries);
        Assert.Equal(["""{"channel":"/chat","data":1}"""], newerResult.Deliveries);
    }

    [Fact]
    public async Task A_disconnect_releases_the_held_connect_with_advice_not_to_reconnect()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();
        var connect = await h.ConnectAsync(clientId);

        var disconnect = await h.RequestAsync($$"""{"channel":"/meta/disconnect","clientId":"{{clientId}}","id":"d"}""");
        var result = await connect.ResultAsync();

        ReplyAssert.Succeeded(disconnect);
        Assert.Equal(ConnectRelease.SessionClosed, result.Reason);
        Assert.Equal("none", result.SuccessfulReply.GetProperty("advice").GetProperty("reconnect").GetString());
        Assert.Equal(0, h.Server.SessionCount);
        ReplyAssert.FailedWith(401, (await h.RequestAsync($$"""{"channel":"/meta/disconnect","clientId":"{{clientId}}"}""")));
    }

    [Fact]
    public async Task A_connect_whose_client_goes_away_completes_without_a_reply_and_keeps_its_deliveries()
    {
        using var h = NewHarness();
        var clientId = await h.SubscriberAsync("/chat");
        using var gone = new CancellationTokenSource();

        var connect = await h.ConnectAsync(clientId, aborted: gone.Token);
        await gone.CancelAsync();
        var result = await connect.ResultAsync();

        Assert.Equal(ConnectRelease.ClientGone, result.Reason);
        Assert.Null(result.Reply);
        Assert.Empty(result.Deliveries);

        h.Server.Publish("/chat", JsonSerializer.SerializeToElement("later"));
        Assert.Equal(["\"later\""], (await h.PollAsync(clientId)).Data);
    }

    [Fact]
    public async Task A_released_connect_stops_its_timer()
    {
        using var h = NewHarness();
        var clientId = await h.HandshakeAsync();
        var timersBefore = h.Time.ActiveTimerCount;

        var connect = await h.ConnectAsync(clientId);
        Assert.Equal(timersBefore + 1, h.Time.ActiveTimerCount);
        h.Server.Publish("/nobody-listens", JsonSerializer.SerializeToElement(0));
        await h.RequestAsync($$"""{"channel":"/meta/disconnect","clientId":"{{clientId}}"}""");
        await connect.ResultAsync();

        Assert.Equal(timersBefore, h.Time.ActiveTimerCount);
    }
}
