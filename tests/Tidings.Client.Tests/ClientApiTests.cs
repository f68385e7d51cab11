using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Client.Collections;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>The .NET surface: typed records, UI-thread events, IAsyncEnumerable of changes, DI, plain channels.</summary>
public sealed class ClientApiTests : IAsyncLifetime
{
    private DemoServer _server = null!;

    public async Task InitializeAsync() => _server = await DemoServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact(Timeout = 60_000)]
    public async Task Typed_records_map_through_a_source_generated_context()
    {
        var options = new TidingsClientOptions();
        options.JsonSerializerOptions.TypeInfoResolverChain.Insert(0, TestJson.Default);
        await using var client = new TidingsClient(_server.Address, options);
        var todos = await client.CollectionAsync<Todo>("/api/todos");

        var created = await todos.CreateAsync(new Todo { Title = "typed", Order = 3 });

        Assert.NotNull(created.Id);
        Assert.Equal(1, created.Version);
        Assert.False(created.Completed); // the server's default
        var updated = await todos.UpdateAsync(created.Id!, new JsonObject { ["completed"] = true });
        Assert.True(updated.Completed);
        Assert.Equal(2, updated.Version);
        await todos.DeleteAsync(created.Id!);
        Assert.Empty(todos.Items);
    }

    [Fact(Timeout = 60_000)]
    public async Task Events_are_raised_on_the_synchronization_context_the_collection_was_opened_on()
    {
        using var ui = new SingleThreadContext();
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "before" })).Status);
        await using var client = new TidingsClient(_server.Address);
        var opened = new TaskCompletionSource<LiveCollection<JsonObject>>();
        ui.Post(async _ => opened.SetResult(await client.CollectionAsync<JsonObject>("/api/todos")), null);
        var todos = await opened.Task.WaitAsync(Eventually.Patience);
        var threads = new ConcurrentBag<int>();
        var consistent = new ConcurrentBag<bool>();
        Assert.Single(todos.Items); // the snapshot is in the view when CollectionAsync returns
        todos.CollectionChanged += (_, e) =>
        {
            threads.Add(Environment.CurrentManagedThreadId);
            // Items already holds what the event announced, at the index it names.
            consistent.Add(e.Action != System.Collections.Specialized.NotifyCollectionChangedAction.Add
                || ReferenceEquals(todos.Items[e.NewStartingIndex], e.NewItems![0]));
        };

        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "ui" })).Status);

        await Eventually.UntilAsync(() => todos.Count == 2 && !threads.IsEmpty, "the add event, raised on the UI context");
        Assert.All(threads, t => Assert.Equal(ui.ThreadId, t));
        Assert.NotEmpty(threads);
        Assert.All(consistent, Assert.True);
    }

    [Fact(Timeout = 60_000)]
    public async Task Changes_stream_as_an_async_enumerable_starting_with_the_current_state()
    {
        await using var client = new TidingsClient(_server.Address);
        var todos = await client.CollectionAsync<JsonObject>("/api/todos");
        await todos.CreateAsync(new JsonObject { ["title"] = "before" });
        using var timeout = new CancellationTokenSource(Eventually.Patience);
        var changes = todos.ChangesAsync(timeout.Token).GetAsyncEnumerator(timeout.Token);

        Assert.True(await changes.MoveNextAsync());
        Assert.Equal(CollectionChangeKind.Reset, changes.Current.Kind);
        Assert.Single(changes.Current.Items!);
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "after" })).Status);
        Assert.True(await changes.MoveNextAsync());
        Assert.Equal(CollectionChangeKind.Added, changes.Current.Kind);
        Assert.Equal("after", (string?)changes.Current.Item!["title"]);
        await changes.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task AddTidingsClient_registers_one_client_and_plain_channels_work()
    {
        var services = new ServiceCollection();
        services.AddTidingsClient(_server.Address, o => o.Transport = BayeuxTransportKind.LongPolling);
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<TidingsClient>();
        Assert.Same(client, provider.GetRequiredService<TidingsClient>());

        var received = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.SubscribeAsync("/chat/lobby", m => received.TrySetResult(m.Data));
        await using var other = new TidingsClient(_server.Address);
        await other.PublishAsync("/chat/lobby", new JsonObject { ["text"] = "hi" });
        Assert.Equal("hi", (string?)(await received.Task.WaitAsync(Eventually.Patience))!["text"]);

        // The demo's /service/echo answers in the publish reply.
        var reply = await other.PublishAsync("/service/echo", new JsonObject { ["ping"] = 1 });
        Assert.Equal(1, (int?)reply["data"]?["echo"]?["ping"]);
    }
}

public sealed class Todo
{
    public string? Id { get; set; }

    public long? Version { get; set; }

    public string Title { get; set; } = "";

    public bool Completed { get; set; }

    public double? Order { get; set; }
}

[JsonSerializable(typeof(Todo))]
[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
internal sealed partial class TestJson : JsonSerializerContext;

/// <summary>A UI thread stand-in: runs posted callbacks, in order, on one dedicated thread.</summary>
internal sealed class SingleThreadContext : SynchronizationContext, IDisposable
{
    private readonly BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = [];
    private readonly Thread _thread;

    public SingleThreadContext()
    {
        _thread = new Thread(() =>
        {
            SetSynchronizationContext(this);
            foreach (var (callback, state) in _queue.GetConsumingEnumerable())
            {
                callback(state);
            }
        }) { IsBackground = true };
        _thread.Start();
    }

    public int ThreadId => _thread.ManagedThreadId;

    public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

    public void Dispose() => _queue.CompleteAdding();
}
