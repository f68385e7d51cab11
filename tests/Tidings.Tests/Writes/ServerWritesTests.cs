using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Storage;
using Tidings.Tests.Support;
using Tidings.Writes;

namespace Tidings.Tests.Writes;

/// <summary>
/// Writes from server code (a worker, a hosted service) go through the same rules, seqs and events as REST, and several
/// writes on several collections commit in one transaction or not at all.
/// </summary>
public sealed class ServerWritesTests : IAsyncLifetime
{
    private const string AdaNotes = "/api/users/ada/notes";
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await SecuredApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private CollectionWriter Writer => _app.Services.GetRequiredService<CollectionWriter>();

    private Task<(int Items, long Seq)> StoredAsync(string path) =>
        _app.Services.GetRequiredService<ITidingsStore>().ReadAsync(r => (r.List(path, 1000).Count, r.GetPosition(path).Seq), CancellationToken.None);

    private static WriteContext As(string name) => new(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], "test")));

    [Fact]
    public async Task A_transaction_moves_a_record_between_collections_atomically_with_an_event_on_each_channel()
    {
        var task = (await Writer.TransactAsync([WriteRequest.Create(SecuredApp.AdaTasks, new JsonObject { ["title"] = "ship it" })], As("ada"),
            CancellationToken.None)).Outcomes[0]!.Record!;
        var watcher = new BayeuxClient(_app.Http);
        await watcher.HandshakeAsync(new JsonObject { ["token"] = _app.TokenFor("ada") });
        BayeuxClient.Succeeded(await watcher.SubscribeAsync("/api/users/ada/*"));

        var moved = await Writer.TransactAsync(
        [
            WriteRequest.Create(AdaNotes, new JsonObject { ["text"] = "shipped: ship it" }),
            WriteRequest.Delete(SecuredApp.AdaTasks, task.Id),
        ], As("ada"), CancellationToken.None);

        Assert.True(moved.Committed);
        Assert.Equal([WriteStatus.Created, WriteStatus.Deleted], moved.Outcomes.Select(o => o!.Status));
        var events = await watcher.NextAsync(2);
        Assert.Equal([(AdaNotes, "POST"), (SecuredApp.AdaTasks, "DELETE")], events.Select(e => (e.Channel, e.Method)));
        Assert.Equal(0, (await StoredAsync(SecuredApp.AdaTasks)).Items);
    }

    [Fact]
    public async Task A_transaction_with_one_refused_write_stores_nothing_and_says_which_one()
    {
        var before = await StoredAsync(SecuredApp.AdaTasks);

        var refused = await Writer.TransactAsync(
        [
            WriteRequest.Create(SecuredApp.AdaTasks, new JsonObject { ["title"] = "fine" }),
            WriteRequest.Create("/api/users/bob/notes", new JsonObject { ["text"] = "not ada's to write" }),
        ], As("ada"), CancellationToken.None);

        Assert.False(refused.Committed);
        Assert.Null(refused.Outcomes[0]);
        Assert.Equal(WriteStatus.Forbidden, refused.Outcomes[1]!.Status);
        Assert.Equal(before, await StoredAsync(SecuredApp.AdaTasks)); // no write, no seq used

        var invalid = await Writer.TransactAsync([WriteRequest.Create(SecuredApp.AdaTasks, new JsonObject { ["colour"] = "red" })], As("ada"), CancellationToken.None);
        Assert.Equal(WriteStatus.Invalid, invalid.Outcomes[0]!.Status);
    }

    [Fact]
    public async Task Server_code_acting_for_itself_skips_access_rules_but_not_the_schema()
    {
        var trusted = await Writer.TransactAsync([WriteRequest.Create("/api/users/bob/notes", new JsonObject { ["text"] = "from the server" })],
            WriteContext.Server, CancellationToken.None);
        Assert.True(trusted.Committed);

        var invalid = await Writer.TransactAsync([WriteRequest.Create("/api/users/bob/notes", new JsonObject { ["text"] = 3 })], WriteContext.Server,
            CancellationToken.None);
        Assert.Equal(WriteStatus.Invalid, invalid.Outcomes[0]!.Status);
        var unknown = await Writer.TransactAsync([WriteRequest.Create("/api/nowhere", new JsonObject())], WriteContext.Server, CancellationToken.None);
        Assert.Equal(WriteStatus.NotFound, unknown.Outcomes[0]!.Status);
    }
}
