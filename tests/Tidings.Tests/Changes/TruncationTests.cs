using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Changes;

/// <summary>A list or snapshot cut at its limit says so, so a client never takes a partial state for the whole.</summary>
public sealed class TruncationTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(new Dictionary<string, string?>
    {
        ["Tidings:MaxListItems"] = "2",
        ["Tidings:MaxSnapshotItems"] = "2",
    });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task A_list_and_a_snapshot_at_their_limit_are_whole_and_past_it_are_marked_truncated()
    {
        await _app.CreateAsync(Todos, """{"title":"a"}""");
        await _app.CreateAsync(Todos, """{"title":"b"}""");

        var whole = await ListRawAsync();
        Assert.Equal(2, whole["items"]!.AsArray().Count);
        Assert.Null(whole["truncated"]);
        Assert.Null((await SnapshotAsync()).Data["truncated"]);

        await _app.CreateAsync(Todos, """{"title":"c"}""");

        var cut = await ListRawAsync();
        Assert.Equal(2, cut["items"]!.AsArray().Count);
        Assert.True(cut["truncated"]!.GetValue<bool>());
        var snapshot = await SnapshotAsync();
        Assert.Equal(2, snapshot.Data["items"]!.AsArray().Count);
        Assert.True(snapshot.Data["truncated"]!.GetValue<bool>());
        Assert.Equal(3, snapshot.Seq);
    }

    private async Task<JsonObject> ListRawAsync()
    {
        using var response = await _app.Http.GetAsync(Todos);
        return await ReadJsonAsync(response);
    }

    private async Task<Received> SnapshotAsync()
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
        return (await client.NextAsync(1))[0];
    }
}
