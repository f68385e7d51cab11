using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Bayeux.Server;
using Tidings.Changes;
using Tidings.Storage;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Changes;

/// <summary>
/// The change feed's contract, the same for every store: each subscriber gets every change once, in seq order,
/// with no gap — whatever the interleaving of writes, subscribes and a change source that runs behind the
/// commits, repeats itself or changes the order. Real SQLite, real Kestrel, a real long-polling client; the
/// source is the store's own, wrapped so the tests can hold it back and reorder it.
/// </summary>
public sealed class FeedContractTests : IAsyncLifetime
{
    private TidingsApp _app = null!;
    private UnreliableChangeSource _source = null!;

    public async Task InitializeAsync() => _app = await StartWithUnreliableSourceAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task<TidingsApp> StartWithUnreliableSourceAsync(IDictionary<string, string?>? settings = null)
    {
        var app = await TidingsApp.StartAsync(settings, tidings =>
        {
            DeclareDefaults(tidings);
            tidings.Services.AddSingleton<IChangeSource>(sp => new UnreliableChangeSource(sp.GetRequiredService<ITidingsStore>().Changes));
        });
        _source = (UnreliableChangeSource)app.Services.GetRequiredService<IChangeSource>();
        return app;
    }

    private ChangeFeed Feed => _app.Services.GetRequiredService<ChangeFeed>();

    private Task PublishedAsync(string path, long seq) =>
        Eventually.UntilAsync(() => Feed.PublishedSeq(path) >= seq, $"the feed to publish {path} up to {seq}");

