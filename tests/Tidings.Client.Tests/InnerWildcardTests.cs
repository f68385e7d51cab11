using System.Net;
using System.Text.Json.Nodes;
using Tidings.Client.Bayeux;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>An inner wildcard (<c>/api/flows/*/messages</c>) on the Tidings server runs its handler once per event, with the concrete channel.</summary>
public sealed class InnerWildcardTests : IAsyncLifetime
{
    private DemoServer _server = null!;

    public async Task InitializeAsync() => _server = await DemoServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact(Timeout = 60_000)]
    public async Task Each_of_overlapping_subscriptions_runs_its_handler_once_per_event_with_the_concrete_channel()
    {
        var ada = await _server.SignInAsync("ada");
        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Token = ada });
        var tag = Guid.NewGuid().ToString("N")[..8];
        var first = $"/api/flows/a{tag}/messages";
        var second = $"/api/flows/b{tag}/messages";
        var inner = new Recorded();
        var trailing = new Recorded();
        var exact = new Recorded();
        await client.SubscribeAsync("/api/flows/*/messages", inner.Add);
        await client.SubscribeAsync("/api/flows/**", trailing.Add);
        await client.SubscribeAsync(first, exact.Add);

        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, first, new JsonObject { ["content"] = "one" }, ada)).Status);
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, second, new JsonObject { ["content"] = "two" }, ada)).Status);
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "not a message" }, ada)).Status);
        // A marker after them: once it is in, everything before it has been dispatched (one dispatch loop, in order).
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, $"/api/flows/z{tag}/messages", new JsonObject { ["content"] = "marker" }, ada)).Status);
        await Eventually.UntilAsync(() => inner.Count == 3 && trailing.Count == 3, "the marker on both patterns");

        Assert.Equal([(first, "one"), (second, "two"), ($"/api/flows/z{tag}/messages", "marker")], inner.Snapshot());
        Assert.Equal(inner.Snapshot(), trailing.Snapshot());
        Assert.Equal([(first, "one")], exact.Snapshot());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_refused_inner_wildcard_says_why()
    {
        // Signed out, the flows' wildcard is accepted (per-event authorization filters it) — but an over-budget one is not.
        await using var client = new TidingsClient(_server.Address);
        for (var i = 0; i < 32; i++)
        {
            await client.SubscribeAsync($"/z/*/p{i}", _ => { });
        }

        var refused = await Assert.ThrowsAsync<TidingsException>(() => client.SubscribeAsync("/z/*/one-too-many", _ => { }));
        Assert.Equal(429, refused.Status);
        Assert.Contains("MaxInnerWildcardsPerSession", refused.Message, StringComparison.Ordinal);
    }

    private sealed class Recorded
    {
        private readonly List<(string Channel, string Content)> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public void Add(BayeuxMessage message)
        {
            lock (_items)
            {
                _items.Add((message.Channel, (string?)message.Data?["body"]?["content"] ?? "?"));
            }
        }

        public List<(string Channel, string Content)> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }
    }
}
