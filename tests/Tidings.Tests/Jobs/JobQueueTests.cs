using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Jobs;
using Tidings.Tests.Support;

namespace Tidings.Tests.Jobs;

/// <summary>
/// Queues on a real store behind a real server: jobs are live records whose every state change is an event; REST
/// enqueues and lets external workers claim, heartbeat, finish and fail with leases; in-process workers run jobs here.
/// Runs on SQLite and (derived class) on PostgreSQL.
/// </summary>
public class JobQueueTests : IAsyncLifetime
{
    private const string Echo = "/api/queues/echo/jobs";
    private const string Work = "/api/queues/work/jobs";
    private const string PayloadSchema = """{ "type": "object", "properties": { "n": { "type": "integer" } }, "required": ["n"] }""";

    private TidingsApp App = null!;

    public async Task InitializeAsync() => App = await StartAsync(await PostgresAsync());

    public async Task DisposeAsync() => await App.DisposeAsync();

    /// <summary>A PostgreSQL database to run on instead of SQLite.</summary>
    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    private static Task<TidingsApp> StartAsync(string? postgres) => TidingsApp.StartAsync(declare: tidings =>
    {
        SecuredApp.Declare(tidings);
        tidings
            // External workers: any signed-in user enqueues and sees their own jobs; only "worker" works them.
            .AddQueue("echo", q => q
                .Schema(PayloadSchema)
                .MaxAttempts(2)
                .Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20))
                .Access(a => a.List(AccessRule.SignedIn).Read(AccessRule.RecordUser("requestedBy").Or(IsWorker))
                    .Enqueue(AccessRule.SignedIn).Cancel(AccessRule.RecordUser("requestedBy")).Work(IsWorker)))
            // In-process worker.
            .AddQueue("work", q => q
                .Schema(PayloadSchema)
                .Access(a => a.List(AccessRule.SignedIn).Enqueue(AccessRule.SignedIn).Cancel(AccessRule.SignedIn))
                .Worker<DoublingWorker, DoublingPayload>(concurrency: 3, lease: TimeSpan.FromSeconds(3)));
    }, map: SecuredApp.MapSignIn, postgres: postgres);

    private static readonly AccessRule IsWorker = new(c => c.UserName == "worker", "the worker");

    private static async Task<JsonObject> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<JsonObject> EnqueueAsync(HttpClient http, string queuePath, JsonObject request, HttpStatusCode expected = HttpStatusCode.Created) =>
        await Json(await http.PostAsJsonAsync(queuePath, request), expected);

    private async Task<JsonArray> ClaimAsync(HttpClient http, int max, int leaseSeconds = 30) =>
        (await Json(await http.PostAsJsonAsync("/api/queues/echo/claim", new JsonObject { ["max"] = max, ["leaseSeconds"] = leaseSeconds }),
            HttpStatusCode.OK))["jobs"]!.AsArray();

    private static Task<HttpResponseMessage> LeaseCallAsync(HttpClient http, JsonNode job, string action, JsonObject? extra = null)
    {
        var body = extra ?? [];
        body["lease"] ??= job["lease"]!.GetValue<string>();
        return http.PostAsJsonAsync($"{Echo}/{job["id"]}/{action}", body);
    }

    [Fact]
    public async Task An_external_worker_claims_reports_progress_and_finishes_a_job_and_subscribers_see_each_state_live()
    {
        var ada = App.ClientFor("ada");
        var worker = App.ClientFor("worker");
        var watcher = new BayeuxClient(App.Http);
        await watcher.HandshakeAsync(new JsonObject { ["token"] = App.TokenFor("ada") });
        BayeuxClient.Succeeded(await watcher.SubscribeAsync(Echo, new JsonObject { ["snapshot"] = true }));
        Assert.Equal("SNAPSHOT", (await watcher.NextAsync()).Method);

        var job = await EnqueueAsync(ada, Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 7 }, ["priority"] = 5 });
        Assert.Equal(("queued", 0, 2, "ada", 5), (job["state"]!.GetValue<string>(), job["attempts"]!.GetValue<int>(),
            job["maxAttempts"]!.GetValue<int>(), job["requestedBy"]!.GetValue<string>(), job["priority"]!.GetValue<int>()));
        Assert.Null(job["lease"]);

        var claimed = Assert.Single(await ClaimAsync(worker, 10));
        Assert.Equal((job["id"]!.GetValue<string>(), "running", 1), (claimed!["id"]!.GetValue<string>(), claimed["state"]!.GetValue<string>(),
            claimed["attempts"]!.GetValue<int>()));
        Assert.Empty(await ClaimAsync(worker, 10)); // never twice at once
        await Json(await LeaseCallAsync(worker, claimed, "heartbeat", new JsonObject { ["progress"] = new JsonObject { ["done"] = 50 } }), HttpStatusCode.OK);
        var finished = await Json(await LeaseCallAsync(worker, claimed, "finish", new JsonObject { ["result"] = new JsonObject { ["n"] = 14 } }), HttpStatusCode.OK);
        Assert.Equal(("succeeded", 14), (finished["state"]!.GetValue<string>(), finished["result"]!["n"]!.GetValue<int>()));
        await Json(await LeaseCallAsync(worker, claimed, "finish", new JsonObject { ["result"] = new JsonObject { ["n"] = 14 } }), HttpStatusCode.OK); // harmless

        var events = await watcher.NextAsync(4);
        Assert.Equal(["queued", "running", "running", "succeeded"], events.Select(e => e.Body["state"]!.GetValue<string>()));
        Assert.Equal(50, events[2].Body["progress"]!["done"]!.GetValue<int>());
        Assert.All(events, e => Assert.Null(e.Body["lease"])); // the lease is the worker's secret
        await watcher.AssertNothingWaitingAsync();
    }

    [Fact]
    public async Task A_key_makes_an_enqueue_idempotent_while_its_job_is_unfinished()
    {
        var ada = App.ClientFor("ada");
        var request = new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 }, ["key"] = "order-42" };
        var first = await EnqueueAsync(ada, Echo, request);
        var repeat = await EnqueueAsync(ada, Echo, request.DeepClone().AsObject(), HttpStatusCode.OK);
        Assert.Equal(first["id"]!.GetValue<string>(), repeat["id"]!.GetValue<string>());

        var worker = App.ClientFor("worker");
        var claimed = Assert.Single(await ClaimAsync(worker, 10))!;
        await Json(await LeaseCallAsync(worker, claimed, "finish", new JsonObject { ["result"] = null }), HttpStatusCode.OK);
        var again = await EnqueueAsync(ada, Echo, request.DeepClone().AsObject());
        Assert.NotEqual(first["id"]!.GetValue<string>(), again["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_failed_attempt_is_retried_after_a_backoff_then_dead_and_a_dead_job_can_be_re_driven()
    {
        var ada = App.ClientFor("ada");
        var worker = App.ClientFor("worker");
        var job = await EnqueueAsync(ada, Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 } });

        var first = Assert.Single(await ClaimAsync(worker, 1))!;
        var failed = await Json(await LeaseCallAsync(worker, first, "fail", new JsonObject { ["error"] = "boom" }), HttpStatusCode.OK);
        Assert.Equal(("queued", "boom"), (failed["state"]!.GetValue<string>(), failed["error"]!.GetValue<string>()));
        Assert.True(failed["runAt"]!.GetValue<DateTimeOffset>() > job["runAt"]!.GetValue<DateTimeOffset>());
        await Json(await LeaseCallAsync(worker, first, "heartbeat"), HttpStatusCode.Conflict); // that lease is spent

        JsonArray second = [];
        await Eventually.UntilAsync(() => (second = ClaimAsync(worker, 1).Result).Count == 1, "the retry to come due");
        var dead = await Json(await LeaseCallAsync(worker, second[0]!, "fail", new JsonObject { ["error"] = "boom again" }), HttpStatusCode.OK);
        Assert.Equal(("dead", 2), (dead["state"]!.GetValue<string>(), dead["attempts"]!.GetValue<int>()));

        var redriven = await Json(await ada.PostAsync($"{Echo}/{job["id"]}/retry", null), HttpStatusCode.OK);
        Assert.Equal(("queued", 0), (redriven["state"]!.GetValue<string>(), redriven["attempts"]!.GetValue<int>()));
        Assert.Single(await ClaimAsync(worker, 1));
    }

    [Fact]
    public async Task A_lease_that_runs_out_puts_the_job_back_as_an_attempt_and_the_old_lease_is_refused()
    {
        var worker = App.ClientFor("worker");
        await EnqueueAsync(App.ClientFor("ada"), Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 } });
        var stalled = Assert.Single(await ClaimAsync(worker, 1, leaseSeconds: 1))!;

        JsonArray again = [];
        await Eventually.UntilAsync(() => (again = ClaimAsync(worker, 1).Result).Count == 1, "the stalled job to be taken back");
        Assert.Equal(2, again[0]!["attempts"]!.GetValue<int>());
        await Json(await LeaseCallAsync(worker, stalled, "finish", new JsonObject { ["result"] = 1 }), HttpStatusCode.Conflict);
        await Json(await LeaseCallAsync(worker, again[0]!, "finish", new JsonObject { ["result"] = 1 }), HttpStatusCode.OK);
    }

    [Fact]
    public async Task Concurrent_workers_claim_every_job_exactly_once()
    {
        var ada = App.ClientFor("ada");
        var ids = new ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                ids.Add((await EnqueueAsync(ada, Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = i } }))["id"]!.GetValue<string>());
            }
        })));

        var done = new ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var worker = App.ClientFor("worker");
            while (true)
            {
                var jobs = await ClaimAsync(worker, 3);
                if (jobs.Count == 0 && done.Count >= 100)
                {
                    return;
                }

                foreach (var job in jobs)
                {
                    await Json(await LeaseCallAsync(worker, job!, "finish", new JsonObject { ["result"] = w }), HttpStatusCode.OK);
                    done.Add(job!["id"]!.GetValue<string>());
                }
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(ids.Order(), done.Order()); // every job, once
    }

    [Fact]
    public async Task An_in_process_worker_runs_jobs_with_progress_and_result_and_a_cancelled_job_sees_its_token_fire()
    {
        var ada = App.ClientFor("ada");
        var jobs = new List<JsonObject>();
        for (var i = 1; i <= 6; i++)
        {
            jobs.Add(await EnqueueAsync(ada, Work, new JsonObject { ["payload"] = new JsonObject { ["n"] = i } }));
        }

        foreach (var job in jobs)
        {
            JsonObject current = job;
            await Eventually.UntilAsync(() => (current = Json(ada.GetAsync($"{Work}/{job["id"]}").Result, HttpStatusCode.OK).Result)["state"]!.GetValue<string>() == "succeeded",
                "the worker to finish " + job["payload"]!.ToJsonString());
            Assert.Equal(job["payload"]!["n"]!.GetValue<int>() * 2, current["result"]!["doubled"]!.GetValue<int>());
            Assert.Equal("halfway", current["progress"]!.GetValue<string>());
        }

        var waiting = await EnqueueAsync(ada, Work, new JsonObject { ["payload"] = new JsonObject { ["n"] = -1 } }); // waits for its token
        await Eventually.UntilAsync(() => Json(ada.GetAsync($"{Work}/{waiting["id"]}").Result, HttpStatusCode.OK).Result["state"]!.GetValue<string>() == "running",
            "the waiting job to run");
        var cancelled = await Json(await ada.PostAsync($"{Work}/{waiting["id"]}/cancel", null), HttpStatusCode.OK);
        Assert.Equal("cancelled", cancelled["state"]!.GetValue<string>());
        await Eventually.UntilAsync(() => DoublingWorker.SawCancellation.Contains(waiting["id"]!.GetValue<string>()), "the worker's token to fire");
        await Json(await ada.PostAsync($"{Work}/{waiting["id"]}/cancel", null), HttpStatusCode.Conflict); // finished: cannot cancel again
    }

    [Fact]
    public async Task Jobs_enqueued_together_are_each_a_job_a_repeated_key_answers_the_first_and_one_refused_request_enqueues_none()
    {
        var service = App.Services.GetRequiredService<JobService>();
        JsonObject Request(int n, string? key = null) =>
            key is null ? new() { ["payload"] = new JsonObject { ["n"] = n } } : new() { ["payload"] = new JsonObject { ["n"] = n }, ["key"] = key };

        var batch = await service.EnqueueManyAsync("echo", [Request(1, "k"), Request(2, "k"), Request(3)], null, trusted: true, CancellationToken.None);

        Assert.Null(batch.Refusal);
        Assert.Equal([JobStatus.Created, JobStatus.Existing, JobStatus.Created], batch.Jobs.Select(j => j.Status));
        Assert.Equal(batch.Jobs[0].Job!["id"]!.GetValue<string>(), batch.Jobs[1].Job!["id"]!.GetValue<string>());
        var refused = await service.EnqueueManyAsync("echo", [Request(4), new JsonObject { ["payload"] = new JsonObject { ["n"] = "four" } }], null,
            trusted: true, CancellationToken.None);

        Assert.Equal(1, refused.RefusedIndex);
        Assert.Equal(JobStatus.Invalid, refused.Refusal!.Status);
        var claimed = await ClaimAsync(App.ClientFor("worker"), 10);
        Assert.Equal([1, 3], claimed.Select(j => j!["payload"]!["n"]!.GetValue<int>()).Order());
    }

    [Fact]
    public async Task Jobs_finished_together_each_succeed_and_a_stale_lease_among_them_holds_back_only_its_own()
    {
        var service = App.Services.GetRequiredService<JobService>();
        await service.EnqueueManyAsync("echo", [new() { ["payload"] = new JsonObject { ["n"] = 1 } }, new() { ["payload"] = new JsonObject { ["n"] = 2 } }],
            null, trusted: true, CancellationToken.None);
        var (_, claimed) = await service.ClaimAsync("echo", 2, TimeSpan.FromSeconds(30), null, trusted: true, CancellationToken.None);
        Assert.Equal(2, claimed.Count);
        var (first, second) = (claimed[0], claimed[1]);

        var outcomes = await service.FinishManyAsync("echo", [
            new JobFinish(first.Job["id"]!.GetValue<string>(), first.Lease, new JsonObject { ["ok"] = 1 }),
            new JobFinish(second.Job["id"]!.GetValue<string>(), "not-the-lease", null),
        ], CancellationToken.None);

        Assert.Equal([JobStatus.Updated, JobStatus.StaleLease], outcomes.Select(o => o.Status));
        Assert.Equal(JobService.Succeeded, outcomes[0].Job!["state"]!.GetValue<string>());
        Assert.Equal(1, outcomes[0].Job!["result"]!["ok"]!.GetValue<int>());
        Assert.Equal(JobService.Running, outcomes[1].Job!["state"]!.GetValue<string>());
        var later = await service.FinishAsync("echo", second.Job["id"]!.GetValue<string>(), second.Lease, null, CancellationToken.None);
        Assert.Equal(JobService.Succeeded, later.Job!["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_job_requests_are_refused_clearly_and_change_nothing()
    {
        var ada = App.ClientFor("ada");
        var worker = App.ClientFor("worker");
        await Json(await ada.PostAsJsonAsync("/api/queues/nope/jobs", new JsonObject { ["payload"] = new JsonObject() }), HttpStatusCode.NotFound);
        await Json(await ada.PostAsJsonAsync(Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = "x" } }), HttpStatusCode.UnprocessableEntity);
        await Json(await ada.PostAsJsonAsync(Echo, new JsonObject { ["payload"] = 3 }), HttpStatusCode.UnprocessableEntity);
        await Json(await ada.PostAsJsonAsync(Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 }, ["runAt"] = "soon" }), HttpStatusCode.UnprocessableEntity);
        await Json(await ada.PostAsJsonAsync(Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 }, ["colour"] = "red" }), HttpStatusCode.UnprocessableEntity);
        await Json(await ada.PostAsync(Echo, new StringContent(new string('x', 100_000), System.Text.Encoding.UTF8, "application/json")), HttpStatusCode.RequestEntityTooLarge);
        await Json(await ada.PostAsync(Echo, new StringContent("{", System.Text.Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        await Json(await App.ClientFor(null).PostAsJsonAsync(Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 } }), HttpStatusCode.Unauthorized);
        await Json(await ada.PostAsJsonAsync("/api/queues/echo/claim", new JsonObject { ["max"] = 1 }), HttpStatusCode.Forbidden); // ada may not work
        await Json(await worker.PostAsJsonAsync("/api/queues/echo/claim", new JsonObject { ["max"] = 0 }), HttpStatusCode.UnprocessableEntity);
        Assert.Empty((await Json(await ada.GetAsync(Echo), HttpStatusCode.OK))["items"]!.AsArray()); // nothing was enqueued

        var job = await EnqueueAsync(ada, Echo, new JsonObject { ["payload"] = new JsonObject { ["n"] = 1 } });
        await Json(await LeaseCallAsync(worker, job, "finish", new JsonObject { ["lease"] = "forged" }), HttpStatusCode.Conflict);
        await Json(await worker.PostAsJsonAsync($"{Echo}/{job["id"]}/finish", new JsonObject()), HttpStatusCode.UnprocessableEntity);
        await Json(await App.ClientFor("bob").PostAsync($"{Echo}/{job["id"]}/cancel", null), HttpStatusCode.NotFound); // bob cannot see ada's job
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await ada.PutAsJsonAsync(Echo + "/" + job["id"], new JsonObject())).StatusCode); // jobs change only through the job API
        Assert.Empty((await Json(await App.ClientFor("bob").GetAsync(Echo), HttpStatusCode.OK))["items"]!.AsArray());
        Assert.Single((await Json(await ada.GetAsync(Echo), HttpStatusCode.OK))["items"]!.AsArray());
    }
}

/// <summary>The queues on PostgreSQL: claims take rows FOR UPDATE SKIP LOCKED.</summary>
public sealed class PostgresJobQueueTests : JobQueueTests
{
    protected override async Task<string?> PostgresAsync() => await PostgresServer.Instance.CreateDatabaseAsync();
}

public sealed record DoublingPayload(int N);

/// <summary>Doubles n, reporting progress halfway; a negative n waits until its job is cancelled.</summary>
public sealed class DoublingWorker : IJobWorker<DoublingPayload>
{
    public static readonly ConcurrentBag<string> SawCancellation = [];

    public async Task<JsonNode?> RunAsync(JobContext<DoublingPayload> job, CancellationToken cancellationToken)
    {
        if (job.Payload.N < 0)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                SawCancellation.Add(job.Id);
                throw;
            }
        }

        await job.ReportProgressAsync("halfway");
        return new JsonObject { ["doubled"] = job.Payload.N * 2, ["by"] = job.RequestedBy };
    }
}
