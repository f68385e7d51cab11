using System.Text.Json.Nodes;
using Tidings.Access;
using Tidings.Jobs;
using Tidings.Postgres;
using Tidings.Storage;
using Tidings.Tests.Support;

namespace Tidings.Tests.Jobs;

/// <summary>Recurring jobs: cron ticks, and each tick enqueued once however many nodes sweep at that moment.</summary>
public sealed class RecurringJobTests
{
    [Theory]
    [InlineData("* * * * *", "2026-12-02T10:15:30Z", "2026-12-02T10:16:00Z")]
    [InlineData("*/15 * * * *", "2026-12-02T10:15:00Z", "2026-12-02T10:30:00Z")]
    [InlineData("0 9 * * 1-5", "2026-12-04T09:00:00Z", "2026-12-07T09:00:00Z")] // Friday 9:00 → Monday
    [InlineData("30 2 1 * *", "2026-12-02T00:00:00Z", "2027-01-01T02:30:00Z")]
    [InlineData("0 0 * * 0", "2026-12-02T00:00:00Z", "2026-12-06T00:00:00Z")] // next Sunday
    [InlineData("5,10 8-9 * * *", "2026-12-02T08:10:00Z", "2026-12-02T09:05:00Z")]
    public void A_cron_schedule_gives_its_next_tick(string cron, string after, string next) =>
        Assert.Equal(DateTimeOffset.Parse(next), CronSchedule.Parse(cron).Next(DateTimeOffset.Parse(after)));

    [Theory]
    [InlineData("* * * *")]
    [InlineData("60 * * * *")]
    [InlineData("* * * * mon")]
    [InlineData("*/0 * * * *")]
    public void A_malformed_cron_schedule_is_refused_when_declared(string cron) =>
        Assert.Throws<FormatException>(() => CronSchedule.Parse(cron));

    [Fact]
    public async Task Three_nodes_sweeping_at_every_tick_enqueue_each_tick_once()
    {
        var database = await PostgresServer.Instance.CreateDatabaseAsync();
        var clock = new Clock(DateTimeOffset.Parse("2026-12-02T10:00:30Z"));
        var queues = new QueueRegistry();
        var builder = new QueueBuilder("reports");
        builder.Access(a => a.List(AccessRule.Anyone)).Recurring("minutely", "* * * * *", new JsonObject { ["kind"] = "summary" });
        queues.Add(builder.Build());
        var nodes = new List<(PostgresStore Store, JobService Jobs)>();
        for (var i = 0; i < 3; i++)
        {
            var store = new PostgresStore(new PostgresStoreOptions { ConnectionString = database }, clock);
            await store.InitializeAsync(CancellationToken.None);
            nodes.Add((store, new JobService(store, queues, clock)));
        }

        try
        {
            await Task.WhenAll(nodes.Select(n => n.Jobs.SweepAsync(CancellationToken.None))); // first sight: nothing fires
            for (var tick = 1; tick <= 3; tick++)
            {
                clock.Now = clock.Now.AddMinutes(1);
                await Task.WhenAll(nodes.Select(n => n.Jobs.SweepAsync(CancellationToken.None)));
            }

            var jobs = await nodes[0].Store.ReadAsync(r => r.List("/api/queues/reports/jobs", 100), CancellationToken.None);
            Assert.Equal(3, jobs.Count);
            Assert.All(jobs, j => Assert.Equal("summary", JsonNode.Parse(j.Json)!["payload"]!["kind"]!.GetValue<string>()));
        }
        finally
        {
            foreach (var (store, _) in nodes)
            {
                await store.DisposeAsync();
            }
        }
    }

    private sealed class Clock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
