using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Http;

/// <summary>Invariant 6: bad input gets a clear problem+json answer and changes nothing.</summary>
public class BadInputTests : IAsyncLifetime
{
    private TidingsApp _app = null!;
    private JsonObject _existing = null!;

    public async Task InitializeAsync()
    {
        _app = await TidingsApp.StartAsync(new Dictionary<string, string?> { ["Tidings:MaxBodyBytes"] = "512" }, postgres: await PostgresAsync());
        _existing = await _app.CreateAsync(Todos, """{"title":"keep me","order":1}""");
        await _app.CreateAsync(MainMessages, """{"content":"keep me too"}""");
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    /// <summary>A PostgreSQL database to run on instead of SQLite (the same refusals, another store).</summary>
    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    private string ExistingPath => $"{Todos}/{_existing["id"]}";

    /// <summary>Runs <paramref name="send"/> and checks the answer is problem+json with the status, and that no collection changed.</summary>
    private async Task<JsonObject> AssertRefusedAsync(HttpStatusCode status, Func<Task<HttpResponseMessage>> send)
    {
        var todos = await _app.ListAsync(Todos);
        var messages = await _app.ListAsync(MainMessages);

        using var response = await send();

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", ContentType(response)?.MediaType);
        var problem = JsonNode.Parse(text)!.AsObject();
        Assert.Equal((int)status, problem["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrWhiteSpace(problem["title"]?.GetValue<string>()));

        var todosAfter = await _app.ListAsync(Todos);
        var messagesAfter = await _app.ListAsync(MainMessages);
        Assert.Equal(todos.Seq, todosAfter.Seq);
        Assert.True(JsonNode.DeepEquals(todos.Items, todosAfter.Items));
        Assert.Equal(messages.Seq, messagesAfter.Seq);
        Assert.True(JsonNode.DeepEquals(messages.Items, messagesAfter.Items));
        return problem;
    }

    [Theory]
    [InlineData("""{}""", "title")]
    [InlineData("""{"title":""}""", "title")]
    [InlineData("""{"title":5}""", "title")]
    [InlineData("""{"title":"x","completed":"yes"}""", "completed")]
    [InlineData("""{"title":"x","order":"first"}""", "order")]
    [InlineData("""{"title":"x","color":"red"}""", "color")]
    [InlineData("""{"id":"not-a-uuid","title":"x"}""", "id")]
    [InlineData("""{"id":42,"title":"x"}""", "id")]
    public async Task An_invalid_create_answers_422_naming_the_field(string body, string field)
    {
        var problem = await AssertRefusedAsync(HttpStatusCode.UnprocessableEntity, () => _app.PostAsync(Todos, body));

        var errors = problem["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(field), problem.ToJsonString());
        Assert.All(errors[field]!.AsArray(), m => Assert.False(string.IsNullOrWhiteSpace(m!.GetValue<string>())));
    }

    [Fact]
    public async Task One_answer_lists_every_field_to_fix()
    {
        var problem = await AssertRefusedAsync(HttpStatusCode.UnprocessableEntity,
            () => _app.PostAsync(Todos, """{"completed":"no","color":"red"}"""));

        var errors = problem["errors"]!.AsObject();
        Assert.True(errors.ContainsKey("title") && errors.ContainsKey("completed") && errors.ContainsKey("color"), problem.ToJsonString());
    }

    [Theory]
    [InlineData("PUT", """{"title":""}""", "title")]
    [InlineData("PUT", """{"completed":true}""", "title")]
    [InlineData("PATCH", """{"title":null}""", "title")]
    [InlineData("PATCH", """{"completed":1}""", "completed")]
    [InlineData("PATCH", """{"color":"red"}""", "color")]
    [InlineData("PATCH", """{"id":"5b0a6c1e-0000-4000-8000-000000000000"}""", "id")]
    public async Task An_invalid_update_answers_422_naming_the_field(string method, string body, string field)
    {
        var problem = await AssertRefusedAsync(HttpStatusCode.UnprocessableEntity,
            () => _app.SendAsync(new HttpMethod(method), ExistingPath, body, ifMatch: "\"1\""));

        Assert.True(problem["errors"]!.AsObject().ContainsKey(field), problem.ToJsonString());
    }

    [Theory]
    [InlineData("""{"title":""")]
    [InlineData("""{"title":"x",}""")]
    [InlineData("not json")]
    [InlineData("")]
    public async Task Malformed_json_answers_400(string body)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.PostAsync(Todos, body));
    }

    [Theory]
    [InlineData("""[{"title":"x"}]""")]
    [InlineData("\"x\"")]
    [InlineData("null")]
    [InlineData("42")]
    public async Task A_body_that_is_not_an_object_answers_400(string body)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.PostAsync(Todos, body));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Put, ExistingPath, body));
    }

    [Fact]
    public async Task A_body_over_the_limit_answers_413()
    {
        var big = $$"""{"title":"{{new string('x', 600)}}"}""";

        var problem = await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () => _app.PostAsync(Todos, big));

        Assert.Contains("MaxBodyBytes", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_answers_413()
    {
        var bytes = Encoding.UTF8.GetBytes($$"""{"title":"{{new string('x', 2000)}}"}""");
        using var content = new StreamContent(new MemoryStream(bytes));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        await AssertRefusedAsync(HttpStatusCode.RequestEntityTooLarge, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, Todos) { Content = content };
            request.Headers.TransferEncodingChunked = true;
            return _app.Http.SendAsync(request);
        });
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/xml")]
    public async Task An_unsupported_content_type_answers_415(string mediaType)
    {
        await AssertRefusedAsync(HttpStatusCode.UnsupportedMediaType, () => _app.Http.PostAsync(Todos, Json("""{"title":"x"}""", mediaType)));
    }

    // Issue 16, defect 6: a Content-Type that cannot be parsed is not "no Content-Type".
    [Theory]
    [InlineData("text/plain;;;")]
    [InlineData("json")]
    [InlineData("application/")]
    [InlineData("/json")]
    public async Task A_malformed_content_type_answers_415(string contentType)
    {
        await AssertRefusedAsync(HttpStatusCode.UnsupportedMediaType, () =>
        {
            var content = new ByteArrayContent("""{"title":"x"}"""u8.ToArray());
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            return _app.Http.PostAsync(Todos, content);
        });
    }

    // Issue 16, defect 3: these reached unhandled exceptions (500) or were stored with a replacement character.
    [Theory]
    [InlineData("""{"title":"a","title":"b"}""")]
    [InlineData("""{"title":"a","completed":true,"\u0063ompleted":false}""")]
    [InlineData("""{"title":"a\ud800"}""")]
    [InlineData("""{"title":"\udc00a"}""")]
    [InlineData("""{"title":"a","order":1,"\ud800":2}""")]
    public async Task Duplicate_keys_and_lone_surrogates_answer_400(string body)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.PostAsync(Todos, body));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Patch, ExistingPath, body));
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3 })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]
    public async Task Invalid_utf8_answers_400_instead_of_storing_a_replacement_character(byte[] bad)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () =>
        {
            var content = new ByteArrayContent([.. "{\"title\":\"a"u8.ToArray(), .. bad, .. "\"}"u8.ToArray()]);
            content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
            return _app.Http.PostAsync(Todos, content);
        });
    }

    // Issue 16, defect 6: stored verbatim, 1e400 read as Infinity in JavaScript.
    [Theory]
    [InlineData("1e400")]
    [InlineData("-1e400")]
    [InlineData("1e999999")]
    public async Task A_number_beyond_a_double_answers_422_naming_the_field(string number)
    {
        var problem = await AssertRefusedAsync(HttpStatusCode.UnprocessableEntity, () => _app.PostAsync(Todos, $$"""{"title":"x","order":{{number}}}"""));

        Assert.True(problem["errors"]!.AsObject().ContainsKey("order"), problem.ToJsonString());
    }

    [Fact]
    public async Task A_json_suffixed_content_type_is_accepted()
    {
        using var response = await _app.Http.PostAsync(Todos, Json("""{"title":"x"}""", "application/merge-patch+json"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    public async Task A_malformed_record_id_in_the_url_answers_400(string method)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest,
            () => _app.SendAsync(new HttpMethod(method), $"{Todos}/not-a-uuid", method is "PUT" or "PATCH" ? """{"title":"x"}""" : null));
    }

    [Theory]
    [InlineData("GET", "/api/nothing")]
    [InlineData("POST", "/api/nothing")]
    [InlineData("GET", "/api/todos/x/y")]
    [InlineData("GET", "/api/flows/main")]
    [InlineData("POST", "/api/flows/main/messages/extra/segments")]
    public async Task An_unknown_collection_path_answers_404(string method, string path)
    {
        var before = await _app.ListAsync(Todos);

        using var response = await _app.SendAsync(new HttpMethod(method), path, method == "POST" ? """{"title":"x"}""" : null);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(before.Seq, (await _app.ListAsync(Todos)).Seq);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("W/\"1\"")]
    [InlineData("\"one\"")]
    [InlineData("\"\"")]
    [InlineData("\"1\", \"2\"")]
    [InlineData("\" 1\"")] // issue 16: strong comparison — only the ETag exactly as sent matches
    [InlineData("\"1 \"")]
    [InlineData("\"+1\"")]
    [InlineData("\"01\"")]
    [InlineData("\"1\"x")]
    public async Task A_malformed_if_match_answers_400(string ifMatch)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Patch, ExistingPath, """{"title":"y"}""", ifMatch));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Delete, ExistingPath, ifMatch: ifMatch));
    }

    [Theory]
    [InlineData("GET", "/api/flows/a.b/messages")]
    [InlineData("POST", "/api/flows/a.b/messages")]
    [InlineData("POST", "/api/flows/*/messages")]
    [InlineData("POST", "/api/flows/**/messages")]
    [InlineData("POST", "/api/flows/a%20b/messages")]
    [InlineData("GET", "/api/flows/a%2Fb/messages")]
    public async Task An_invalid_route_value_answers_400(string method, string path)
    {
        await AssertRefusedAsync(HttpStatusCode.BadRequest,
            () => _app.SendAsync(new HttpMethod(method), path, method == "POST" ? """{"content":"x"}""" : null));
    }

    [Fact]
    public async Task A_path_longer_than_a_channel_name_answers_400_and_one_at_the_limit_is_stored()
    {
        // The path is the event's channel: one over ChannelName.MaxLength (1024) could be stored but never published.
        var atLimit = "/api/flows/" + new string('f', 1004) + "/messages";
        var overLimit = "/api/flows/" + new string('f', 1005) + "/messages";
        Assert.Equal(1024, atLimit.Length);

        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Post, overLimit, """{"content":"x"}"""));
        await AssertRefusedAsync(HttpStatusCode.BadRequest, () => _app.SendAsync(HttpMethod.Get, overLimit));

        using var created = await _app.SendAsync(HttpMethod.Post, atLimit, """{"content":"x"}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Single((await _app.ListAsync(atLimit)).Items);
    }
}

/// <summary>Invariant 6 on the PostgreSQL store.</summary>
public sealed class PostgresBadInputTests : BadInputTests
{
    protected override async Task<string?> PostgresAsync() => await PostgresServer.Instance.CreateDatabaseAsync();
}
