using System.Net;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Collections;
using Tidings.Writes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Sorted;

/// <summary>Sorted collections over REST and the socket: order, moves, placed creates, bad input, MOVE events.</summary>
public class SortedCollectionTests : IAsyncLifetime
{
    internal const string Items = "/api/lists/l1/items";
    internal const string Locked = "/api/locked";
    internal const string Hidden = "/api/hidden";

    private TidingsApp _app = null!;

    private protected TidingsApp App => _app;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(declare: Declare, postgres: await PostgresAsync());

    /// <summary>A PostgreSQL database to run on instead of SQLite.</summary>
    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    internal static void Declare(TidingsBuilder tidings)
    {
        DeclareDefaults(tidings);
        tidings
            .AddIdentity()
            .AddCollection("/api/lists/{list}/items", c => c.Public().Sorted().Writable("title"))
            .AddCollection(Locked, c => c.Sorted().Writable("title")
                .Access(a => a.List(AccessRule.Anyone).Create(AccessRule.Anyone).Update(AccessRule.Nobody).Delete(AccessRule.Nobody)))
            .AddCollection(Hidden, c => c.Sorted().Writable("title", "hidden")
                .Access(a => a.List(AccessRule.Anyone)
                    .Read(new AccessRule(ctx => ctx.Record?["hidden"]?.GetValue<bool>() != true || ctx.UserName == "ada", "records not hidden, and ada"))
                    .Create(AccessRule.Anyone).Update(AccessRule.Anyone).Delete(AccessRule.Anyone)));
    }

    private async Task<string> AddAsync(string title, string path = Items, string query = "") =>
        (await _app.CreateAsync(path + query, $$"""{"title":"{{title}}"}"""))["id"]!.GetValue<string>();

    private Task<HttpResponseMessage> MoveAsync(string id, string json, string path = Items) => _app.PostAsync($"{path}/{id}/move", json);

    private async Task<IReadOnlyList<string>> TitlesAsync(string path = Items) =>
        [.. (await _app.ListAsync(path)).Items.Select(i => i!["title"]!.GetValue<string>())];

    private async Task<Dictionary<string, string>> IdsAsync(params string[] titles)
    {
        var ids = new Dictionary<string, string>();
        foreach (var title in titles)
        {
            ids[title] = await AddAsync(title);
        }

        return ids;
    }

    [Fact]
    public async Task Creates_go_to_the_end_and_every_record_carries_its_position()
    {
        await IdsAsync("a", "b", "c");

        var items = (await _app.ListAsync(Items)).Items;
        Assert.Equal(["a", "b", "c"], await TitlesAsync());
        var positions = items.Select(i => i!["position"]!.GetValue<string>()).ToList();
        Assert.Equal(positions.Order(StringComparer.Ordinal), positions);
        Assert.Equal(3, positions.Distinct().Count());
    }

    [Fact]
    public async Task A_record_moves_before_after_to_the_start_and_to_the_end()
    {
        var ids = await IdsAsync("a", "b", "c", "d");

        await AssertMovedAsync(ids["d"], $$"""{"before":"{{ids["b"]}}"}""");
        Assert.Equal(["a", "d", "b", "c"], await TitlesAsync());
        await AssertMovedAsync(ids["a"], $$"""{"after":"{{ids["c"]}}"}""");
        Assert.Equal(["d", "b", "c", "a"], await TitlesAsync());
        await AssertMovedAsync(ids["c"], """{"to":"start"}""");
        Assert.Equal(["c", "d", "b", "a"], await TitlesAsync());
        await AssertMovedAsync(ids["d"], """{"to":"end"}""");
        Assert.Equal(["c", "b", "a", "d"], await TitlesAsync());
    }

