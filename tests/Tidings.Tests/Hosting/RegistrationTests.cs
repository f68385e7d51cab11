using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Collections;
using Tidings.Sqlite;
using Tidings.Tests.Support;

namespace Tidings.Tests.Hosting;

/// <summary>What AddTidings and MapTidings do when an app wires them in unusual ways: never silently less than asked.</summary>
public sealed class RegistrationTests
{
    [Fact]
    public async Task A_second_AddTidings_call_adds_its_collections_to_the_same_app()
    {
        await using var app = await TidingsApp.StartAsync(declare: tidings =>
        {
            TidingsApp.DeclareDefaults(tidings);
            tidings.Services.AddTidings().AddCollection("/api/extra", extra => extra.Public().Schema(TidingsApp.TodoSchema).Writable("title"));
        });

        Assert.NotNull(app.Services.GetRequiredService<CollectionRegistry>().Resolve("/api/extra"));
        Assert.Equal(HttpStatusCode.Created, (await app.PostAsync("/api/extra", """{"title":"kept"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await app.PostAsync(TidingsApp.Todos, """{"title":"also"}""")).StatusCode);
    }

    [Fact]
    public void MapTidings_inside_a_route_group_fails_loudly_instead_of_mapping_endpoints_without_their_rate_limit()
    {
        using var folder = new TempDirectory();
        var builder = WebApplication.CreateBuilder();
        builder.Services.AddTidings().UseSqlite(folder.File("t.db")).AddCollection(TidingsApp.Todos, todos => todos.Public().Schema(TidingsApp.TodoSchema).Writable("title"));
        using var app = builder.Build();

        var error = Assert.Throws<InvalidOperationException>(() => app.MapGroup("/v1").MapTidings());

        Assert.Contains("rate-limiting", error.Message, StringComparison.Ordinal);
    }
}
