using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Changes;

/// <summary>
/// A snapshot or replay bigger than a session's outbound queue (Bayeux:MaxQueuedBytes) would close the session,
/// and the client, subscribing again with the same request, would be closed again — forever. Instead the snapshot
/// is cut to fit (and says so) and an oversized replay becomes a RESET; the session lives on.
/// </summary>
public sealed class QueueBudgetTests : IAsyncLifetime
{
    private const int Records = 30;
    private static readonly string LongTitle = new('x', 400);
    private TidingsApp _app = null!;

    // 8 KiB of queue: a snapshot or replay may take half, about 8 of these ~450-byte records.
    public async Task InitializeAsync()
    {
        _app = await TidingsApp.StartAsync(new Dictionary<string, string?> { ["Bayeux:MaxQueuedBytes"] = "8192" });
        for (var i = 0; i < Records; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"{{LongTitle}}","order":{{i}}}""");
        }
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task A_snapshot_larger_than_the_queue_allows_is_cut_to_fit_and_marked_truncated_and_the_session_goes_on()
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));

        var snapshot = (await client.NextAsync()).Data;
        Assert.Equal("SNAPSHOT", snapshot["method"]!.GetValue<string>());
        Assert.True(snapshot["truncated"]!.GetValue<bool>());
        var items = snapshot["items"]!.AsArray().Count;
        Assert.InRange(items, 1, Records - 1);
        Assert.True(snapshot.ToJsonString().Length <= 4096 + 200, "the snapshot stays within half the queue");
        Assert.Equal(Records, snapshot["seq"]!.GetValue<long>());

        await _app.CreateAsync(Todos, """{"title":"after"}""");
        var live = (await client.NextAsync()).Data;
        Assert.Equal("POST", live["method"]!.GetValue<string>());
        Assert.Equal(Records + 1, live["seq"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_replay_larger_than_the_queue_allows_becomes_a_reset_and_a_small_one_is_replayed()
    {
        var epoch = (await ReadJsonAsync(await _app.Http.GetAsync(Todos)))["epoch"]!.GetValue<string>();

        var far = new BayeuxClient(_app.Http);
        await far.HandshakeAsync();
        BayeuxClient.Succeeded(await far.SubscribeAsync(Todos, new JsonObject { ["since"] = 0, ["epoch"] = epoch }));
        var reset = (await far.NextAsync()).Data;
        Assert.Equal("RESET", reset["method"]!.GetValue<string>());
        Assert.Equal(Records, reset["seq"]!.GetValue<long>());

        var near = new BayeuxClient(_app.Http);
        await near.HandshakeAsync();
        BayeuxClient.Succeeded(await near.SubscribeAsync(Todos, new JsonObject { ["since"] = Records - 2, ["epoch"] = epoch }));
        var replayed = await near.NextAsync(2);
        Assert.Equal([Records - 1L, Records], replayed.Select(r => r.Data["seq"]!.GetValue<long>()));

        await _app.CreateAsync(Todos, """{"title":"after"}""");
        Assert.Equal(Records + 1, (await far.NextAsync()).Data["seq"]!.GetValue<long>());
        Assert.Equal(Records + 1, (await near.NextAsync()).Data["seq"]!.GetValue<long>());
    }
}
