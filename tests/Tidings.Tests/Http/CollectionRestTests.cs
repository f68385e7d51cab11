using System.Net;
using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Http;

/// <summary>The REST wire contract (DESIGN.md) on a real Kestrel server.</summary>
public class CollectionRestTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(postgres: await PostgresAsync());

    /// <summary>A PostgreSQL database to run on instead of SQLite (the same wire contract, another store).</summary>
    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static void AssertUuid(JsonNode? id) => Assert.True(Guid.TryParse(id?.GetValue<string>(), out _), $"not a UUID: {id}");

    [Fact]
    public async Task An_empty_collection_lists_no_items_at_seq_0_with_an_epoch()
    {
        var state = await _app.ListAsync(Todos);

        Assert.Empty(state.Items);
        Assert.Equal(0, state.Seq);
        Assert.False(string.IsNullOrWhiteSpace(state.Epoch));
    }

    [Fact]
    public async Task A_create_answers_201_with_location_etag_server_fields_and_defaults()
    {
        using var response = await _app.PostAsync(Todos, """{"title":"milk"}""");

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var record = await ReadJsonAsync(response);
        AssertUuid(record["id"]);
        var id = record["id"]!.GetValue<string>();
        Assert.Equal($"{Todos}/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal("\"1\"", response.Headers.ETag?.ToString());
        Assert.Equal("milk", record["title"]!.GetValue<string>());
        Assert.False(record["completed"]!.GetValue<bool>());
        Assert.Equal(1, record["version"]!.GetValue<long>());
        var createdAt = record["createdAt"]!.GetValue<DateTimeOffset>();
        Assert.Equal(createdAt, record["updatedAt"]!.GetValue<DateTimeOffset>());
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));

        var state = await _app.ListAsync(Todos);
        Assert.Equal(1, state.Seq);
        Assert.True(JsonNode.DeepEquals(record, Assert.Single(state.Items)));
    }

    [Fact]
    public async Task Server_fields_sent_by_the_client_are_ignored_not_stored()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a","version":41,"createdAt":"2000-01-01T00:00:00Z"}""");

        Assert.Equal(1, record["version"]!.GetValue<long>());
        Assert.NotEqual(2000, record["createdAt"]!.GetValue<DateTimeOffset>().Year);
    }

    [Fact]
    public async Task The_list_holds_records_in_creation_order()
    {
        var a = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var b = await _app.CreateAsync(Todos, """{"title":"b"}""");
        var c = await _app.CreateAsync(Todos, """{"title":"c"}""");

        var state = await _app.ListAsync(Todos);

        Assert.Equal([a["id"]!.GetValue<string>(), b["id"]!.GetValue<string>(), c["id"]!.GetValue<string>()], state.Ids);
        Assert.Equal(3, state.Seq);
    }

    [Fact]
    public async Task Getting_one_record_answers_200_with_its_etag_or_404()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = record["id"]!.GetValue<string>();

        using var found = await _app.Http.GetAsync($"{Todos}/{id}");
        using var missing = await _app.Http.GetAsync($"{Todos}/{Guid.NewGuid()}");
        using var otherCollection = await _app.Http.GetAsync($"{MainMessages}/{id}");

        Assert.Equal(HttpStatusCode.OK, found.StatusCode);
        Assert.Equal("\"1\"", found.Headers.ETag?.ToString());
        Assert.True(JsonNode.DeepEquals(record, await ReadJsonAsync(found)));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", ContentType(missing)?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, otherCollection.StatusCode);
    }

    [Fact]
    public async Task A_client_uuid_is_kept_and_a_repeated_create_answers_200_with_the_same_record_and_emits_nothing()
    {
        var id = Guid.NewGuid().ToString("D");
        var created = await _app.CreateAsync(Todos, $$"""{"id":"{{id}}","title":"first"}""");
        Assert.Equal(id, created["id"]!.GetValue<string>());

        using var again = await _app.PostAsync(Todos, $$"""{"id":"{{id.ToUpperInvariant()}}","title":"second"}""");

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.True(JsonNode.DeepEquals(created, await ReadJsonAsync(again)));
        var state = await _app.ListAsync(Todos);
        Assert.Equal(1, state.Seq);
        Assert.Equal([id], state.Ids);
        Assert.Equal("first", state.Items[0]!["title"]!.GetValue<string>());
    }

    [Fact]
    public async Task Put_with_a_matching_if_match_replaces_the_writable_fields()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a","completed":true,"order":3}""");
        var id = record["id"]!.GetValue<string>();

        using var response = await _app.SendAsync(HttpMethod.Put, $"{Todos}/{id}", """{"title":"b"}""", ifMatch: "\"1\"");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("\"2\"", response.Headers.ETag?.ToString());
        var updated = await ReadJsonAsync(response);
        Assert.Equal(id, updated["id"]!.GetValue<string>());
        Assert.Equal(2, updated["version"]!.GetValue<long>());
        Assert.Equal("b", updated["title"]!.GetValue<string>());
        Assert.False(updated.ContainsKey("completed"));
        Assert.False(updated.ContainsKey("order"));
        Assert.Equal(record["createdAt"]!.GetValue<DateTimeOffset>(), updated["createdAt"]!.GetValue<DateTimeOffset>());
        Assert.True(updated["updatedAt"]!.GetValue<DateTimeOffset>() >= record["updatedAt"]!.GetValue<DateTimeOffset>());
        var state = await _app.ListAsync(Todos);
        Assert.Equal(2, state.Seq);
        Assert.True(JsonNode.DeepEquals(updated, state.Items[0]));
    }

    [Fact]
    public async Task Patch_merges_fields_and_null_removes_one()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a","order":3}""");
        var id = record["id"]!.GetValue<string>();

        using var response = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{id}", """{"completed":true,"order":null}""", ifMatch: "\"1\"");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var patched = await ReadJsonAsync(response);
        Assert.Equal("a", patched["title"]!.GetValue<string>());
        Assert.True(patched["completed"]!.GetValue<bool>());
        Assert.False(patched.ContainsKey("order"));
        Assert.Equal(2, patched["version"]!.GetValue<long>());
    }

    [Fact]
    public async Task An_update_without_if_match_applies_to_the_current_version()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = record["id"]!.GetValue<string>();
        using var first = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{id}", """{"order":1}""");

        using var second = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{id}", """{"order":2}""");

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(3, (await ReadJsonAsync(second))["version"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    public async Task A_stale_if_match_answers_412_and_changes_nothing(string method)
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = record["id"]!.GetValue<string>();
        using var moved = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{id}", """{"order":1}""", ifMatch: "\"1\"");
        Assert.Equal(HttpStatusCode.OK, moved.StatusCode);
        var before = await _app.ListAsync(Todos);

        using var response = await _app.SendAsync(new HttpMethod(method), $"{Todos}/{id}",
            method == "DELETE" ? null : """{"title":"stale"}""", ifMatch: "\"1\"");

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Equal("application/problem+json", ContentType(response)?.MediaType);
        var after = await _app.ListAsync(Todos);
        Assert.Equal(before.Seq, after.Seq);
        Assert.True(JsonNode.DeepEquals(before.Items, after.Items));
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    public async Task Changing_a_record_that_does_not_exist_answers_404(string method)
    {
        using var response = await _app.SendAsync(new HttpMethod(method), $"{Todos}/{Guid.NewGuid()}",
            method == "DELETE" ? null : """{"title":"x"}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(0, (await _app.ListAsync(Todos)).Seq);
    }

    [Fact]
    public async Task Delete_answers_204_and_then_the_record_is_gone()
    {
        var record = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var id = record["id"]!.GetValue<string>();

        using var deleted = await _app.SendAsync(HttpMethod.Delete, $"{Todos}/{id}", ifMatch: "\"1\"");
        using var get = await _app.Http.GetAsync($"{Todos}/{id}");
        using var again = await _app.SendAsync(HttpMethod.Delete, $"{Todos}/{id}");

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        var state = await _app.ListAsync(Todos);
        Assert.Empty(state.Items);
        Assert.Equal(2, state.Seq);
    }

    [Fact]
    public async Task Partitions_of_one_collection_keep_their_own_records_and_seqs()
    {
        await _app.CreateAsync(MainMessages, """{"content":"one"}""");
        await _app.CreateAsync(MainMessages, """{"content":"two"}""");
        await _app.CreateAsync(SideMessages, """{"content":"three"}""");

        var main = await _app.ListAsync(MainMessages);
        var side = await _app.ListAsync(SideMessages);

        Assert.Equal((2, 2L), (main.Items.Count, main.Seq));
        Assert.Equal((1, 1L), (side.Items.Count, side.Seq));
        Assert.Equal(main.Epoch, side.Epoch);
    }

    [Fact]
    public async Task A_stamped_field_is_set_by_the_server()
    {
        var message = await _app.CreateAsync(MainMessages, """{"content":"hi"}""");
        var echoed = await _app.CreateAsync(MainMessages, """{"content":"hi","user":"anonymous"}""");

        Assert.Equal("anonymous", message["user"]!.GetValue<string>());
        Assert.Equal("anonymous", echoed["user"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_client_sending_another_value_for_a_stamped_field_is_refused_and_nothing_changes()
    {
        var message = await _app.CreateAsync(MainMessages, """{"content":"hi"}""");
        var id = message["id"]!.GetValue<string>();

        using var create = await _app.PostAsync(MainMessages, """{"content":"hi","user":"mallory"}""");
        using var patch = await _app.SendAsync(HttpMethod.Patch, $"{MainMessages}/{id}", """{"user":"mallory"}""");

        foreach (var response in new[] { create, patch })
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
            var problem = await ReadJsonAsync(response);
            Assert.True(problem["errors"]!.AsObject().ContainsKey("user"), problem.ToJsonString());
        }

        var state = await _app.ListAsync(MainMessages);
        Assert.Equal(1, state.Seq);
        Assert.True(JsonNode.DeepEquals(message, Assert.Single(state.Items)));
    }

    [Fact]
    public async Task Catch_up_returns_the_changes_after_since_as_events()
    {
        var a = await _app.CreateAsync(Todos, """{"title":"a"}""");
        var b = await _app.CreateAsync(Todos, """{"title":"b"}""");
        using var patched = await _app.SendAsync(HttpMethod.Patch, $"{Todos}/{a["id"]}", """{"title":"a2"}""");
        var epoch = (await _app.ListAsync(Todos)).Epoch;

        using var response = await _app.Http.GetAsync($"{Todos}?since=1&epoch={epoch}");
        using var upToDate = await _app.Http.GetAsync($"{Todos}?since=3&epoch={epoch}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await ReadJsonAsync(response);
        Assert.Equal(3, json["seq"]!.GetValue<long>());
        Assert.Equal(epoch, json["epoch"]!.GetValue<string>());
        var changes = json["changes"]!.AsArray().Select(c => c!.AsObject()).ToList();
        Assert.Equal([2L, 3L], changes.Select(c => c["seq"]!.GetValue<long>()));
        Assert.Equal(["POST", "PUT"], changes.Select(c => c["method"]!.GetValue<string>()));
        Assert.True(JsonNode.DeepEquals(b, changes[0]["body"]));
        Assert.Equal("a2", changes[1]["body"]!["title"]!.GetValue<string>());
        Assert.Empty((await ReadJsonAsync(upToDate))["changes"]!.AsArray());
    }

    [Theory]
    [InlineData("since=1&epoch=not-the-epoch")]
    [InlineData("since=1")]
    [InlineData("since=9&epoch={epoch}")]
    public async Task Catch_up_from_another_epoch_or_beyond_the_log_answers_410(string query)
    {
        await _app.CreateAsync(Todos, """{"title":"a"}""");
        await _app.CreateAsync(Todos, """{"title":"b"}""");
        var epoch = (await _app.ListAsync(Todos)).Epoch;

        using var response = await _app.Http.GetAsync($"{Todos}?{query.Replace("{epoch}", epoch, StringComparison.Ordinal)}");

        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.Equal("application/problem+json", ContentType(response)?.MediaType);
        var problem = await ReadJsonAsync(response);
        Assert.Equal(2, problem["seq"]!.GetValue<long>());
        Assert.Equal(epoch, problem["epoch"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("since=-1")]
    [InlineData("since=abc")]
    [InlineData("since=")]
    public async Task Catch_up_with_an_invalid_since_answers_400(string query)
    {
        using var response = await _app.Http.GetAsync($"{Todos}?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", ContentType(response)?.MediaType);
    }
}

/// <summary>Catch-up against a short change log.</summary>
public sealed class CollectionRetentionTests : IAsyncLifetime
{
    private TidingsApp _app = null!;

    public async Task InitializeAsync() =>
        _app = await TidingsApp.StartAsync(new Dictionary<string, string?> { ["Tidings:Sqlite:RetainedChanges"] = "3" });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Catch_up_from_before_the_retained_log_answers_410_and_from_within_it_succeeds()
    {
        for (var i = 0; i < 6; i++)
        {
            await _app.CreateAsync(Todos, $$"""{"title":"t{{i}}"}""");
        }

        var epoch = (await _app.ListAsync(Todos)).Epoch;

        using var tooOld = await _app.Http.GetAsync($"{Todos}?since=2&epoch={epoch}");
        using var oldestReachable = await _app.Http.GetAsync($"{Todos}?since=3&epoch={epoch}");

        Assert.Equal(HttpStatusCode.Gone, tooOld.StatusCode);
        Assert.Equal(HttpStatusCode.OK, oldestReachable.StatusCode);
        Assert.Equal([4L, 5L, 6L], (await ReadJsonAsync(oldestReachable))["changes"]!.AsArray().Select(c => c!["seq"]!.GetValue<long>()));
    }
}

/// <summary>The REST wire contract on the PostgreSQL store.</summary>
public sealed class PostgresCollectionRestTests : CollectionRestTests
{
    protected override async Task<string?> PostgresAsync() => await PostgresServer.Instance.CreateDatabaseAsync();
}