    private async Task AssertMovedAsync(string id, string json)
    {
        using var response = await MoveAsync(id, json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
        Assert.Equal(id, JsonNode.Parse(body)!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_create_may_name_its_place_in_the_query()
    {
        var ids = await IdsAsync("a", "c");

        await AddAsync("b", query: $"?before={ids["c"]}");
        await AddAsync("first", query: "?to=start");
        await AddAsync("after-a", query: $"?after={ids["a"]}");

        Assert.Equal(["first", "a", "after-a", "b", "c"], await TitlesAsync());
        using var bad = await _app.PostAsync(Items + "?to=middle", """{"title":"x"}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad.StatusCode);
        using var unsorted = await _app.PostAsync(Todos + "?to=start", """{"title":"x"}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unsorted.StatusCode);
    }

    [Fact]
    public async Task A_move_or_a_write_cannot_set_the_position_itself()
    {
        var ids = await IdsAsync("a", "b");

        using var put = await _app.SendAsync(HttpMethod.Patch, $"{Items}/{ids["a"]}", """{"title":"a2","position":"zzz"}""");
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(["a2", "b"], await TitlesAsync()); // the server-owned position was ignored and kept
    }

    [Theory]
    [InlineData("""{"before":"ANCHOR","after":"ANCHOR"}""")]
    [InlineData("""{"to":"middle"}""")]
    [InlineData("""{"before":"not-a-uuid"}""")]
    [InlineData("""{"before":"00000000-0000-0000-0000-000000000001"}""")]
    [InlineData("""{"before":"SELF"}""")]
    [InlineData("""{"to":"end","title":"x"}""")]
    [InlineData("""{}""")]
    [InlineData("""{"before":7}""")]
    public async Task Bad_places_answer_422_and_change_nothing(string json)
    {
        var ids = await IdsAsync("a", "b");
        var before = await _app.ListAsync(Items);

        using var response = await MoveAsync(ids["a"], json.Replace("ANCHOR", ids["b"]).Replace("SELF", ids["a"]));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("application/problem+json", ContentType(response)?.MediaType);
        var after = await _app.ListAsync(Items);
        Assert.Equal(before.Seq, after.Seq);
        Assert.True(JsonNode.DeepEquals(before.Items, after.Items));
    }

    [Fact]
    public async Task Moving_a_missing_record_answers_404_and_a_move_the_update_rule_refuses_403()
    {
        await IdsAsync("a");
        using var missing = await MoveAsync(Guid.NewGuid().ToString(), """{"to":"start"}""");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);

        var locked = (await _app.CreateAsync(Locked, """{"title":"x"}"""))["id"]!.GetValue<string>();
        using var anonymous = await MoveAsync(locked, """{"to":"start"}""", Locked);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var ada = _app.ClientFor("ada");
        using var refused = await ada.PostAsync($"{Locked}/{locked}/move", Json("""{"to":"start"}"""));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(1, (await ReadJsonAsync(await _app.Http.GetAsync($"{Locked}/{locked}")))["version"]!.GetValue<long>());

        var todo = (await _app.CreateAsync(Todos, """{"title":"x"}"""))["id"]!.GetValue<string>();
        using var unsorted = await MoveAsync(todo, """{"to":"start"}""", Todos);
        Assert.True(unsorted.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed, unsorted.StatusCode.ToString());
    }

    [Fact]
    public async Task A_move_is_published_as_MOVE_with_the_whole_record_and_the_id_it_now_follows()
    {
        var ids = await IdsAsync("a", "b", "c");
        var subscriber = new BayeuxClient(_app.Http);
        await subscriber.HandshakeAsync();
        var state = await _app.ListAsync(Items);
        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(Items, new JsonObject { ["since"] = state.Seq, ["epoch"] = state.Epoch }));

        await AssertMovedAsync(ids["c"], $$"""{"after":"{{ids["a"]}}"}""");
        await AssertMovedAsync(ids["b"], """{"to":"start"}""");

        var events = await subscriber.NextAsync(2);
        var first = events[0].Data;
        Assert.Equal("MOVE", first["method"]!.GetValue<string>());
        Assert.Equal(ids["a"], first["after"]!.GetValue<string>());
        Assert.Equal(4, first["seq"]!.GetValue<long>());
        var record = await ReadJsonAsync(await _app.Http.GetAsync($"{Items}/{ids["c"]}"));
        Assert.True(JsonNode.DeepEquals(record, first["body"]), first.ToJsonString());
        Assert.Equal(2, record["version"]!.GetValue<long>());
        Assert.True(events[1].Data.ContainsKey("after"));
        Assert.Null(events[1].Data["after"]);
        Assert.Equal(ids["b"], events[1].Id);
    }

    [Fact]
    public async Task Snapshots_come_in_order_and_since_replays_the_moves()
    {
        var ids = await IdsAsync("a", "b", "c");
        var start = await _app.ListAsync(Items);
        await AssertMovedAsync(ids["c"], """{"to":"start"}""");

        var snapshot = new BayeuxClient(_app.Http);
        await snapshot.HandshakeAsync();
        BayeuxClient.Succeeded(await snapshot.SubscribeAsync(Items, new JsonObject { ["snapshot"] = true }));
        var items = (await snapshot.NextAsync()).Data["items"]!.AsArray();
        Assert.Equal(["c", "a", "b"], items.Select(i => i!["title"]!.GetValue<string>()));

        var replay = new BayeuxClient(_app.Http);
        await replay.HandshakeAsync();
        BayeuxClient.Succeeded(await replay.SubscribeAsync(Items, new JsonObject { ["since"] = start.Seq, ["epoch"] = start.Epoch }));
        var moved = await replay.NextAsync();
        Assert.Equal("MOVE", moved.Method);
        Assert.Null(moved.Data["after"]);

        using var rest = await _app.Http.GetAsync($"{Items}?since={start.Seq}&epoch={start.Epoch}");
        var change = Assert.Single((await ReadJsonAsync(rest))["changes"]!.AsArray())!;
        Assert.Equal("MOVE", change["method"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_socket_publish_moves_and_creates_in_place()
    {
        var ids = await IdsAsync("a", "b");
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();

        var reply = await client.PublishAsync(Items, new JsonObject
        {
            ["method"] = "MOVE", ["body"] = new JsonObject { ["id"] = ids["b"] }, ["before"] = ids["a"],
        });
        BayeuxClient.Succeeded(reply);
        var placed = await client.PublishAsync(Items, new JsonObject
        {
            ["method"] = "POST", ["body"] = new JsonObject { ["title"] = "mid" }, ["after"] = ids["b"],
        });
        BayeuxClient.Succeeded(placed);
        Assert.Equal(["b", "mid", "a"], await TitlesAsync());

        BayeuxClient.FailedWith(422, await client.PublishAsync(Items, new JsonObject
        {
            ["method"] = "MOVE", ["body"] = new JsonObject { ["id"] = ids["b"] }, ["to"] = "nowhere",
        }));
        BayeuxClient.FailedWith(404, await client.PublishAsync(Items, new JsonObject
        {
            ["method"] = "MOVE", ["body"] = new JsonObject { ["id"] = Guid.NewGuid().ToString() }, ["to"] = "end",
        }));
    }

    [Fact]
    public async Task A_move_of_a_record_the_recipient_may_not_read_reaches_it_as_a_skip()
    {
        var registry = _app.Services.GetRequiredService<CollectionRegistry>();
        var writer = _app.Services.GetRequiredService<CollectionWriter>();
        var target = registry.Resolve(Hidden)!;
        var ada = new WriteContext(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "ada")], "test")));
        var hidden = (await writer.CreateAsync(target, new JsonObject { ["title"] = "h", ["hidden"] = true }, ada, default)).Record!.Id;
        var visible = (await writer.CreateAsync(target, new JsonObject { ["title"] = "v" }, ada, default)).Record!.Id;
        var subscriber = new BayeuxClient(_app.Http);
        await subscriber.HandshakeAsync();
        var state = await _app.ListAsync(Hidden);
        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(Hidden, new JsonObject { ["since"] = state.Seq, ["epoch"] = state.Epoch }));

