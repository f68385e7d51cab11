using System.Text.Json.Nodes;
using Tidings.Client.Bayeux;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>Garbled frames, unknown methods and oversized messages from the server are reported and dropped; the client goes on.</summary>
public sealed class BadInputTests
{
    [Fact(Timeout = 60_000)]
    public async Task Garbled_unknown_and_oversized_frames_are_reported_and_the_session_survives()
    {
        await using var server = await HostileServer.StartAsync();
        server.AfterSubscribe["/news"] =
        [
            "{ this is not json",
            """[{"no": "channel"}]""",
            """[{"channel": "/meta/bogus", "data": 1}]""",
            """[{"channel": "/news"}]""",
            """[{"channel": "/news", "data": {"text": """ + "\"" + new string('x', 100_000) + "\"" + "}}]",
            "42",
            """[{"channel": "/news", "data": {"text": "still here"}}]""",
        ];
        await using var client = new TidingsClient(server.Address,
            new TidingsClientOptions { Transport = BayeuxTransportKind.WebSocket, MaxMessageBytes = 64 * 1024 });
        var errors = new List<string>();
        client.Bayeux.Error += (_, e) =>
        {
            lock (errors)
            {
                errors.Add(e.Message);
            }
        };
        var received = new List<BayeuxMessage>();
        await client.SubscribeAsync("/news", m =>
        {
            lock (received)
            {
                received.Add(m);
            }
        });

        await Eventually.UntilAsync(() =>
        {
            lock (received)
            {
                return received.Count > 0;
            }
        }, "the good message after the bad ones");
        Assert.Equal("still here", (string?)Assert.Single(received).Data!["text"]);
        lock (errors)
        {
            Assert.Contains(errors, e => e.Contains("not JSON", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Contains("without a channel", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Contains("/meta/bogus", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Contains("neither data nor a reply", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Contains("MaxMessageBytes", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Contains("neither a message nor an array", StringComparison.Ordinal));
        }

        Assert.Equal(1, server.Handshakes);
        Assert.Equal(BayeuxConnectionState.Connected, client.Bayeux.State);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_collection_skips_an_event_with_an_unknown_method_and_reports_it()
    {
        await using var server = await HostileServer.StartAsync();
        server.AfterSubscribe["/api/things"] =
        [
            """[{"channel": "/api/things", "data": {"method": "SNAPSHOT", "items": [{"id": "a", "version": 1}], "seq": 0, "epoch": "e1"}}]""",
        ];
        await using var client = new TidingsClient(server.Address, new TidingsClientOptions { Transport = BayeuxTransportKind.WebSocket });
        var things = await client.CollectionAsync<JsonObject>("/api/things");
        var errors = new List<TidingsException>();
        things.Error += (_, e) =>
        {
            lock (errors)
            {
                errors.Add(e);
            }
        };
        await server.PushAsync(
        [
            """[{"channel": "/api/things", "data": {"method": "FROB", "seq": 1, "body": {"id": "z"}}}]""",
            """[{"channel": "/api/things", "data": "not an event"}]""",
            """[{"channel": "/api/things", "data": {"method": "POST", "body": {"id": "b", "version": 1}}}]""",
            """[{"channel": "/api/things", "data": {"method": "POST", "seq": 2, "body": {"id": "b", "version": 1}}}]""",
        ]);

        await Eventually.UntilAsync(() => things.Seq == 2 && things.Items.Count == 2, "the event after the unknown one");
        Assert.Equal(["a", "b"], things.Items.Select(i => (string)i["id"]!));
        await Eventually.UntilAsync(() =>
        {
            lock (errors)
            {
                return errors.Count == 3;
            }
        }, "three reports");
        lock (errors)
        {
            Assert.Contains(errors, e => e.Message.Contains("unknown method 'FROB'", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Message.Contains("not an object", StringComparison.Ordinal));
            Assert.Contains(errors, e => e.Message.Contains("without seq", StringComparison.Ordinal));
        }
    }
}
