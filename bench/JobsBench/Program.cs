using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Tidings;
using Tidings.Access;
using Tidings.Bayeux.Server;
using Tidings.Bench;
using Tidings.Jobs;
using Tidings.Postgres;
using Tidings.Sqlite;

// Durable job queues, jobs/s (bench/run.sh: SCENARIOS=jobs). Each case hosts a fresh Tidings app in this process, on
// Kestrel at 127.0.0.1 port 0, over a fresh store (a SQLite file in a temp folder, or a new database of --postgres):
//   inproc-cN: queue 'q' with a no-op IJobWorker<T> (returns {"ok": true}) at concurrency N; --jobs jobs enqueued from
//              server code (JobService.EnqueueAsync, trusted) by --enqueuers concurrent loops; jobs/s from the first
//              enqueue to the last 'succeeded' event on the queue's channel; enqueue → worker start p50/p99 (the
//              payload carries the enqueuer's timestamp, taken just before EnqueueAsync, i.e. at createdAt).
//   http-wN:   the same enqueue, no in-process worker; N external workers over HTTP (one keep-alive HttpClient each)
//              loop POST /api/queues/h/claim {"max": 50} then POST …/jobs/{id}/finish per job (queue Work = anyone).
//   inproc-cN-bulkB: the same, each enqueuer enqueuing B jobs per call (JobService.EnqueueManyAsync: one transaction).
//   JobsBench --backend sqlite|postgres [--postgres ADMIN_CONNECTION] [--jobs 20000] [--http-jobs 5000]
//             [--concurrency 16,64] [--enqueue-batch 1,100] [--enqueuers 8] [--http-workers 4] [--case-timeout 45] [--out results.jsonl]
var values = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    values[args[i].TrimStart('-')] = args[i + 1];
}

string Arg(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;
var backend = Arg("backend", "sqlite");
var admin = Arg("postgres", "");
var jobs = int.Parse(Arg("jobs", "20000"), CultureInfo.InvariantCulture);
var httpJobs = int.Parse(Arg("http-jobs", "5000"), CultureInfo.InvariantCulture);
var concurrencies = Arg("concurrency", "16,64").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
var enqueuers = int.Parse(Arg("enqueuers", "8"), CultureInfo.InvariantCulture);
var batches = Arg("enqueue-batch", "1").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToArray();
var httpWorkers = int.Parse(Arg("http-workers", "4"), CultureInfo.InvariantCulture);
var caseTimeout = TimeSpan.FromSeconds(double.Parse(Arg("case-timeout", "45"), CultureInfo.InvariantCulture));
var outPath = Arg("out", "");
if (backend == "postgres" && admin.Length == 0)
{
    Console.Error.WriteLine("--backend postgres needs --postgres ADMIN_CONNECTION (a cluster's maintenance database)");
    return 2;
}

var rows = new List<Row>();
foreach (var batch in batches)
{
    foreach (var concurrency in concurrencies)
    {
        rows.Add(await Bench.RunAsync(backend, admin, $"inproc-c{concurrency}{(batch > 1 ? $"-bulk{batch}" : "")}", jobs, enqueuers, batch, concurrency, 0,
            caseTimeout));
    }
}

if (httpWorkers > 0)
{
    rows.Add(await Bench.RunAsync(backend, admin, $"http-w{httpWorkers}", httpJobs, enqueuers, 1, 0, httpWorkers, caseTimeout));
}

Console.WriteLine();
Console.WriteLine("| backend | case | jobs done | seconds | jobs/s | enqueue only, jobs/s | start p50 ms | start p99 ms | commits | writes/commit | ms/commit | CPU % (200 = both cores) |");
Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
foreach (var r in rows)
{
    Console.WriteLine(r.Markdown());
}

if (outPath.Length > 0)
{
    await File.AppendAllLinesAsync(outPath, rows.Select(r => System.Text.Json.JsonSerializer.Serialize(r, new System.Text.Json.JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals })));
}

return rows.All(r => r.Done == r.Jobs) ? 0 : 1;

namespace Tidings.Bench
{
    internal sealed record Payload(long T);

    /// <summary>The no-op worker: notes when it started relative to the enqueue, returns a tiny result.</summary>
    internal sealed class NoopWorker(StartTimes starts) : IJobWorker<Payload>
    {
        private static readonly JsonObject Result = new() { ["ok"] = true };

        public Task<JsonNode?> RunAsync(JobContext<Payload> job, CancellationToken cancellationToken)
        {
            starts.Add(Stopwatch.GetElapsedTime(job.Payload.T));
            return Task.FromResult<JsonNode?>(Result);
        }
    }

    internal sealed class StartTimes
    {
        private readonly ConcurrentQueue<double> _ms = new();

        public void Add(TimeSpan elapsed) => _ms.Enqueue(elapsed.TotalMilliseconds);

