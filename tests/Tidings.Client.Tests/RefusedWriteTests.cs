using System.Text.Json.Nodes;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>A write the server refuses, or that gets no answer in time, is rolled back and reported with a typed error.</summary>
public sealed class RefusedWriteTests : IAsyncLifetime
{
    private const string Todos = "/api/todos";
    private DemoServer _server = null!;

    public async Task InitializeAsync() => _server = await DemoServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory(Timeout = 60_000)]
    [InlineData(WriteChannel.Rest)]
    [InlineData(WriteChannel.Socket)]
    public async Task An_invalid_create_is_rolled_back_with_its_field_errors(WriteChannel writes)
    {
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Writes = writes });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        var recorder = new Recorder(todos);
        var reported = new List<TidingsException>();
        todos.Error += (_, e) => reported.Add(e);

        var error = await Assert.ThrowsAsync<TidingsException>(() => todos.CreateAsync(new JsonObject { ["title"] = "" }));

        Assert.Equal(422, error.Status);
        Assert.Equal("create", error.Operation);
        Assert.Contains("title", error.Errors.Keys);
        Assert.NotEmpty(error.Errors["title"]);
        Assert.Empty(todos.Items);
        Assert.Empty(todos.PendingIds);
        Assert.Equal(1, recorder.Adds(error.RecordId!));
        Assert.Equal(1, recorder.Removes(error.RecordId!));
        Assert.Same(error, Assert.Single(reported));
        Assert.Empty(recorder.Mirror);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(WriteChannel.Rest)]
    [InlineData(WriteChannel.Socket)]
    public async Task A_stale_update_is_refused_with_412_and_rolled_back(WriteChannel writes)
    {
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Writes = writes });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        var record = await todos.CreateAsync(new JsonObject { ["title"] = "v1" });
        var id = (string)record["id"]!;
        await todos.UpdateAsync(id, new JsonObject { ["title"] = "v2" });

        var error = await Assert.ThrowsAsync<TidingsException>(() =>
            todos.UpdateAsync(id, new JsonObject { ["title"] = "stale" }, expectedVersion: 1));

        Assert.Equal(412, error.Status);
        Assert.Equal("update", error.Operation);
        Assert.Equal(id, error.RecordId);
        await Eventually.UntilAsync(() => todos.TryGet(id, out var shown) && (string?)shown["title"] == "v2", "the rollback to v2");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_write_with_no_answer_times_out_with_408_and_is_rolled_back()
    {
        await using var proxy = new TcpProxy(_server.Address);
        await using var client = new TidingsClient(proxy.Address, new TidingsClientOptions { WriteTimeout = TimeSpan.FromSeconds(1) });
        var todos = await client.CollectionAsync<JsonObject>(Todos);
        proxy.Down();

        var error = await Assert.ThrowsAsync<TidingsException>(() => todos.CreateAsync(new JsonObject { ["title"] = "lost" }));

        Assert.Equal(408, error.Status);
        Assert.Contains("WriteTimeout", error.Message, StringComparison.Ordinal);
        Assert.Empty(todos.Items);
        Assert.Empty(todos.PendingIds);
        var (items, _) = await _server.ListAsync(Todos);
        Assert.Empty(items);
    }
}
