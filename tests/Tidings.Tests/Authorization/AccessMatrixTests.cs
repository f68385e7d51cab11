using System.Net;
using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.SecuredApp;

namespace Tidings.Tests.Authorization;

/// <summary>
/// Users × collections × operations × transports: every cell is allowed or refused exactly as the rules
/// declare, with the status that says why, and a refused write changes nothing.
/// </summary>
public class AccessMatrixTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await SecuredApp.StartAsync(postgres: await PostgresAsync());

    /// <summary>A PostgreSQL database to run on instead of SQLite (the same matrix, another store).</summary>
    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private const int Ok = 200;

    // Expected REST status per collection, user (null = signed out) and operation. Records to get, update and
    // delete belong to ada. Reads one may not make are 404 (a record one may not read cannot be found).
    private static readonly (string Path, string? User, int List, int Get, int Create, int Update, int Delete)[] Rest =
    [
        (Todos, null, Ok, Ok, 201, Ok, 204), (Todos, "ada", Ok, Ok, 201, Ok, 204), (Todos, "bob", Ok, Ok, 201, Ok, 204),
        (Flow, null, 401, 404, 401, 404, 404), (Flow, "ada", Ok, Ok, 201, Ok, 204), (Flow, "bob", Ok, Ok, 201, 403, 403),
        (AdaTasks, null, 401, 404, 401, 404, 404), (AdaTasks, "ada", Ok, Ok, 201, Ok, 204), (AdaTasks, "bob", Ok, Ok, 403, 403, 403),
        (AdaNotes, null, 401, 404, 401, 404, 404), (AdaNotes, "ada", Ok, Ok, 201, Ok, 204), (AdaNotes, "bob", 403, 404, 403, 404, 404),
    ];

    public static TheoryData<string, string?, string, int> RestCells()
    {
        var data = new TheoryData<string, string?, string, int>();
        foreach (var (path, user, list, get, create, update, delete) in Rest)
        {
            data.Add(path, user, "list", list);
            data.Add(path, user, "get", get);
            data.Add(path, user, "create", create);
            data.Add(path, user, "update", update);
            data.Add(path, user, "delete", delete);
        }

        return data;
    }

    private static JsonObject Body(string path) => path switch
    {
        Todos => new JsonObject { ["title"] = "t" },
        Flow => new JsonObject { ["content"] = "m" },
        AdaTasks => new JsonObject { ["title"] = "t" },
        _ => new JsonObject { ["text"] = "n" },
    };

    private async Task<string> CreateAsAdaAsync(string path)
    {
        using var ada = _app.ClientFor("ada");
        using var response = await ada.PostAsync(path, TidingsApp.Json(Body(path)));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await TidingsApp.ReadJsonAsync(response))["id"]!.GetValue<string>();
    }

    private async Task<string> StateAsync(string path)
    {
        using var ada = _app.ClientFor("ada");
        return await ada.GetStringAsync(path);
    }

    [Theory]
    [MemberData(nameof(RestCells))]
    public async Task Rest_allows_or_refuses_each_cell_as_declared_and_a_refused_write_changes_nothing(string path, string? user, string operation, int expected)
    {
        var id = await CreateAsAdaAsync(path);
        var before = await StateAsync(path);
        using var http = _app.ClientFor(user);

        using var response = operation switch
        {
            "list" => await http.GetAsync(path),
            "get" => await http.GetAsync($"{path}/{id}"),
            "create" => await http.PostAsync(path, TidingsApp.Json(Body(path))),
            "update" => await http.PatchAsync($"{path}/{id}", TidingsApp.Json(Body(path))),
            _ => await http.DeleteAsync($"{path}/{id}"),
        };

        Assert.Equal(expected, (int)response.StatusCode);
        if (expected >= 400)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(before, await StateAsync(path));
        }
    }

    // Expected Bayeux outcome per collection and user: may subscribe, may create through the socket.
    public static TheoryData<string, string?, string, bool, bool> BayeuxCells() => new()
    {
        { Todos, null, "long-polling", true, true }, { Todos, "bob", "long-polling", true, true },
        { Flow, null, "long-polling", false, false }, { Flow, "ada", "long-polling", true, true }, { Flow, "bob", "long-polling", true, true },
        { AdaTasks, null, "long-polling", false, false }, { AdaTasks, "ada", "long-polling", true, true }, { AdaTasks, "bob", "long-polling", true, false },
        { AdaNotes, null, "long-polling", false, false }, { AdaNotes, "ada", "long-polling", true, true }, { AdaNotes, "bob", "long-polling", false, false },
        { Flow, null, "websocket", false, false }, { Flow, "bob", "websocket", true, true },
        { AdaTasks, "bob", "websocket", true, false }, { AdaNotes, "ada", "websocket", true, true }, { AdaNotes, "bob", "websocket", false, false },
    };

    [Theory]
    [MemberData(nameof(BayeuxCells))]
    public async Task Bayeux_subscriptions_and_socket_writes_follow_the_same_rules(string path, string? user, string transport, bool maySubscribe, bool mayCreate)
    {
        var before = await StateAsync(path);
        var ext = user is null ? null : new JsonObject { ["token"] = _app.TokenFor(user) };
        await using var client = await TransportClient.OpenAsync(_app, transport, ext);

        var subscribe = await client.RequestAsync(new JsonObject { ["channel"] = "/meta/subscribe", ["subscription"] = path });
        var create = await client.RequestAsync(new JsonObject { ["channel"] = path, ["data"] = new JsonObject { ["method"] = "POST", ["body"] = Body(path) } });

        Assert.True(maySubscribe == subscribe["successful"]!.GetValue<bool>(), subscribe.ToJsonString());
        Assert.True(mayCreate == create["successful"]!.GetValue<bool>(), create.ToJsonString());
        if (!maySubscribe)
        {
            Assert.StartsWith("403:", subscribe["error"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        if (!mayCreate)
        {
            Assert.StartsWith("403:", create["error"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(before, await StateAsync(path));
        }
    }
}

/// <summary>The authorization matrix on the PostgreSQL store.</summary>
public sealed class PostgresAccessMatrixTests : AccessMatrixTests
{
    protected override async Task<string?> PostgresAsync() => await PostgresServer.Instance.CreateDatabaseAsync();
}