        public double Percentile(double p)
        {
            var sorted = _ms.ToArray();
            Array.Sort(sorted);
            return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        }
    }

    internal sealed record Row(string Backend, string Case, int Jobs, int Done, double Seconds, double JobsPerSecond, double EnqueueSeconds,
        double StartP50, double StartP99, long Commits, double WritesPerCommit, double CommitMs, double CpuPercent, string? Note)
    {
        public string Markdown() =>
            $"| {Backend} | {Case} | {Done:N0}/{Jobs:N0} | {Seconds:F1} | {JobsPerSecond:N0} | {(EnqueueSeconds > 0 ? Jobs / EnqueueSeconds : 0):N0} | " +
            $"{Fmt(StartP50)} | {Fmt(StartP99)} | {(Commits > 0 ? Commits.ToString("N0", CultureInfo.InvariantCulture) : "–")} | " +
            $"{(Commits > 0 ? WritesPerCommit.ToString("F1", CultureInfo.InvariantCulture) : "–")} | {Fmt(CommitMs)} | {CpuPercent:F0} |{(Note is null ? "" : " " + Note)}";

        private static string Fmt(double v) => double.IsNaN(v) ? "–" : v.ToString("F1", CultureInfo.InvariantCulture);
    }

    internal static class Bench
    {
        private static int _databases;