        using var refused = await MoveAsync(hidden, """{"to":"end"}""", Hidden);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode); // what one may not read, one cannot find
        using var badAnchor = await MoveAsync(visible, $$"""{"after":"{{hidden}}"}""", Hidden);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badAnchor.StatusCode); // nor place anything next to
        Assert.Equal(WriteStatus.Updated, (await writer.MoveAsync(target, hidden, new Placement(PlacementKind.End), null, ada, default)).Status);
        Assert.Equal(WriteStatus.Updated, (await writer.MoveAsync(target, visible, new Placement(PlacementKind.End), null, ada, default)).Status);

        var events = await subscriber.NextAsync(2);
        Assert.Equal(["SKIP", "MOVE"], events.Select(e => e.Method));
        Assert.Equal([3L, 4L], events.Select(e => e.Seq));
        Assert.False(events[0].Data.ContainsKey("body"));
        Assert.Equal(hidden, events[1].Data["after"]!.GetValue<string>()); // the id is there; clients sort by position
    }

    [Fact]
    public async Task Many_random_moves_keep_one_order_without_renumbering_anyone_else()
    {
        var random = new Random(12);
        var model = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            model.Add(await AddAsync("r" + i));
        }

        for (var step = 0; step < 150; step++)
        {
            var before = (await _app.ListAsync(Items)).Items.ToDictionary(i => i!["id"]!.GetValue<string>(), i => i!["position"]!.GetValue<string>());
            var id = model[random.Next(model.Count)];
            var others = model.Where(m => m != id).ToList();
            var anchor = others[random.Next(others.Count)];
            string json;
            model.Remove(id);
            switch (random.Next(4))
            {
            case 0:
                json = $$"""{"before":"{{anchor}}"}""";
                model.Insert(model.IndexOf(anchor), id);
                break;
            case 1:
                json = $$"""{"after":"{{anchor}}"}""";
                model.Insert(model.IndexOf(anchor) + 1, id);
                break;
            case 2:
                json = """{"to":"start"}""";
                model.Insert(0, id);
                break;
            default:
                json = """{"to":"end"}""";
                model.Add(id);
                break;
            }

            await AssertMovedAsync(id, json);
            var after = (await _app.ListAsync(Items)).Items;
            Assert.Equal(model, after.Select(i => i!["id"]!.GetValue<string>()));
            foreach (var item in after)
            {
                var itemId = item!["id"]!.GetValue<string>();
                if (itemId != id)
                {
                    Assert.Equal(before[itemId], item["position"]!.GetValue<string>()); // nobody else renumbered
                }
            }
        }
    }
}

