using System.Text.Json.Nodes;
using Tidings.Client.Bayeux;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>The Bayeux client speaks plain publish/subscribe with Faye's own Node server, on both transports.</summary>
public sealed class FayeInteropTests
{
    [Theory(Timeout = 60_000)]
    [InlineData(BayeuxTransportKind.WebSocket)]
    [InlineData(BayeuxTransportKind.LongPolling)]
    public async Task Publish_subscribe_wildcards_and_unsubscribe_work_against_faye(BayeuxTransportKind transport)
    {
        var (faye, address) = await FayeServer.StartAsync();
        await using var _ = faye;
        var options = new TidingsClientOptions { Transport = transport };
        await using var publisher = new TidingsClient(address, new TidingsClientOptions { Transport = transport });
        await using var subscriber = new TidingsClient(address, options);

        var exact = new List<BayeuxMessage>();
        var wildcard = new List<BayeuxMessage>();
        var other = new List<BayeuxMessage>();
        var exactSubscription = await subscriber.SubscribeAsync("/chat/a", m => Add(exact, m));
        await subscriber.SubscribeAsync("/chat/*", m => Add(wildcard, m));
        await subscriber.SubscribeAsync("/other", m => Add(other, m));

        var reply = await publisher.PublishAsync("/chat/a", new JsonObject { ["text"] = "hello" });
        Assert.True((bool?)reply["successful"]);
        await publisher.PublishAsync("/chat/b", new JsonObject { ["text"] = "to b" });
        await Eventually.UntilAsync(() => Count(exact) == 1 && Count(wildcard) == 2, "both messages");
        Assert.Equal("hello", (string?)exact[0].Data!["text"]);
        Assert.Equal("/chat/a", exact[0].Channel);
        Assert.Equal(["/chat/a", "/chat/b"], wildcard.Select(m => m.Channel));
        Assert.Equal(transport == BayeuxTransportKind.WebSocket ? "websocket" : "long-polling", subscriber.Bayeux.ConnectionType);

        // After unsubscribing, /chat/a reaches only the wildcard handler; /other marks when everything before it arrived.
        await exactSubscription.UnsubscribeAsync();
        await publisher.PublishAsync("/chat/a", new JsonObject { ["text"] = "again" });
        await publisher.PublishAsync("/other", new JsonObject { ["text"] = "marker" });
        await Eventually.UntilAsync(() => Count(other) == 1 && Count(wildcard) == 3, "the marker");
        Assert.Equal(1, Count(exact));
    }

    private static void Add(List<BayeuxMessage> list, BayeuxMessage message)
    {
        lock (list)
        {
            list.Add(message);
        }
    }

    private static int Count(List<BayeuxMessage> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }
}
