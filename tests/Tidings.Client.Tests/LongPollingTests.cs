using System.Text.Json.Nodes;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>With WebSockets off (or refused) the client does everything over long-polling.</summary>
public sealed class LongPollingTests
{
    [Theory(Timeout = 60_000)]
    [InlineData(WriteChannel.Rest)]
    [InlineData(WriteChannel.Socket)]
    public async Task A_long_polling_only_client_loads_writes_and_follows(WriteChannel writes)
    {
        await using var server = await DemoServer.StartAsync();
        await using var client = new TidingsClient(server.Address,
            new TidingsClientOptions { Transport = BayeuxTransportKind.LongPolling, Writes = writes });
        var todos = await client.CollectionAsync<JsonObject>("/api/todos");
        Assert.Equal("long-polling", client.Bayeux.ConnectionType);

        await todos.CreateAsync(new JsonObject { ["title"] = "mine" });
        Assert.Equal(201, (await server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "theirs" })).Status);

        await Eventually.UntilAsync(() => todos.Count == 2 && todos.Seq == 2, "both creates");
        Assert.Equal("long-polling", client.Bayeux.ConnectionType);
    }

    [Fact(Timeout = 60_000)]
    public async Task When_websocket_upgrades_are_refused_the_client_falls_back_to_long_polling()
    {
        await using var server = await DemoServer.StartAsync();
        using var handler = new NoUpgradeHandler();
        await using var client = new TidingsClient(server.Address, new TidingsClientOptions { HttpMessageHandler = handler });
        var todos = await client.CollectionAsync<JsonObject>("/api/todos");
        Assert.Equal(201, (await server.SendAsync(HttpMethod.Post, "/api/todos", new JsonObject { ["title"] = "x" })).Status);
        await Eventually.UntilAsync(() => todos.Count == 1, "the create");
        Assert.Equal("long-polling", client.Bayeux.ConnectionType);
        Assert.True(handler.Refused > 0, "a WebSocket was tried first");
    }
}

/// <summary>Answers every WebSocket upgrade 403, as some proxies do.</summary>
internal sealed class NoUpgradeHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public int Refused { get; private set; }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.Upgrade.Count > 0 || request.Headers.Contains("Sec-WebSocket-Key"))
        {
            Refused++;
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.Forbidden) { RequestMessage = request });
        }

        return base.SendAsync(request, cancellationToken);
    }
}