/// <summary>Sorted collections on the PostgreSQL store.</summary>
public sealed class PostgresSortedCollectionTests : SortedCollectionTests
{
    private string _database = null!;

    protected override async Task<string?> PostgresAsync() => _database = await PostgresServer.Instance.CreateDatabaseAsync();

    [Fact]
    public async Task Writes_from_sql_keep_positions_and_a_create_goes_to_the_end()
    {
        var first = (await App.CreateAsync(Items, """{"title":"a"}"""))["id"]!.GetValue<string>();
        await App.CreateAsync(Items, """{"title":"b"}""");
        await App.PostAsync($"{Items}/{first}/move", """{"to":"end"}""");
        var position = (await ReadJsonAsync(await App.Http.GetAsync($"{Items}/{first}")))["position"]!.GetValue<string>();

        await using (var connection = new Npgsql.NpgsqlConnection(_database))
        {
            await connection.OpenAsync();
            await using var put = new Npgsql.NpgsqlCommand(
                $$"""SELECT tidings_write('{{Items}}', 'PUT', '{{first}}', '{"title": "a in sql", "position": "0001"}');""", connection);
            await put.ExecuteScalarAsync();
            await using var post = new Npgsql.NpgsqlCommand(
                $$"""SELECT tidings_write('{{Items}}', 'POST', '{{Guid.NewGuid()}}', '{"title": "from sql"}');""", connection);
            await post.ExecuteScalarAsync();
        }

        var items = (await App.ListAsync(Items)).Items;
        Assert.Equal(["b", "a in sql", "from sql"], items.Select(i => i!["title"]!.GetValue<string>()));
        Assert.Equal(position, items[1]!["position"]!.GetValue<string>());
        var positions = items.Select(i => i!["position"]!.GetValue<string>()).ToList();
        Assert.Equal(positions.Order(StringComparer.Ordinal), positions);
    }
}