        public static async Task<Row> RunAsync(string backend, string admin, string name, int jobs, int enqueuers, int batch, int concurrency, int httpWorkers,
            TimeSpan timeout)
        {
            var folder = Directory.CreateTempSubdirectory("tidings-jobsbench-");
            string? database = null;
            // The content root is an empty folder of its own: the host watches its content root for configuration changes,
            // and with the SQLite file in it every WAL write woke that watcher (in a profile, its thread was busy a third as
            // long as the store's writer).
            var contentRoot = Directory.CreateDirectory(Path.Combine(folder.FullName, "content"));
            var data = Directory.CreateTempSubdirectory("tidings-jobsbench-data-");
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = contentRoot.FullName });
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Tidings:RequestsPerSecond"] = "10000000",
                ["Tidings:RequestBurst"] = "10000000",
            });
            TidingsBuilder tidings;
            if (backend == "postgres")
            {
                database = $"jobsbench_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
                await using (var connection = new NpgsqlConnection(admin))
                {
                    await connection.OpenAsync();
                    await using var create = new NpgsqlCommand($"CREATE DATABASE {database};", connection);
                    await create.ExecuteNonQueryAsync();
                }

                tidings = builder.Services.AddTidings().UsePostgres(new NpgsqlConnectionStringBuilder(admin) { Database = database }.ConnectionString);
            }
            else
            {
                tidings = builder.Services.AddTidings().UseSqlite(Path.Combine(data.FullName, "tidings.db"));
            }

            var starts = new StartTimes();
            builder.Services.AddSingleton(starts);
            builder.Services.AddScoped<NoopWorker>();
            var queueName = httpWorkers > 0 ? "h" : "q";
            tidings.AddQueue(queueName, q =>
            {
                q.Access(a => a.List(AccessRule.Anyone).Enqueue(AccessRule.Nobody).Cancel(AccessRule.Nobody)
                        .Work(httpWorkers > 0 ? AccessRule.Anyone : AccessRule.Nobody))
                    .Retention(TimeSpan.FromHours(1));
                if (concurrency > 0)
                {
                    q.Worker<NoopWorker, Payload>(concurrency);
                }
            });

            // The store's commit-group instruments (SQLite): how many writes each commit carried.
            long commits = 0, grouped = 0;
            using var meters = new MeterListener();
            meters.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name is "tidings.store.commit.writes" or "tidings.store.commit.duration")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            meters.SetMeasurementEventCallback<int>((_, writes, _, _) =>
            {
                Interlocked.Increment(ref commits);
                Interlocked.Add(ref grouped, writes);
            });
            double commitSeconds = 0;
            meters.SetMeasurementEventCallback<double>((_, duration, _, _) =>
            {
                lock (meters)
                {
                    commitSeconds += duration;
                }
            });
            meters.Start();

            var app = builder.Build();
            app.MapTidings();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var service = app.Services.GetRequiredService<JobService>();
            var bayeux = app.Services.GetRequiredService<BayeuxServer>();

            var succeeded = new ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
            var allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            long lastSucceeded = 0;
            using var subscription = bayeux.Subscribe($"/api/queues/{queueName}/jobs", delivery =>
            {
                var data = delivery.Data;
                if (data.TryGetProperty("body", out var body) && body.TryGetProperty("state", out var state) && state.GetString() == JobService.Succeeded
                    && succeeded.TryAdd(body.GetProperty("id").GetString()!, true))
                {
                    Volatile.Write(ref lastSucceeded, Stopwatch.GetTimestamp());
                    if (succeeded.Count >= jobs)
                    {
                        allDone.TrySetResult();
                    }
                }
            });

            using var stop = new CancellationTokenSource(timeout);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            Interlocked.Exchange(ref commits, 0);
            Interlocked.Exchange(ref grouped, 0);
            lock (meters)
            {
                commitSeconds = 0;
            }

            var begin = Stopwatch.GetTimestamp();
            var next = -1;
            var failures = 0;
            var enqueueing = Enumerable.Range(0, enqueuers).Select(_ => Task.Run(async () =>
            {
                // Each loop takes the next `batch` job numbers: one EnqueueAsync each, or one EnqueueManyAsync for them all.
                int first;
                while ((first = Interlocked.Add(ref next, batch) - batch + 1) < jobs && !stop.IsCancellationRequested)
                {
                    var requests = Enumerable.Range(first, Math.Min(batch, jobs - first))
                        .Select(_ => new JsonObject { ["payload"] = new JsonObject { ["t"] = Stopwatch.GetTimestamp() } }).ToArray();
                    var outcomes = batch == 1
                        ? [await service.EnqueueAsync(queueName, requests[0], null, trusted: true, stop.Token)]
                        : (await service.EnqueueManyAsync(queueName, requests, null, trusted: true, stop.Token)).Jobs;
                    Interlocked.Add(ref failures, outcomes.Count(o => o.Status != JobStatus.Created) + requests.Length - outcomes.Count);
                }
            })).ToArray();
            var enqueued = Task.WhenAll(enqueueing).ContinueWith(_ => Stopwatch.GetElapsedTime(begin), TaskScheduler.Default);

            var workers = Enumerable.Range(0, httpWorkers).Select(_ => Task.Run(() => HttpWorkerAsync(address, queueName, allDone.Task, stop.Token))).ToArray();
            string? note = null;
            try
            {
                await allDone.Task.WaitAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
                note = $"(stopped after {timeout.TotalSeconds:F0} s)";
            }

            var end = succeeded.Count >= jobs ? Volatile.Read(ref lastSucceeded) : Stopwatch.GetTimestamp();
            var seconds = Stopwatch.GetElapsedTime(begin, end).TotalSeconds;
            var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds / Stopwatch.GetElapsedTime(begin).TotalSeconds * 100;
            await stop.CancelAsync();
            await Task.WhenAll(enqueueing.Concat(workers)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var enqueueSeconds = enqueued.IsCompletedSuccessfully && next + 1 >= jobs ? (await enqueued).TotalSeconds : 0;
            if (failures > 0)
            {
                note = $"{note} {failures} enqueues not created".Trim();
            }

            var row = new Row(backend, name, jobs, succeeded.Count, seconds, succeeded.Count / seconds, enqueueSeconds,
                concurrency > 0 ? starts.Percentile(0.50) : double.NaN, concurrency > 0 ? starts.Percentile(0.99) : double.NaN,
                Interlocked.Read(ref commits), commits > 0 ? (double)grouped / commits : 0, commits > 0 ? commitSeconds * 1000 / commits : double.NaN, cpu, note);
            Console.WriteLine(row.Markdown());

            using (var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            {
                await app.StopAsync(stopping.Token);
            }
            await app.DisposeAsync();
            NpgsqlConnection.ClearAllPools();
            if (database is not null)
            {
                await using var connection = new NpgsqlConnection(admin);
                await connection.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE);", connection);
                await drop.ExecuteNonQueryAsync();
            }

            folder.Delete(recursive: true);
            data.Delete(recursive: true);
            return row;
        }

        /// <summary>An external worker: claim up to 50, finish each, until every job succeeded (or the case times out).</summary>
        private static async Task HttpWorkerAsync(string address, string queue, Task allDone, CancellationToken stop)
        {
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(30) };
            var result = new JsonObject { ["ok"] = true };
            while (!allDone.IsCompleted && !stop.IsCancellationRequested)
            {
                try
                {
                    using var claim = await http.PostAsJsonAsync($"/api/queues/{queue}/claim", new JsonObject { ["max"] = 50 }, stop);
                    claim.EnsureSuccessStatusCode();
                    var claimed = (await claim.Content.ReadFromJsonAsync<JsonObject>(stop))!["jobs"]!.AsArray();
                    if (claimed.Count == 0)
                    {
                        await Task.Delay(5, stop);
                        continue;
                    }

                    foreach (var job in claimed)
                    {
                        var id = job!["id"]!.GetValue<string>();
                        using var finish = await http.PostAsJsonAsync($"/api/queues/{queue}/jobs/{id}/finish",
                            new JsonObject { ["lease"] = job["lease"]!.GetValue<string>(), ["result"] = result.DeepClone() }, stop);
                        finish.EnsureSuccessStatusCode();
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }
}
