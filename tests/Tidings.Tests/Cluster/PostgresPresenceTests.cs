using System.Text.Json.Nodes;
using Npgsql;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Cluster;

/// <summary>
/// Presence across two real nodes on one PostgreSQL database: a watcher on one node sees users join and leave on the
/// other, a user counts once however many nodes hold their sessions, and the users of a node that stopped heartbeating
/// leave once it expires.
/// </summary>
public sealed class PostgresPresenceTests : IAsyncLifetime
{
    private const string Presence = "/tidings/presence" + MainMessages;
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

    private async Task<TidingsApp> NodeAsync()
    {
        var node = await TidingsApp.StartAsync(new Dictionary<string, string?>
        {
            ["Tidings:Postgres:PresenceInterval"] = "00:00:00.100",
            ["Tidings:Postgres:NodeExpiry"] = "00:00:02",
        }, declare: tidings =>
        {
            DeclareDefaults(tidings);
            tidings.AddIdentity();
        }, postgres: _database);
        _nodes.Add(node);
        return node;
    }

    private static async Task<BayeuxClient> SignedInAsync(TidingsApp node, string user)
    {
        var client = new BayeuxClient(node.Http);
        await client.HandshakeAsync(new JsonObject { ["token"] = node.TokenFor(user) });
        return client;
    }

    private static async Task<JsonObject> PresenceAsync(TidingsApp node)
    {
        using var response = await node.Http.GetAsync($"/tidings/presence?channel={Uri.EscapeDataString(MainMessages)}");
        response.EnsureSuccessStatusCode();
        return await ReadJsonAsync(response);
    }

    private static async Task<int> SessionsOfAsync(TidingsApp node, string user) =>
        (await PresenceAsync(node))["users"]!.AsArray().Where(u => (string?)u!["name"] == user).Select(u => (int)u!["sessions"]!).SingleOrDefault();

    /// <summary>Waits for an asynchronous condition (a REST answer) within the usual patience.</summary>
    private static async Task UntilAsync(Func<Task<bool>> condition, string because)
    {
        var deadline = DateTime.UtcNow + Eventually.Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Timed out waiting: " + because);
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Users_on_other_nodes_join_and_leave_once_and_a_dead_nodes_users_leave_when_it_expires()
    {
        var a = await NodeAsync();
        var b = await NodeAsync();
        var watcher = new BayeuxClient(a.Http);
        await watcher.HandshakeAsync();
        BayeuxClient.Succeeded(await watcher.SubscribeAsync(Presence));
        Assert.Equal("""{"method":"SNAPSHOT","users":[],"anonymous":0}""", (await watcher.NextAsync()).Data.ToJsonString());

        // ada subscribes on node B: the watcher on A sees her join, and A's REST answer counts her.
        var adaOnB = await SignedInAsync(b, "ada");
        BayeuxClient.Succeeded(await adaOnB.SubscribeAsync(MainMessages));
        Assert.Equal("""{"method":"JOIN","user":"ada"}""", (await watcher.NextAsync()).Data.ToJsonString());
        await UntilAsync(async () => await SessionsOfAsync(a, "ada") == 1, "A to count ada's session on B");

        // A second session of ada on A: no second JOIN; two sessions. B's one ends: still there, no LEAVE.
        var adaOnA = await SignedInAsync(a, "ada");
        BayeuxClient.Succeeded(await adaOnA.SubscribeAsync(MainMessages));
        await UntilAsync(async () => await SessionsOfAsync(a, "ada") == 2 && await SessionsOfAsync(b, "ada") == 2, "both nodes to count two sessions");
        await adaOnB.DisconnectAsync();
        await UntilAsync(async () => await SessionsOfAsync(a, "ada") == 1, "A to see ada's session on B end");
        await watcher.AssertNothingWaitingAsync();

        // Her last session goes: LEAVE.
        BayeuxClient.Succeeded(await adaOnA.UnsubscribeAsync(MainMessages));
        Assert.Equal("""{"method":"LEAVE","user":"ada"}""", (await watcher.NextAsync()).Data.ToJsonString());

        // A node that dies without cleaning up (its rows and a heartbeat, then silence): its user joins, then leaves once
        // the heartbeat is older than NodeExpiry, and its rows are gone.
        await using (var connection = new NpgsqlConnection(_database))
        {
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("""
                WITH node AS (INSERT INTO tidings_nodes (node, seen_at) VALUES ('ghost', $1))
                INSERT INTO tidings_presence (node, channel, user_name, sessions) VALUES ('ghost', $2, 'zed', 1);
                """, connection);
            insert.Parameters.Add(new NpgsqlParameter { Value = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
            insert.Parameters.Add(new NpgsqlParameter { Value = MainMessages });
            await insert.ExecuteNonQueryAsync();
        }

        Assert.Equal("""{"method":"JOIN","user":"zed"}""", (await watcher.NextAsync()).Data.ToJsonString());
        Assert.Equal("""{"method":"LEAVE","user":"zed"}""", (await watcher.NextAsync(1, TimeSpan.FromSeconds(20)))[0].Data.ToJsonString());
        await using (var connection = new NpgsqlConnection(_database))
        {
            await connection.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT count(*) FROM tidings_presence WHERE node = 'ghost';", connection);
            Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!);
        }

        // A node that stops cleanly takes its users with it at once.
        var bob = await SignedInAsync(b, "bob");
        BayeuxClient.Succeeded(await bob.SubscribeAsync(MainMessages));
        Assert.Equal("""{"method":"JOIN","user":"bob"}""", (await watcher.NextAsync()).Data.ToJsonString());
        _nodes.Remove(b);
        await b.DisposeAsync();
        Assert.Equal("""{"method":"LEAVE","user":"bob"}""", (await watcher.NextAsync()).Data.ToJsonString());
        Assert.Empty((await PresenceAsync(a))["users"]!.AsArray());
    }
}
