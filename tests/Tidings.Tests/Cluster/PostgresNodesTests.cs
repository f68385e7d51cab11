using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Tidings.Bayeux.Server;
using Tidings.Storage;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Cluster;

/// <summary>
/// Several Tidings nodes (each a real server on Kestrel) on one real PostgreSQL database: every node learns every
/// node's commits, in seq order, once, and nothing from a transaction that rolled back.
/// </summary>
public sealed class PostgresNodesTests : IAsyncLifetime
{
    private readonly List<TidingsApp> _nodes = [];
    private string _database = null!;

    public async Task InitializeAsync() => _database = await PostgresServer.Instance.CreateDatabaseAsync();

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private async Task<TidingsApp> NodeAsync(string? database = null, string? name = null)
    {
        var node = await TidingsApp.StartAsync(name is null ? null : new Dictionary<string, string?> { ["Bayeux:NodeId"] = name },
            postgres: database ?? _database);
        _nodes.Add(node);
        return node;
    }

    [Fact]
    public async Task Every_node_publishes_every_committed_change_once_in_seq_order_and_nothing_from_a_rolled_back_write()
    {
        var nodes = new[] { await NodeAsync(), await NodeAsync(), await NodeAsync() };
        var channels = Enumerable.Range(0, 6).Select(i => $"/api/flows/f{i}/messages").ToArray();
        var published = nodes.Select(_ => new ConcurrentQueue<(string Channel, long Seq, string Body)>()).ToArray();
        for (var n = 0; n < nodes.Length; n++)
        {
            var seen = published[n];
            nodes[n].Services.GetRequiredService<BayeuxServer>().Subscribe("/api/**", d =>
                seen.Enqueue((d.Channel, d.Data.GetProperty("seq").GetInt64(), d.Data.GetProperty("body").GetRawText())));
        }

        // Writers on every node; transactions of random length (held open while others commit), some rolled back.
        var committed = new ConcurrentBag<ChangeEntry>();
        var rolledBack = new ConcurrentBag<string>();
        await Task.WhenAll(nodes.SelectMany((node, n) => Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
        {
            var store = node.Services.GetRequiredService<ITidingsStore>();
            var random = new Random(1000 * n + w);
            for (var i = 0; i < 40; i++)
            {
                var channel = channels[random.Next(channels.Length)];
                var marker = $"n{n}w{w}i{i}";
                var hold = random.Next(12);
                var fail = random.Next(7) == 0;
                try
                {
                    committed.Add(await store.WriteAsync(writer =>
                    {
                        var change = writer.Append(channel, "POST", new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["marker"] = marker }.ToJsonString());
                        Thread.Sleep(hold);
                        return fail ? throw new InvalidOperationException("rolled back: " + marker) : change;
                    }, CancellationToken.None));
                }
                catch (InvalidOperationException)
                {
                    rolledBack.Add(marker);
                }
            }
        })))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.NotEmpty(rolledBack);
        foreach (var channel in channels)
        {
            var expected = committed.Where(c => c.Path == channel).OrderBy(c => c.Seq).ToList();
            Assert.Equal(Enumerable.Range(1, expected.Count).Select(i => (long)i), expected.Select(c => c.Seq)); // contiguous across nodes
            for (var n = 0; n < nodes.Length; n++)
            {
                var seen = published[n];
                await Eventually.UntilAsync(() => seen.Count(p => p.Channel == channel) >= expected.Count, $"node {n} to publish {channel}");
                var mine = seen.Where(p => p.Channel == channel).ToList();
                Assert.Equal(expected.Select(c => c.Seq), mine.Select(p => p.Seq)); // once each, in order
                Assert.Equal(expected.Select(c => JsonNode.Parse(c.BodyJson)!["marker"]!.GetValue<string>()),
                    mine.Select(p => JsonNode.Parse(p.Body)!["marker"]!.GetValue<string>()));
            }
        }

        Assert.All(published.SelectMany(p => p), p => Assert.DoesNotContain(JsonNode.Parse(p.Body)!["marker"]!.GetValue<string>(), rolledBack));
    }

    [Fact]
    public async Task A_subscriber_on_one_node_gets_writes_made_through_every_node_once_in_order_after_its_snapshot()
    {
        var (a, b, c) = (await NodeAsync(), await NodeAsync(), await NodeAsync());
        await b.CreateAsync(Todos, """{"title":"before"}""");
        var client = new BayeuxClient(a.Http);
        await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
        var snapshot = await client.NextAsync();
        Assert.Equal(("SNAPSHOT", 1L), (snapshot.Method, snapshot.Seq));

        await Task.WhenAll(Enumerable.Range(0, 30).Select(i => (i % 3 == 0 ? a : i % 3 == 1 ? b : c).CreateAsync(Todos, $$"""{"title":"t{{i}}"}""")));

        var events = await client.NextAsync(30);
        Assert.Equal(Enumerable.Range(2, 30).Select(i => (long)i), events.Select(e => e.Seq));
        Assert.Equal(31, (await c.ListAsync(Todos)).Items.Count);
        await client.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_write_made_in_SQL_by_another_program_is_sequenced_logged_and_published_like_a_rest_write()
    {
        var node = await NodeAsync();
        var client = new BayeuxClient(node.Http);
        await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
        await client.NextAsync();
        var created = await node.CreateAsync(Todos, """{"title":"from rest"}""");
        var id = Guid.NewGuid().ToString();

        await using (var connection = new NpgsqlConnection(_database))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("""SELECT tidings_write('/api/todos', 'POST', $1, '{"title": "from sql", "completed": false}');""", connection);
            insert.Parameters.Add(new NpgsqlParameter { Value = id });
            Assert.Equal(2L, await insert.ExecuteScalarAsync());
            await using var update = new NpgsqlCommand("""SELECT tidings_write('/api/todos', 'PUT', $1, '{"title": "changed in sql"}');""", connection);
            update.Parameters.Add(new NpgsqlParameter { Value = created["id"]!.GetValue<string>() });
            Assert.Equal(3L, await update.ExecuteScalarAsync());
            await using var bad = new NpgsqlCommand("SELECT tidings_write('/api/todos', 'PUT', 'no-such-id', '{}');", connection);
            await Assert.ThrowsAsync<PostgresException>(() => bad.ExecuteScalarAsync());
        }

        var events = await client.NextAsync(3);
        Assert.Equal([("POST", 1L), ("POST", 2L), ("PUT", 3L)], events.Select(e => (e.Method, e.Seq)));
        Assert.Equal(("from sql", 1L, id), (events[1].Body["title"]!.GetValue<string>(), events[1].Body["version"]!.GetValue<long>(), events[1].Id));
        Assert.Equal(("changed in sql", 2L), (events[2].Body["title"]!.GetValue<string>(), events[2].Body["version"]!.GetValue<long>()));

        // The REST face agrees, and a REST write after it continues the same sequence.
        using var record = await node.Http.GetAsync($"{Todos}/{id}");
        Assert.Equal(HttpStatusCode.OK, record.StatusCode);
        var after = await node.CreateAsync(Todos, """{"title":"after"}""");
        Assert.Equal(4L, (await client.NextAsync()).Seq);
        Assert.NotNull(after);
    }

    [Fact]
    public async Task A_plain_publish_on_one_node_reaches_the_subscribers_of_every_node_once()
    {
        var (a, b, c) = (await NodeAsync(), await NodeAsync(), await NodeAsync());
        var clients = new List<BayeuxClient>();
        foreach (var node in new[] { a, b, c })
        {
            var client = new BayeuxClient(node.Http);
            await client.HandshakeAsync();
            BayeuxClient.Succeeded(await client.SubscribeAsync("/chat/lobby"));
            clients.Add(client);
        }

        for (var i = 0; i < 5; i++)
        {
            BayeuxClient.Succeeded(await clients[0].PublishAsync("/chat/lobby", new JsonObject { ["n"] = i }));
        }

        foreach (var client in clients)
        {
            var received = await client.NextAsync(5);
            Assert.Equal([0, 1, 2, 3, 4], received.Select(r => r.Data["n"]!.GetValue<int>()));
            await client.AssertNothingWaitingAsync();
        }
    }

    [Fact]
    public async Task A_named_node_sets_its_affinity_cookie_on_handshake_and_a_client_it_does_not_know_is_told_to_handshake()
    {
        var a = await NodeAsync(name: "node-a");
        var b = await NodeAsync(name: "node-b");
        var handshake = new JsonArray(new JsonObject
        {
            ["channel"] = "/meta/handshake", ["version"] = "1.0", ["supportedConnectionTypes"] = new JsonArray("long-polling"),
        });
        using var response = await a.Http.PostAsync("/bayeux", Json(handshake));
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("tidings_node=node-a;", StringComparison.Ordinal));
        var clientId = JsonNode.Parse(await response.Content.ReadAsStringAsync())![0]!["clientId"]!.GetValue<string>();

        // The affinity was lost: the request reached the other node, which answers as Faye does.
        var lost = new BayeuxClient(b.Http);
        var reply = await lost.RequestAsync(new JsonObject
        {
            ["channel"] = "/meta/connect", ["clientId"] = clientId, ["connectionType"] = "long-polling",
        });
        BayeuxClient.FailedWith(401, reply);
        Assert.Equal("handshake", reply["advice"]!["reconnect"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_connection_string_that_cannot_reach_a_database_fails_start_up_with_a_clear_message()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            TidingsApp.StartAsync(postgres: "Host=127.0.0.1;Port=1;Username=postgres;Database=nowhere"));
        Assert.Contains("Could not open the PostgreSQL database (127.0.0.1:1/nowhere)", error.Message, StringComparison.Ordinal);

        var garbled = await Assert.ThrowsAsync<InvalidOperationException>(() => TidingsApp.StartAsync(postgres: "this is not a connection string"));
        Assert.Contains("connection string is not valid", garbled.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task While_PostgreSQL_is_down_writes_answer_503_at_once_sessions_stay_and_afterwards_nothing_is_lost_or_repeated()
    {
        using var server = PostgresServer.StartNew();
        var database = await server.CreateDatabaseAsync();
        var (a, b) = (await NodeAsync(database), await NodeAsync(database));
        var client = new BayeuxClient(a.Http);
        var clientId = await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Todos, new JsonObject { ["snapshot"] = true }));
        await client.NextAsync();
        await b.CreateAsync(Todos, """{"title":"one"}""");
        Assert.Equal(1L, (await client.NextAsync()).Seq);

        server.Stop();
        var timer = Stopwatch.StartNew();
        using var refused = await b.PostAsync(Todos, """{"title":"while down"}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", ContentType(refused)?.MediaType);
        Assert.True(timer.Elapsed < TimeSpan.FromSeconds(8), $"the 503 took {timer.Elapsed}");
        Assert.True(a.Services.GetRequiredService<BayeuxServer>().TryGetSession(clientId, out _), "the session survived the outage");

        server.StartServer();
        await Eventually.UntilAsync(() => b.PostAsync(Todos, """{"title":"two"}""").Result.StatusCode == HttpStatusCode.Created,
            "writes to work again", TimeSpan.FromSeconds(30));
        await b.CreateAsync(Todos, """{"title":"three"}""");

        var events = await client.NextAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal([2L, 3L], events.Select(e => e.Seq));
        Assert.Equal(["two", "three"], events.Select(e => e.Body["title"]!.GetValue<string>()));
        await client.AssertNothingWaitingAsync();
    }
}
