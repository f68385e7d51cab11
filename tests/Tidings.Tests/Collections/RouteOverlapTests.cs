using Tidings.Collections;
using Tidings.Tests.Support;

namespace Tidings.Tests.Collections;

/// <summary>
/// Two collections whose routes could claim one path would get different rules in REST routing (which prefers
/// literals) and in Bayeux (first declared wins), so overlapping routes are refused when they are declared.
/// </summary>
public sealed class RouteOverlapTests
{
    [Theory]
    [InlineData("/api/teams/{team}/docs", "/api/teams/secret/docs", true)]
    [InlineData("/api/teams/{team}/docs", "/api/{area}/main/docs", true)]
    [InlineData("/api/todos", "/api/todos/{list}", true)] // GET /api/todos/x: a record of the first, or the second's list?
    [InlineData("/api/todos/{list}", "/api/todos", true)]
    [InlineData("/api/users/{user}/tasks", "/api/users/{user}/notes", false)]
    [InlineData("/api/todos", "/api/flows/{flow}/messages", false)]
    [InlineData("/api/todos", "/api/todos/{list}/items", false)]
    public void Routes_overlap_when_one_path_could_belong_to_both(string first, string second, bool overlap)
    {
        Assert.Equal(overlap, new RouteTemplate(first).Overlaps(new RouteTemplate(second)));
        Assert.Equal(overlap, new RouteTemplate(second).Overlaps(new RouteTemplate(first)));
    }

    [Fact]
    public async Task Declaring_an_overlapping_collection_fails_at_startup_naming_both_routes()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TidingsApp.StartAsync(declare: tidings => tidings
            .AddCollection("/api/teams/{team}/docs", docs => docs.Public().Schema(TidingsApp.TodoSchema).Writable("title"))
            .AddCollection("/api/teams/secret/docs", docs => docs.Public().Schema(TidingsApp.TodoSchema).Writable("title"))));

        Assert.Contains("/api/teams/{team}/docs", error.Message, StringComparison.Ordinal);
        Assert.Contains("/api/teams/secret/docs", error.Message, StringComparison.Ordinal);
    }
}
