using System.Text.Json.Nodes;
using Tidings.Client.Collections;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>
/// A sorted collection (the demo's <c>/api/users/{user}/tasks</c>) in the .NET client: the view keeps the server's order
/// through moves made anywhere, a move or placed create shows at once and is settled by the server's key, a refused move
/// goes back, and a bound list that replays the collection's events (Move included) ends equal to it.
/// </summary>
public sealed class SortedCollectionTests : IAsyncLifetime
{
    private DemoServer _server = null!;
    private string _ada = null!;

    public async Task InitializeAsync()
    {
        _server = await DemoServer.StartAsync();
        _ada = await _server.SignInAsync("ada");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Tasks => "/api/users/ada/tasks";

    private async Task<List<string>> AddTasksAsync(params string[] titles)
    {
        var ids = new List<string>();
        foreach (var title in titles)
        {
            var (status, body) = await _server.SendAsync(HttpMethod.Post, Tasks, new JsonObject { ["title"] = title }, _ada);
            Assert.Equal(201, status);
            ids.Add((string)body!["id"]!);
        }

        return ids;
    }

    private async Task<List<string>> ServerOrderAsync() => [.. (await _server.ListAsync(Tasks, _ada)).Items.Select(i => (string)i!["id"]!)];

    private static List<string> Titles(LiveCollection<JsonObject> tasks) => [.. tasks.Items.Select(i => (string)i["title"]!)];

    [Theory(Timeout = 60_000)]
    [InlineData(WriteChannel.Rest)]
    [InlineData(WriteChannel.Socket)]
    public async Task Moves_from_rest_and_from_this_client_keep_the_servers_order(WriteChannel writes)
    {
        var ids = await AddTasksAsync("a", "b", "c", "d");
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Token = _ada, Writes = writes });
        var tasks = await client.CollectionAsync<JsonObject>(Tasks);
        var recorder = new Recorder(tasks);
        Assert.True(tasks.IsSorted);
        Assert.Equal(["a", "b", "c", "d"], Titles(tasks));

        // Someone else moves over REST: the MOVE event puts "d" first here too.
        var (status, _) = await _server.SendAsync(HttpMethod.Post, $"{Tasks}/{ids[3]}/move", new JsonObject { ["to"] = "start" }, _ada);
        Assert.Equal(200, status);
        await Eventually.UntilAsync(() => Titles(tasks).SequenceEqual(["d", "a", "b", "c"]), "the REST move: " + string.Join(",", Titles(tasks)));

        // This client moves: "a" after "c", then "b" to the end, then "c" before "d".
        await tasks.MoveAsync(ids[0], Placement.After(ids[2]));
        await tasks.MoveAsync(ids[1], Placement.End);
        await tasks.MoveAsync(ids[2], Placement.Before(ids[3]));
        await Eventually.UntilAsync(() => tasks.PendingIds.Count == 0 && tasks.Seq == 8, "the moves' events");
        Assert.Equal(["c", "d", "a", "b"], Titles(tasks));
        Assert.Equal(await ServerOrderAsync(), tasks.Items.Select(i => (string)i["id"]!));

        // A UI list that applied Add/Replace/Move/Remove as raised holds the same order.
        Assert.Equal(tasks.Items.Select(i => i.ToJsonString()), recorder.Mirror.Select(i => i.ToJsonString()));
        Assert.Empty(recorder.Problems);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_move_shows_at_once_and_the_servers_key_settles_it()
    {
        var ids = await AddTasksAsync("a", "b", "c");
        var handler = new GatedHandler();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var client = new TidingsClient(_server.Address,
            new TidingsClientOptions { Token = _ada, HttpMessageHandler = handler, Transport = BayeuxTransportKind.LongPolling });
        var tasks = await client.CollectionAsync<JsonObject>(Tasks);
        var recorder = new Recorder(tasks);
        // Hold the move's reply and every delivery (its echo) until the optimistic order has been checked.
        handler.Gate = async (_, _) => await release.Task;

        var moving = tasks.MoveAsync(ids[2], Placement.Start);
        Assert.Equal(["c", "a", "b"], Titles(tasks));
        Assert.Contains(ids[2], tasks.PendingIds);
        release.SetResult();

        var moved = await moving;
        await Eventually.UntilAsync(() => tasks.Seq == 4 && tasks.PendingIds.Count == 0, "the MOVE event");
        Assert.Equal(["c", "a", "b"], Titles(tasks));
        Assert.Equal((string)moved["position"]!, (string)tasks.Items[0]["position"]!);
        Assert.Equal(await ServerOrderAsync(), tasks.Items.Select(i => (string)i["id"]!));
        Assert.Equal(tasks.Items.Select(i => i.ToJsonString()), recorder.Mirror.Select(i => i.ToJsonString()));
        Assert.Empty(recorder.Problems);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_refused_move_goes_back()
    {
        var ids = await AddTasksAsync("a", "b", "c");
        var bob = await _server.SignInAsync("bob");
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Token = bob });
        var tasks = await client.CollectionAsync<JsonObject>(Tasks); // bob reads ada's tasks, but may not reorder them
        var recorder = new Recorder(tasks);
        var errors = new List<TidingsException>();
        tasks.Error += (_, e) => errors.Add(e);

        var moving = tasks.MoveAsync(ids[0], Placement.End);
        Assert.Equal(["b", "c", "a"], Titles(tasks));
        var refused = await Assert.ThrowsAsync<TidingsException>(() => moving);
        Assert.Equal(403, refused.Status);
        Assert.Equal(["a", "b", "c"], Titles(tasks));
        Assert.Equal(tasks.Items.Select(i => i.ToJsonString()), recorder.Mirror.Select(i => i.ToJsonString()));
        Assert.Empty(recorder.Problems);
        Assert.Single(errors);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(WriteChannel.Rest)]
    [InlineData(WriteChannel.Socket)]
    public async Task A_placed_create_shows_in_its_place_and_lands_there(WriteChannel writes)
    {
        var ids = await AddTasksAsync("a", "b");
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Token = _ada, Writes = writes });
        var tasks = await client.CollectionAsync<JsonObject>(Tasks);

        var creating = tasks.CreateAsync(new JsonObject { ["title"] = "between" }, Placement.After(ids[0]));
        Assert.Equal(["a", "between", "b"], Titles(tasks));
        var first = tasks.CreateAsync(new JsonObject { ["title"] = "first" }, Placement.Start);
        var last = tasks.CreateAsync(new JsonObject { ["title"] = "last" });
        Assert.Equal(["first", "a", "between", "b", "last"], Titles(tasks));
        await Task.WhenAll(creating, first, last);

        await Eventually.UntilAsync(() => tasks.Seq == 5 && tasks.PendingIds.Count == 0, "the creates' events");
        Assert.Equal(["first", "a", "between", "b", "last"], Titles(tasks));
        Assert.Equal(await ServerOrderAsync(), tasks.Items.Select(i => (string)i["id"]!));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_move_in_a_collection_that_is_not_sorted_is_refused()
    {
        await using var client = new TidingsClient(_server.Address);
        var todos = await client.CollectionAsync<JsonObject>("/api/todos");
        var todo = await todos.CreateAsync(new JsonObject { ["title"] = "x" });
        Assert.False(todos.IsSorted);

        var refused = await Assert.ThrowsAsync<TidingsException>(() => todos.MoveAsync((string)todo["id"]!, Placement.Start));
        Assert.Equal(404, refused.Status); // an unsorted collection has no move endpoint
        Assert.Single(todos.Items);
    }
}
