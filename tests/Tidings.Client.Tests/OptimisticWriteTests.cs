using System.Text.Json.Nodes;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>
/// A create shows at once under its client UUID and is reconciled with the server's reply and its event in whichever
/// order they come: added once, never removed, ending as the server's record.
/// </summary>
public sealed class OptimisticWriteTests : IAsyncLifetime
{
    private const string Todos = "/api/todos";
    private DemoServer _server = null!;

    public async Task InitializeAsync() => _server = await DemoServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact(Timeout = 60_000)]
    public async Task A_create_whose_reply_comes_before_its_event_is_added_once()
    {
        var handler = new GatedHandler();
        await using var client = new TidingsClient(_server.Address,
            new TidingsClientOptions { HttpMessageHandler = handler, Transport = BayeuxTransportKind.LongPolling });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        var recorder = new Recorder(todos);
        var id = Guid.NewGuid().ToString();
        var replied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var eventHeld = false;
        handler.Gate = async (request, body) =>
        {
            // Hold the Bayeux response carrying the event until the create's reply has been applied.
            if (request.RequestUri!.AbsolutePath == "/bayeux" && body.Contains(id, StringComparison.Ordinal))
            {
                eventHeld = true;
                await replied.Task;
            }
        };

        var created = await todos.CreateAsync(new JsonObject { ["id"] = id, ["title"] = "reply first" });
        Assert.Equal(1L, (long?)created["version"]);
        Assert.Single(todos.Items, i => (string?)i["id"] == id);
        replied.SetResult();

        await Eventually.UntilAsync(() => todos.Seq >= 1, "the event to be applied");
        Assert.True(eventHeld, "the event was held behind the reply");
        Assert.Equal(1, recorder.Adds(id));
        Assert.Equal(0, recorder.Removes(id));
        var (items, _) = await _server.ListAsync(Todos);
        Assert.True(JsonNode.DeepEquals(items.Single(), todos.Items.Single()));
        Assert.Empty(recorder.Problems);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_create_whose_event_comes_before_its_reply_is_added_once()
    {
        var handler = new GatedHandler();
        await using var client = new TidingsClient(_server.Address,
            new TidingsClientOptions { HttpMessageHandler = handler, Transport = BayeuxTransportKind.LongPolling });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        var recorder = new Recorder(todos);
        var id = Guid.NewGuid().ToString();
        var replyHeld = false;
        handler.Gate = async (request, _) =>
        {
            // Hold the create's reply until the collection has applied the event.
            if (request.Method == HttpMethod.Post && request.RequestUri!.AbsolutePath == Todos)
            {
                replyHeld = true;
                await Eventually.UntilAsync(() => todos.Seq >= 1, "the event before the reply");
            }
        };

        var created = await todos.CreateAsync(new JsonObject { ["id"] = id, ["title"] = "event first" });
        Assert.True(replyHeld, "the reply was held behind the event");
        Assert.Equal(id, (string?)created["id"]);
        Assert.Equal(1, recorder.Adds(id));
        Assert.Equal(0, recorder.Removes(id));
        Assert.Empty(todos.PendingIds);
        var (items, _) = await _server.ListAsync(Todos);
        Assert.True(JsonNode.DeepEquals(items.Single(), todos.Items.Single()));
        Assert.Empty(recorder.Problems);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_create_shows_at_once_before_any_answer()
    {
        var handler = new GatedHandler();
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { HttpMessageHandler = handler });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        handler.Gate = (request, _) => request.Method == HttpMethod.Post ? release.Task : Task.CompletedTask;

        var creating = todos.CreateAsync(new JsonObject { ["title"] = "at once" });
        var shown = Assert.Single(todos.Items);
        Assert.Equal("at once", (string?)shown["title"]);
        Assert.Null(shown["version"]); // not confirmed yet
        Assert.Equal([(string)shown["id"]!], todos.PendingIds);
        release.SetResult();
        var created = await creating;
        Assert.Equal((string?)shown["id"], (string?)created["id"]);
        await Eventually.UntilAsync(() => todos.Items.Count == 1 && (long?)todos.Items[0]["version"] == 1, "the confirmed record");
    }
}
