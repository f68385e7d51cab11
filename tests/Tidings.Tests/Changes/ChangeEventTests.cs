using System.Net;
using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Changes;

/// <summary>Change events on Bayeux, through the real server's long-polling endpoint.</summary>
public sealed class ChangeEventTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() =>
        _app = await TidingsApp.StartAsync(new Dictionary<string, string?> { ["Tidings:Sqlite:RetainedChanges"] = "5" });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task<BayeuxClient> ClientAsync()
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        return client;
    }

    private async Task<BayeuxClient> SubscriberAsync(string channel, JsonObject? ext = null)
    {
        var client = await ClientAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(channel, ext));
        return client;
    }

    private static JsonObject Since(long since, string epoch) => new() { ["since"] = since, ["epoch"] = epoch };

    [Fact]
    public async Task Rest_writes_are_published_on_the_concrete_path_with_contiguous_seqs()
    {
        var subscriber = await SubscriberAsync(Todos);

        var created = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = created["id"]!.GetValue<string>();
        using var patched = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{id}", """{"completed":true}""");
        var patchedRecord = await ReadJsonAsync(patched);
        using var deleted = await _app.SendAsync(HttpMethod.Delete, $"{Todos}/{id}");

        var events = await subscriber.NextAsync(3);
        Assert.All(events, e => Assert.Equal(Todos, e.Channel));
        Assert.Equal(["POST", "PUT", "DELETE"], events.Select(e => e.Method));
        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Seq));
        Assert.True(JsonNode.DeepEquals(created, events[0].Body));
        Assert.True(JsonNode.DeepEquals(patchedRecord, events[1].Body));
        Assert.Equal(id, events[2].Id);
        await subscriber.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_partitions_subscriber_receives_only_that_partitions_events()
    {
        var main = await SubscriberAsync(MainMessages);

        await _app.CreateAsync(SideMessages, """{"content":"elsewhere"}""");
        var here = await _app.CreateAsync(MainMessages, """{"content":"here"}""");

        var received = await main.NextAsync();
        Assert.Equal(MainMessages, received.Channel);
        Assert.Equal(1, received.Seq);
        Assert.True(JsonNode.DeepEquals(here, received.Body));
        await main.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_rejected_write_emits_no_event()
    {
        var subscriber = await SubscriberAsync(Todos);

        using var refused = await _app.PostAsync(Todos, """{"title":""}""");
        await _app.CreateAsync(Todos, """{"title":"ok"}""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        var only = await subscriber.NextAsync();
        Assert.Equal((1L, "ok"), (only.Seq, only.Body["title"]!.GetValue<string>()));
        await subscriber.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task Subscribing_with_since_replays_exactly_the_missed_events_then_continues_live()
    {
        for (var i = 0; i < 4; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"t{{i}}"}""");
        }

        var state = await _app.ListAsync(Todos);

        var subscriber = await SubscriberAsync(Todos, Since(2, state.Epoch));
        await _app.CreateAsync(Todos, """{"title":"live"}""");

        var events = await subscriber.NextAsync(3);
        Assert.Equal([3L, 4L, 5L], events.Select(e => e.Seq));
        Assert.Equal(state.Items[2]!["id"]!.GetValue<string>(), events[0].Id);
        Assert.Equal("live", events[2].Body["title"]!.GetValue<string>());
        await subscriber.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_repeated_subscribe_to_a_held_channel_replays_nothing_so_each_event_arrives_once()
    {
        // Faye sends a subscribe again when a cut connection lost its reply; the session already holds the channel.
        for (var i = 0; i < 4; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"t{{i}}"}""");
        }

        var state = await _app.ListAsync(Todos);
        var subscriber = await SubscriberAsync(Todos, Since(2, state.Epoch));
        Assert.Equal([3L, 4L], (await subscriber.NextAsync(2)).Select(e => e.Seq));

        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(Todos, Since(2, state.Epoch)));
        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
        await _app.CreateAsync(Todos, """{"title":"live"}""");

        var live = await subscriber.NextAsync();
        Assert.Equal((5L, "POST"), (live.Seq, live.Method));
        await subscriber.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task Subscribing_with_since_at_the_current_seq_replays_nothing()
    {
        await _app.CreateAsync(Todos, """{"title":"a"}""");
        var state = await _app.ListAsync(Todos);

        var subscriber = await SubscriberAsync(Todos, Since(state.Seq, state.Epoch));
        await subscriber.AssertNothingWaitingAsync();
        await _app.CreateAsync(Todos, """{"title":"b"}""");

        Assert.Equal(2, (await subscriber.NextAsync()).Seq);
    }

    [Theory]
    [InlineData(1, "wrong-epoch")]
    [InlineData(0, null)]
    [InlineData(1, "{epoch}")]
    [InlineData(99, "{epoch}")]
    public async Task Subscribing_with_a_wrong_epoch_or_a_since_the_log_cannot_serve_gets_a_reset(long since, string? epoch)
    {
        for (var i = 0; i < 8; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"t{{i}}"}""");
        }

        var state = await _app.ListAsync(Todos);
        var ext = new JsonObject { ["since"] = since };
        if (epoch is not null)
        {
            ext["epoch"] = epoch.Replace("{epoch}", state.Epoch, StringComparison.Ordinal);
        }

        var subscriber = await SubscriberAsync(Todos, ext);
        await _app.CreateAsync(Todos, """{"title":"after"}""");

        var (reset, live) = (await subscriber.NextAsync(2)) switch { var e => (e[0], e[1]) };
        Assert.Equal(Todos, reset.Channel);
        Assert.Equal("RESET", reset.Method);
        Assert.Equal(8, reset.Seq);
        Assert.Equal(state.Epoch, reset.Data["epoch"]!.GetValue<string>());
        Assert.Equal(9, live.Seq);
        await subscriber.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task Subscribing_with_snapshot_sends_the_current_state_first_then_live_events()
    {
        await _app.CreateAsync(Todos, """{"title":"a"}""");
        await _app.CreateAsync(Todos, """{"title":"b"}""");
        var state = await _app.ListAsync(Todos);

        var subscriber = await SubscriberAsync(Todos, new JsonObject { ["snapshot"] = true });
        await _app.CreateAsync(Todos, """{"title":"c"}""");

        var events = await subscriber.NextAsync(2);
        var snapshot = events[0];
        Assert.Equal(Todos, snapshot.Channel);
        Assert.Equal("SNAPSHOT", snapshot.Method);
        Assert.Equal(2, snapshot.Seq);
        Assert.Equal(state.Epoch, snapshot.Data["epoch"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(state.Items, snapshot.Data["items"]));
        Assert.Equal(("POST", 3L), (events[1].Method, events[1].Seq));
    }

    [Fact]
    public async Task A_wildcard_subscriber_receives_every_partition_on_its_own_channel()
    {
        var subscriber = await SubscriberAsync("/api/flows/*/messages");

        await _app.CreateAsync(MainMessages, """{"content":"1"}""");
        await _app.CreateAsync(SideMessages, """{"content":"2"}""");
        await _app.CreateAsync(MainMessages, """{"content":"3"}""");
        await _app.CreateAsync(Todos, """{"title":"not a message"}""");

        var events = await subscriber.NextAsync(3);
        Assert.Equal([(MainMessages, 1L), (SideMessages, 1L), (MainMessages, 2L)], events.Select(e => (e.Channel, e.Seq)));
        await subscriber.AssertNothingWaitingAsync();
    }

    [Theory]
    [InlineData("""{"since":0,"epoch":"x"}""")]
    [InlineData("""{"snapshot":true}""")]
    public async Task Since_or_snapshot_on_a_wildcard_is_refused_and_subscribes_nothing(string ext)
    {
        var client = await ClientAsync();

        var reply = await client.SubscribeAsync("/api/flows/*/messages", JsonNode.Parse(ext)!.AsObject());
        await _app.CreateAsync(MainMessages, """{"content":"1"}""");

        BayeuxClient.FailedWith(400, reply);
        await client.AssertNothingWaitingAsync();
    }

    [Theory]
    [InlineData("""{"since":-1,"epoch":"x"}""")]
    [InlineData("""{"since":"3","epoch":"x"}""")]
    [InlineData("""{"since":1.5,"epoch":"x"}""")]
    [InlineData("""{"since":null}""")]
    public async Task An_invalid_since_is_refused_with_400_and_subscribes_nothing(string ext)
    {
        var client = await ClientAsync();

        var reply = await client.SubscribeAsync(Todos, JsonNode.Parse(ext)!.AsObject());
        await _app.CreateAsync(Todos, """{"title":"a"}""");

        BayeuxClient.FailedWith(400, reply);
        await client.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_socket_create_replies_with_the_record_and_is_broadcast()
    {
        var subscriber = await SubscriberAsync(Todos);
        var writer = await ClientAsync();
        var id = Guid.NewGuid().ToString("D");

        var reply = await writer.PublishAsync(Todos, new JsonObject
        {
            ["method"] = "POST",
            ["body"] = new JsonObject { ["id"] = id, ["title"] = "from the socket" },
        });

        BayeuxClient.Succeeded(reply);
        var result = reply["ext"]!["tidings"]!.AsObject();
        Assert.Equal("Created", result["status"]!.GetValue<string>());
        Assert.Equal(1, result["seq"]!.GetValue<long>());
        var record = result["record"]!.AsObject();
        Assert.Equal(id, record["id"]!.GetValue<string>());
        Assert.Equal(1, record["version"]!.GetValue<long>());
        Assert.False(record["completed"]!.GetValue<bool>());
        var received = await subscriber.NextAsync();
        Assert.Equal(("POST", 1L), (received.Method, received.Seq));
        Assert.True(JsonNode.DeepEquals(record, received.Body));
        var state = await _app.ListAsync(Todos);
        Assert.True(JsonNode.DeepEquals(record, Assert.Single(state.Items)));
    }

    [Fact]
    public async Task A_repeated_socket_create_with_the_same_id_creates_and_emits_nothing_more()
    {
        var subscriber = await SubscriberAsync(Todos);
        var writer = await ClientAsync();
        var body = new JsonObject { ["id"] = Guid.NewGuid().ToString("D"), ["title"] = "once" };
        BayeuxClient.Succeeded(await writer.PublishAsync(Todos, new JsonObject { ["method"] = "POST", ["body"] = body.DeepClone() }));

        var again = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "POST", ["body"] = body.DeepClone() });

        BayeuxClient.Succeeded(again);
        Assert.Equal("AlreadyExists", again["ext"]!["tidings"]!["status"]!.GetValue<string>());
        Assert.Equal(1, (await subscriber.NextAsync()).Seq);
        await subscriber.AssertNothingWaitingAsync();
        Assert.Equal(1, (await _app.ListAsync(Todos)).Seq);
    }

    [Theory]
    [InlineData("""{"method":"POST","body":{"title":""}}""", 422)]
    [InlineData("""{"method":"POST","body":{"title":"x","color":"red"}}""", 422)]
    [InlineData("""{"method":"POST","body":{"id":"nope","title":"x"}}""", 422)]
    [InlineData("""{"method":"POST","body":{"title":"x","completed":"yes"}}""", 422)]
    [InlineData("""{"method":"PATCH","body":{"title":"x"}}""", 422)]
    [InlineData("""{"method":"PUT","body":{"id":"00000000-0000-4000-8000-000000000001","title":"x"}}""", 404)]
    [InlineData("""{"method":"DELETE","body":{"id":"00000000-0000-4000-8000-000000000001"}}""", 404)]
    [InlineData("""{"method":"FROB","body":{"title":"x"}}""", 400)]
    [InlineData("""{"body":{"title":"x"}}""", 400)]
    [InlineData("""{"method":"POST","body":"x"}""", 400)]
    [InlineData("""{"method":"POST"}""", 400)]
    [InlineData("""[1,2]""", 400)]
    [InlineData("""42""", 400)]
    public async Task An_invalid_socket_write_gets_an_error_reply_and_changes_nothing(string data, int code)
    {
        var existing = await _app.CreateAsync(Todos, """{"title":"keep"}""");
        var subscriber = await SubscriberAsync(Todos);
        var writer = await ClientAsync();
        var before = await _app.ListAsync(Todos);

        var reply = await writer.PublishAsync(Todos, JsonNode.Parse(data)!);

        BayeuxClient.FailedWith(code, reply);
        var after = await _app.ListAsync(Todos);
        Assert.Equal(before.Seq, after.Seq);
        Assert.True(JsonNode.DeepEquals(before.Items, after.Items));
        await subscriber.AssertNothingWaitingAsync();
        Assert.Equal("keep", after.Items.Single()!["title"]!.GetValue<string>());
        Assert.NotNull(existing);
    }

    [Fact]
    public async Task A_socket_write_to_a_stamped_field_is_refused()
    {
        var writer = await ClientAsync();

        var reply = await writer.PublishAsync(MainMessages, JsonNode.Parse("""{"method":"POST","body":{"content":"x","user":"mallory"}}""")!);

        BayeuxClient.FailedWith(422, reply);
        Assert.Equal("Invalid", reply["ext"]!["tidings"]!["status"]!.GetValue<string>());
        Assert.Equal(0, (await _app.ListAsync(MainMessages)).Seq);
    }

    [Theory]
    [InlineData("\"1\"")]
    [InlineData("{}")]
    [InlineData("[1]")]
    [InlineData("1.5")]
    public async Task A_socket_write_whose_version_is_not_an_integer_is_refused_and_changes_nothing(string version)
    {
        // Found by the chaos fuzzer: TryGetInt64 threw on a string or object, and the client got a 500.
        var created = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = created["id"]!.GetValue<string>();
        var writer = await ClientAsync();

        var reply = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "PUT", ["version"] = JsonNode.Parse(version), ["body"] = new JsonObject { ["id"] = id, ["title"] = "b" } });

        BayeuxClient.FailedWith(400, reply);
        Assert.StartsWith("400:version:", reply["error"]!.GetValue<string>());
        Assert.Equal(1, (await _app.ListAsync(Todos)).Seq);
    }

    [Fact]
    public async Task Socket_put_patch_and_delete_change_the_record_and_are_broadcast()
    {
        var created = await _app.CreateAsync(Todos, """{"title":"a","order":1}""");
        var id = created["id"]!.GetValue<string>();
        var subscriber = await SubscriberAsync(Todos, Since(1, (await _app.ListAsync(Todos)).Epoch));
        var writer = await ClientAsync();

        var put = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "PUT", ["version"] = 1, ["body"] = new JsonObject { ["id"] = id, ["title"] = "b" } });
        var patch = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "PATCH", ["version"] = 2, ["body"] = new JsonObject { ["id"] = id, ["completed"] = true } });
        var stale = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "PATCH", ["version"] = 1, ["body"] = new JsonObject { ["id"] = id, ["title"] = "stale" } });
        var delete = await writer.PublishAsync(Todos, new JsonObject { ["method"] = "DELETE", ["version"] = 3, ["body"] = new JsonObject { ["id"] = id } });

        BayeuxClient.Succeeded(put);
        Assert.Equal(2, put["ext"]!["tidings"]!["record"]!["version"]!.GetValue<long>());
        Assert.False(put["ext"]!["tidings"]!["record"]!.AsObject().ContainsKey("order"));
        BayeuxClient.Succeeded(patch);
        Assert.Equal("b", patch["ext"]!["tidings"]!["record"]!["title"]!.GetValue<string>());
        BayeuxClient.FailedWith(412, stale);
        BayeuxClient.Succeeded(delete);
        var events = await subscriber.NextAsync(3);
        Assert.Equal([("PUT", 2L), ("PUT", 3L), ("DELETE", 4L)], events.Select(e => (e.Method, e.Seq)));
        Assert.True(events[1].Body["completed"]!.GetValue<bool>());
        Assert.Equal(id, events[2].Id);
        await subscriber.AssertNothingWaitingAsync();
        Assert.Empty((await _app.ListAsync(Todos)).Items);
    }

    [Fact]
    public async Task A_publish_to_an_invalid_partition_channel_is_not_a_write()
    {
        var writer = await ClientAsync();

        var reply = await writer.PublishAsync("/api/flows/*/messages", JsonNode.Parse("""{"method":"POST","body":{"content":"x"}}""")!);

        Assert.False(reply["successful"]!.GetValue<bool>(), reply.ToJsonString());
        Assert.Equal(0, (await _app.ListAsync(MainMessages)).Seq);
    }
}