    [Fact]
    public async Task A_snapshot_read_ahead_of_the_feed_goes_live_when_the_feed_catches_up_and_repeats_nothing()
    {
        _source.Hold();
        for (var i = 0; i < 3; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"t{{i}}"}""");
        }

        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        var subscribing = client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true });
        await Eventually.UntilAsync(() => _source.HeldCount == 3, "the three commits to be held");
        _source.Release();
        BayeuxClient.Succeeded(await subscribing);

        var snapshot = await client.NextAsync();
        Assert.Equal(("SNAPSHOT", 3L, 3), (snapshot.Method, snapshot.Seq, snapshot.Data["items"]!.AsArray().Count));
        await PublishedAsync(Todos, 3);
        await _app.CreateAsync(Todos, """{"title":"after"}""");
        var next = await client.NextAsync();
        Assert.Equal(("POST", 4L), (next.Method, next.Seq)); // not 1, 2 or 3 again
        await client.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task Changes_the_source_yields_late_twice_and_newest_first_reach_each_subscriber_once_in_order()
    {
        var withSnapshot = new BayeuxClient(_app.Http);
        await withSnapshot.HandshakeAsync();
        BayeuxClient.Succeeded(await withSnapshot.SubscribeAsync(MainMessages, new JsonObject { ["snapshot"] = true }));
        Assert.Equal("SNAPSHOT", (await withSnapshot.NextAsync()).Method);
        var plain = new BayeuxClient(_app.Http);
        await plain.HandshakeAsync();
        BayeuxClient.Succeeded(await plain.SubscribeAsync(MainMessages));
        var wildcard = new BayeuxClient(_app.Http);
        await wildcard.HandshakeAsync();
        BayeuxClient.Succeeded(await wildcard.SubscribeAsync("/api/flows/*/messages"));

        _source.Hold();
        for (var i = 1; i <= 5; i++)
        {
            await _app.CreateAsync(MainMessages, $$"""{"content":"m{{i}}"}""");
        }

        await Eventually.UntilAsync(() => _source.HeldCount == 5, "the five commits to be held");
        _source.Release(reversed: true, twice: true);
        await _app.CreateAsync(MainMessages, """{"content":"m6"}""");

        foreach (var client in new[] { withSnapshot, plain, wildcard })
        {
            var received = await client.NextAsync(6);
            Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L], received.Select(r => r.Seq));
            Assert.Equal(["m1", "m2", "m3", "m4", "m5", "m6"], received.Select(r => r.Body["content"]!.GetValue<string>()));
            await client.AssertNothingWaitingAsync();
        }
    }

    [Fact]
    public async Task A_catch_up_subscribe_whose_request_was_cancelled_never_becomes_live()
    {
        var client = new BayeuxClient(_app.Http);
        var clientId = await client.HandshakeAsync();
        _source.Hold();
        await _app.CreateAsync(Todos, """{"title":"one"}""");
        await _app.CreateAsync(Todos, """{"title":"two"}""");

        // The feed is behind the snapshot the subscribe reads, so the subscribe waits for it; the client gives up.
        using var giveUp = new CancellationTokenSource();
        var subscribing = client.SendAsync(new JsonObject
        {
            ["channel"] = "/meta/subscribe",
            ["subscription"] = Todos,
            ["ext"] = new JsonObject { ["snapshot"] = true },
        }, giveUp.Token);
        var bayeux = _app.Services.GetRequiredService<BayeuxServer>();
        Assert.True(bayeux.TryGetSession(clientId, out var session));
        await Eventually.UntilAsync(() => session.QueuedBytes > 0, "the snapshot to be queued");
        Assert.Equal(1, Feed.JoiningCount(Todos));
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => subscribing);
        await Eventually.UntilAsync(() => Feed.JoiningCount(Todos) == 0, "the server to see the request end");

        _source.Release();
        await PublishedAsync(Todos, 2);
        await _app.CreateAsync(Todos, """{"title":"three"}""");
        await PublishedAsync(Todos, 3);

        Assert.DoesNotContain(Todos, session.Subscriptions);
    }

    [Fact]
    public async Task Catch_ups_of_many_channels_in_one_request_share_the_sessions_queue_and_never_overflow_it()
    {
        // 64 KiB of queue; six channels each ~18 KiB behind: each replay fits half the queue on its own, all six do not.
        await _app.DisposeAsync();
        _app = await StartWithUnreliableSourceAsync(new Dictionary<string, string?> { ["Bayeux:MaxQueuedBytes"] = "65536" });
        var content = new string('x', 850);
        var channels = Enumerable.Range(0, 6).Select(i => $"/api/flows/c{i}/messages").ToList();
        foreach (var channel in channels)
        {
            for (var i = 0; i < 20; i++)
            {
                await _app.CreateAsync(channel, $$"""{"content":"{{content}}"}""");
            }
        }

        var epoch = (await _app.ListAsync(channels[0])).Epoch;
        var client = new BayeuxClient(_app.Http);
        var clientId = await client.HandshakeAsync();
        var batch = new JsonArray([.. channels.Select((channel, i) => (JsonNode)new JsonObject
        {
            ["id"] = $"s{i}",
            ["clientId"] = clientId,
            ["channel"] = "/meta/subscribe",
            ["subscription"] = channel,
            ["ext"] = new JsonObject { ["since"] = 0, ["epoch"] = epoch },
        })]);
        using var response = await _app.Http.PostAsync("/bayeux", new StringContent(batch.ToJsonString(), Encoding.UTF8, "application/json"));
        var replies = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsArray();
        Assert.All(replies, reply => BayeuxClient.Succeeded(reply!.AsObject()));

        var bayeux = _app.Services.GetRequiredService<BayeuxServer>();
        Assert.True(bayeux.TryGetSession(clientId, out var session), "the session was closed for overflowing its queue");
        Assert.InRange(session.QueuedBytes, 1, 65536);
        var received = new List<Received>();
        while (channels.Any(c => !received.Any(r => r.Channel == c && r.Seq == 20)))
        {
            received.AddRange(await client.NextAsync(1));
        }

        foreach (var channel in channels)
        {
            var mine = received.Where(r => r.Channel == channel).ToList();
            Assert.True(mine is [{ Method: "RESET", Seq: 20 }] || mine.Select(r => r.Seq).SequenceEqual(Enumerable.Range(1, 20).Select(i => (long)i)),
                $"{channel}: {string.Join(", ", mine.Select(r => $"{r.Method} {r.Seq}"))}");
        }

        Assert.Contains(received, r => r.Method == "RESET");
        Assert.Contains(received, r => r.Method == "POST");
    }
}
