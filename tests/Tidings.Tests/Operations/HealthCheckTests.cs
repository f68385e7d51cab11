using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Operations;
using Tidings.Tests.Support;

namespace Tidings.Tests.Operations;

/// <summary>/healthz on a real server: each check in the JSON answer; unhealthy while PostgreSQL is down, healthy once it is back.</summary>
public sealed class HealthCheckTests
{
    private static Task<TidingsApp> StartAsync(string? postgres = null) =>
        TidingsApp.StartAsync(postgres: postgres,
            declare: t =>
            {
                TidingsApp.DeclareDefaults(t);
                t.Services.AddHealthChecks().AddTidings();
            },
            map: app => app.MapTidingsHealthChecks("/healthz"));

    private static async Task<(HttpStatusCode Status, JsonObject Body)> HealthAsync(TidingsApp app)
    {
        using var response = await app.Http.GetAsync("/healthz");
        return (response.StatusCode, await TidingsApp.ReadJsonAsync(response));
    }

    private static JsonObject Check(JsonObject health, string name) =>
        health["checks"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == name)!.AsObject();

    [Fact]
    public async Task A_sqlite_server_is_healthy_and_names_each_check()
    {
        await using var app = await StartAsync();
        await app.CreateAsync(TidingsApp.Todos, """{"title": "milk"}""");

        var (status, health) = await HealthAsync(app);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Healthy", health["status"]!.GetValue<string>());
        Assert.Equal("Healthy", Check(health, TidingsHealthCheckExtensions.StoreCheck)["status"]!.GetValue<string>());
        var writer = Check(health, TidingsHealthCheckExtensions.WriterCheck);
        Assert.Equal("Healthy", writer["status"]!.GetValue<string>());
        Assert.Equal(10_000, writer["data"]!["writeCapacity"]!.GetValue<int>());
        Assert.Equal(0, writer["data"]!["queuedWrites"]!.GetValue<int>());
        Assert.Equal("Healthy", Check(health, TidingsHealthCheckExtensions.TailCheck)["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_postgres_node_is_unhealthy_while_the_database_is_down_and_healthy_again_after()
    {
        using var server = PostgresServer.StartNew(); // its own server: this test stops it
        await using var app = await StartAsync(await server.CreateDatabaseAsync());

        var (status, health) = await HealthAsync(app);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Healthy", health["status"]!.GetValue<string>());
        Assert.True(Check(health, TidingsHealthCheckExtensions.TailCheck)["data"]!["lagMs"] is not null);

        server.Stop();
        await Eventually.PassesAsync(async () =>
        {
            var (down, report) = await HealthAsync(app);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down);
            Assert.Equal("Unhealthy", report["status"]!.GetValue<string>());
            var store = Check(report, TidingsHealthCheckExtensions.StoreCheck);
            Assert.Equal("Unhealthy", store["status"]!.GetValue<string>());
            Assert.False(string.IsNullOrEmpty(store["error"]?.GetValue<string>()));
        }, TimeSpan.FromSeconds(60));

        server.StartServer();
        await Eventually.PassesAsync(async () =>
        {
            var (up, report) = await HealthAsync(app);
            Assert.Equal(HttpStatusCode.OK, up);
            Assert.Equal("Healthy", report["status"]!.GetValue<string>());
        }, TimeSpan.FromSeconds(60));
    }
}
