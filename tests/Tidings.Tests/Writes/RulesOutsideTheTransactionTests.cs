using System.Net;
using System.Text.Json.Nodes;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Writes;

/// <summary>
/// Schema, stamps and access rules run before a write is queued, not inside the store's transaction: a slow rule
/// holds up only its own write. The transaction then checks that the record is still at the version the rules saw.
/// These tests change the record while a write's rules run (from inside a stamp, which would deadlock if rules
/// still ran on the writer): without If-Match the write is checked again and applied on top, with If-Match it is 412.
/// </summary>
public sealed class RulesOutsideTheTransactionTests : IAsyncLifetime
{
    private const string Notes = "/api/notes";
    private TidingsApp _app = null!;
    private Func<Task>? _duringRules;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(declare: tidings => tidings
        .AddCollection(Notes, notes => notes
            .Public()
            .Schema("""{ "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] }""")
            .Writable("text")
            .Stamp("checked", _ =>
            {
                // Runs while the write's rules are checked: the first time, another write changes the record.
                Interlocked.Exchange(ref _duringRules, null)?.Invoke().GetAwaiter().GetResult();
                return true;
            }, onUpdate: true)));

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task A_record_changed_while_a_writes_rules_run_is_checked_again_and_nothing_is_overwritten_silently()
    {
        var note = await _app.CreateAsync(Notes, """{"text":"v1"}""");
        var id = note["id"]!.GetValue<string>();
        _duringRules = async () =>
        {
            using var competing = await _app.SendAsync(HttpMethod.Put, $"{Notes}/{id}", """{"text":"competing"}""");
            Assert.Equal(HttpStatusCode.OK, competing.StatusCode);
        };

        using var response = await _app.SendAsync(HttpMethod.Patch, $"{Notes}/{id}", """{"text":"mine"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var saved = await ReadJsonAsync(response);
        Assert.Equal(("mine", 3L), (saved["text"]!.GetValue<string>(), saved["version"]!.GetValue<long>()));
        var changes = await ReadJsonAsync(await _app.Http.GetAsync($"{Notes}?since=1&epoch={(await _app.ListAsync(Notes)).Epoch}"));
        Assert.Equal(["competing", "mine"], changes["changes"]!.AsArray().Select(c => c!["body"]!["text"]!.GetValue<string>()));
    }

    [Fact]
    public async Task With_if_match_a_record_changed_while_the_rules_run_is_412_and_keeps_the_other_write()
    {
        var note = await _app.CreateAsync(Notes, """{"text":"v1"}""");
        var id = note["id"]!.GetValue<string>();
        _duringRules = async () =>
        {
            using var competing = await _app.SendAsync(HttpMethod.Put, $"{Notes}/{id}", """{"text":"competing"}""");
            Assert.Equal(HttpStatusCode.OK, competing.StatusCode);
        };

        using var response = await _app.SendAsync(HttpMethod.Put, $"{Notes}/{id}", """{"text":"mine"}""", ifMatch: "\"1\"");

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        var current = await ReadJsonAsync(await _app.Http.GetAsync($"{Notes}/{id}"));
        Assert.Equal(("competing", 2L), (current["text"]!.GetValue<string>(), current["version"]!.GetValue<long>()));
    }
}
