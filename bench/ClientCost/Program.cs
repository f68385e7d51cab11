using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Tidings.Bench;
using Tidings.Client;
using Tidings.Client.Collections;

// The .NET client's cost beside the load tool's lean client (bench/run.sh: SCENARIOS=client), against a running demo
// server whose snapshot and queue limits allow --items records in one SNAPSHOT:
//   ClientCost --url http://127.0.0.1:PORT --pid SERVER_PID [--items 10000] [--writers 32] [--seconds 5] [--out results.jsonl]
// 1. Seeds --items todos by REST.
// 2. Memory: managed heap after a forced, compacting GC, before and after opening (a) the load tool's raw Bayeux
//    client subscribed to /api/todos (it keeps no records), (b) a TidingsClient with no collection (one WebSocket
//    session), (c) a TidingsClient with LiveCollection<JsonObject> of /api/todos, (d) the same as LiveCollection<Todo>.
// 3. Events/s: --writers REST writers, in a child process (ClientCost writers ...), PATCH random todos as fast as the
//    server takes them (the collection stays at --items records; this process's CPU is then the clients' alone). Window A: only the raw client is subscribed; window B: the raw client and one
//    LiveCollection<JsonObject> receive the same stream. Events counted on each (the collection by its Seq).
var values = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    values[args[i].TrimStart('-')] = args[i + 1];
}

var writersMode = args.Length > 0 && args[0] == "writers";
if (writersMode)
{
    for (var i = 1; i + 1 < args.Length; i += 2)
    {
        values[args[i].TrimStart('-')] = args[i + 1];
    }
}

var url = new Uri(values.GetValueOrDefault("url") ?? "http://127.0.0.1:5080");
var serverPid = int.Parse(values.GetValueOrDefault("pid") ?? "0", CultureInfo.InvariantCulture);
var itemCount = int.Parse(values.GetValueOrDefault("items") ?? "10000", CultureInfo.InvariantCulture);
var writerCount = int.Parse(values.GetValueOrDefault("writers") ?? "32", CultureInfo.InvariantCulture);
var seconds = double.Parse(values.GetValueOrDefault("seconds") ?? "5", CultureInfo.InvariantCulture);
const string Todos = "/api/todos";

using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(double.Parse(values.GetValueOrDefault("timeout") ?? "150", CultureInfo.InvariantCulture)));
var token = cancel.Token;
var endpoint = new IPEndPoint(IPAddress.Parse(url.Host), url.Port);
var target = new Target("tidings", Protocol.Bayeux, [endpoint], "/bayeux", serverPid > 0 ? [serverPid] : [], 0, "sqlite");
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = writerCount }) { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
if (writersMode)
{
    return await WriteAsync(http, writerCount, token);
}

// 1. Seed.
var seedClock = Stopwatch.StartNew();
await Parallel.ForEachAsync(Enumerable.Range(0, itemCount), new ParallelOptions { MaxDegreeOfParallelism = writerCount, CancellationToken = token },
    async (i, ct) =>
    {
        using var response = await http.PostAsJsonAsync(Todos, new JsonObject { ["title"] = $"seed todo {i:D5}: buy milk and bread", ["order"] = i }, ct);
        response.EnsureSuccessStatusCode();
    });
var listBytes = await ListBytesAsync(http, token);
Console.WriteLine($"  seeded {itemCount:N0} todos in {seedClock.Elapsed.TotalSeconds:F1} s; GET {Todos}: {listBytes:N0} bytes ({listBytes / itemCount} per item)");

TidingsClientOptions ClientOptions()
{
    // Room for one SNAPSHOT of every item (the demo is started with matching server limits).
    var options = new TidingsClientOptions { MaxMessageBytes = 64 * 1024 * 1024, Transport = BayeuxTransportKind.WebSocket };
    options.JsonSerializerOptions.TypeInfoResolverChain.Insert(0, BenchJson.Default);
    return options;
}

// 2. Memory.
var memory = new JsonObject();
var rawMetrics = new Metrics("\"seq\":"u8.ToArray());
long rawEvents = 0;
rawMetrics.OnSample = (_, _) => Interlocked.Increment(ref rawEvents);

// Each client's held bytes: the managed heap with it open minus the heap once it is disposed and unreachable, both
// after a forced GC. (A difference against a heap taken before opening would also count what the ArrayPool keeps or
// trims meanwhile — buffers, not the client.)
memory["raw"] = await HeldAsync(async () =>
{
    var connection = await Connection.OpenAsync(target, endpoint, IPAddress.Loopback, [Todos], rawMetrics, 4096, token);
    return ((Func<Task>)(() =>
    {
        connection.SendDisconnect();
        connection.Close();
        return Task.CompletedTask;
    }), (object)connection);
});
memory["client"] = await HeldAsync(async () =>
{
    var client = new TidingsClient(url, ClientOptions());
    await client.SubscribeAsync("/bench/idle", _ => { }, token);
    return ((Func<Task>)(async () => await client.DisposeAsync()), (object)client);
});
memory["json"] = await HeldAsync(async () =>
{
    var client = new TidingsClient(url, ClientOptions());
    var collection = await client.CollectionAsync<JsonObject>(Todos, token);
    Check(collection.Count, collection.IsTruncated);
    return ((Func<Task>)(async () => await client.DisposeAsync()), (object)collection);
});

memory["typed"] = await HeldAsync(async () =>
{
    var client = new TidingsClient(url, ClientOptions());
    var collection = await client.CollectionAsync<Todo>(Todos, token);
    Check(collection.Count, collection.IsTruncated);
    return ((Func<Task>)(async () => await client.DisposeAsync()), (object)collection);
});
Console.WriteLine($"  memory: raw {memory["raw"]} B, client {memory["client"]} B, LiveCollection<JsonObject> {memory["json"]} B, LiveCollection<Todo> {memory["typed"]} B");

// 3. Events/s. The writers run in a child process of their own, so this process's CPU is the clients' alone.
var raw = await Connection.OpenAsync(target, endpoint, IPAddress.Loopback, [Todos], rawMetrics, 4096, token);
using var writerProcess = StartWriters(url, writerCount, seconds * 2 + 60);
var windows = new JsonArray();
await Task.Delay(TimeSpan.FromSeconds(3), token); // warm-up: the fresh server compiles its write path, this process its receive path
windows.Add(await WindowAsync("A: lean client alone", null));

var liveClient = new TidingsClient(url, ClientOptions());
var live = await liveClient.CollectionAsync<JsonObject>(Todos, token);
Check(live.Count, live.IsTruncated);
await Task.Delay(TimeSpan.FromSeconds(2), token);
windows.Add(await WindowAsync("B: lean client + LiveCollection<JsonObject>", live));

writerProcess.StandardInput.Close(); // the writers stop when their stdin ends
if (!writerProcess.WaitForExit(10_000))
{
    writerProcess.Kill(entireProcessTree: true);
}

var failed = writerProcess.ExitCode == 0 ? 0 : 1;
// Both must end with every event: the server's last seq.
var last = (long)JsonNode.Parse(await http.GetStringAsync(Todos, token))!["seq"]!;
var drain = Stopwatch.StartNew();
while (live.Seq < last && drain.Elapsed < TimeSpan.FromSeconds(30))
{
    await Task.Delay(20, token);
}

var caughtUp = live.Seq == last;
await liveClient.DisposeAsync();
raw.SendDisconnect();
raw.Close();

var result = new JsonObject
{
    ["scenario"] = "client",
    ["items"] = itemCount,
    ["list_bytes"] = listBytes,
    ["writers"] = writerCount,
    ["memory"] = memory,
    ["windows"] = windows,
    ["writer_exit"] = failed,
    ["live_caught_up"] = caughtUp,
    ["live_seq"] = live.Seq,
    ["server_seq"] = last,
};
Console.WriteLine();
Console.Write(Table(result)); // adds the CPU per event to result
if (values.TryGetValue("out", out var output))
{
    File.AppendAllText(output, result.ToJsonString() + Environment.NewLine);
}

return caughtUp && failed == 0 ? 0 : 1;

async Task<JsonObject> WindowAsync(string name, LiveCollection<JsonObject>? collection)
{
    var from = ProcessSample.Read(target);
    var (rawFrom, liveFrom) = (Interlocked.Read(ref rawEvents), collection?.Seq ?? 0);
    await Task.Delay(TimeSpan.FromSeconds(seconds), token);
    var to = ProcessSample.Read(target);
    var (rawTo, liveTo) = (Interlocked.Read(ref rawEvents), collection?.Seq ?? 0);
    var elapsed = ProcessSample.Seconds(from, to);
    var window = new JsonObject
    {
        ["name"] = name,
        ["seconds"] = Math.Round(elapsed, 2),
        ["raw_per_s"] = Math.Round((rawTo - rawFrom) / elapsed),
        ["live_per_s"] = collection is null ? null : Math.Round((liveTo - liveFrom) / elapsed),
        ["server_cpu"] = Math.Round(ProcessSample.CpuPercent(from, to)),
        ["tool_cpu"] = Math.Round(ProcessSample.OwnCpuPercent(from, to)),
    };
    Console.WriteLine("  " + window.ToJsonString());
    return window;
}

void Check(int count, bool truncated)
{
    if (count != itemCount || truncated)
    {
        throw new InvalidOperationException($"the collection holds {count} of {itemCount} items (truncated: {truncated}): start the server with " +
            "--Tidings:MaxSnapshotItems, --Tidings:MaxListItems and --Bayeux:MaxQueuedBytes large enough");
    }
}

// The child process: PATCH random todos from --writers loops until stdin ends (or --timeout); exit code 1 if any write failed.
static async Task<int> WriteAsync(HttpClient http, int writerCount, CancellationToken token)
{
    var ids = JsonNode.Parse(await http.GetStringAsync(Todos, token))!["items"]!.AsArray().Select(i => (string)i!["id"]!).ToArray();
    using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
    _ = Task.Run(async () =>
    {
        await Console.In.ReadToEndAsync(token);
        await stop.CancelAsync();
    }, token);
    long failed = 0;
    var writers = Enumerable.Range(0, writerCount).Select(w => Task.Run(async () =>
    {
        var random = new Random(w);
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Patch, $"{Todos}/{ids[random.Next(ids.Length)]}")
                {
                    Content = JsonContent.Create(new JsonObject { ["title"] = $"writer {w} update {n++}", ["completed"] = (n & 1) == 1 }),
                };
                using var response = await http.SendAsync(request, stop.Token);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failed);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (HttpRequestException)
            {
                Interlocked.Increment(ref failed);
            }
        }
    }, CancellationToken.None)).ToArray();
    await Task.WhenAll(writers);
    if (failed > 0)
    {
        Console.Error.WriteLine($"writers: {failed} writes failed");
    }

    return failed == 0 ? 0 : 1;
}

// Its own method, so the 2 MB body is not held by the main method's state machine while memory is measured.
static async Task<int> ListBytesAsync(HttpClient http, CancellationToken token) => (await http.GetByteArrayAsync(Todos, token)).Length;

static Process StartWriters(Uri url, int writers, double limitSeconds)
{
    var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardInput = true, UseShellExecute = false };
    foreach (var argument in new[] { typeof(BenchJson).Assembly.Location, "writers", "--url", url.ToString(), "--writers", writers.ToString(CultureInfo.InvariantCulture),
        "--timeout", limitSeconds.ToString(CultureInfo.InvariantCulture) })
    {
        info.ArgumentList.Add(argument);
    }

    return Process.Start(info) ?? throw new InvalidOperationException("could not start the writers");
}

// The client's background work ends a little after DisposeAsync returns (it stays reachable for up to about a
// second): the heap after is taken once the probe (the collection, client or connection) is collected.
static async Task<long> HeldAsync(Func<Task<(Func<Task> Close, object Probe)>> open)
{
    var (close, probe) = await open();
    var gone = new WeakReference(probe);
    probe = null;
    var held = Heap();
    await close();
    close = null;
    var clock = Stopwatch.StartNew();
    long after;
    while (true)
    {
        after = Heap();
        if (!gone.IsAlive)
        {
            return held - after;
        }

        if (clock.Elapsed > TimeSpan.FromSeconds(15))
        {
            throw new InvalidOperationException("a disposed client stayed reachable for 15 s");
        }

        await Task.Delay(100);
    }
}

static long Heap()
{
    for (var i = 0; i < 3; i++)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    return GC.GetTotalMemory(forceFullCollection: true);
}

static string Table(JsonObject r)
{
    var items = (int)r["items"]!;
    var m = r["memory"]!;
    string Bytes(string key) => ((long)m[key]!).ToString("N0", CultureInfo.InvariantCulture);
    string PerItem(string key) => (((long)m[key]! - (long)m["client"]!) / (double)items).ToString("N0", CultureInfo.InvariantCulture);
    var text = new StringBuilder();
    text.AppendLine(CultureInfo.InvariantCulture, $"Memory: managed heap after a forced GC, one session subscribed to {Todos} holding {items:N0} todos ({(int)r["list_bytes"]! / items} bytes of JSON each in GET {Todos})");
    text.AppendLine();
    text.AppendLine("| client | managed bytes | per item (minus the bare client) |");
    text.AppendLine("| --- | ---: | ---: |");
    text.AppendLine(CultureInfo.InvariantCulture, $"| load tool's lean client (raw WebSocket, keeps no records) | {Bytes("raw")} | — |");
    text.AppendLine(CultureInfo.InvariantCulture, $"| TidingsClient, no collection (one plain subscription) | {Bytes("client")} | — |");
    text.AppendLine(CultureInfo.InvariantCulture, $"| TidingsClient + LiveCollection<JsonObject> | {Bytes("json")} | {PerItem("json")} |");
    text.AppendLine(CultureInfo.InvariantCulture, $"| TidingsClient + LiveCollection<Todo> (source-generated) | {Bytes("typed")} | {PerItem("typed")} |");
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"Events/s: {(int)r["writers"]!} REST writers (a process of their own) PATCH random todos as fast as the server takes them (the collection stays at {items:N0}); the lean client counts every event it receives, the collection its Seq");
    text.AppendLine();
    text.AppendLine("| window | lean client events/s | LiveCollection events/s | server CPU % | client process CPU % |");
    text.AppendLine("| --- | ---: | ---: | ---: | ---: |");
    foreach (var w in r["windows"]!.AsArray())
    {
        string N(string key) => w![key] is { } v ? ((double)v).ToString("N0", CultureInfo.InvariantCulture) : "—";
        text.AppendLine(CultureInfo.InvariantCulture, $"| {w!["name"]} | {N("raw_per_s")} | {N("live_per_s")} | {N("server_cpu")} | {N("tool_cpu")} |");
    }

    // CPU per event: the lean client's from A; the collection's is what B cost beyond the lean client's share.
    var (a, b) = (r["windows"]![0]!, r["windows"]![1]!);
    var rawMicros = (double)a["tool_cpu"]! * 10_000 / Math.Max(1, (double)a["raw_per_s"]!);
    var liveMicros = ((double)b["tool_cpu"]! * 10_000 - rawMicros * (double)b["raw_per_s"]!) / Math.Max(1, (double)b["live_per_s"]!);
    r["raw_cpu_us_per_event"] = Math.Round(rawMicros, 1);
    r["live_cpu_us_per_event"] = Math.Round(liveMicros, 1);
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"CPU per event (client process CPU / events): lean client {rawMicros:F1} µs (A); LiveCollection<JsonObject> {liveMicros:F1} µs " +
        $"(B minus the lean client's share), so one core would apply about {1_000_000 / Math.Max(1, liveMicros):N0} events/s at this collection size");
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture, $"LiveCollection caught up with the server's last seq after the writers stopped: {((bool)r["live_caught_up"]! ? "yes" : "NO")} ({r["live_seq"]} of {r["server_seq"]}); writer process exit code: {r["writer_exit"]}");
    return text.ToString();
}

/// <summary>A todo as the demo serves it.</summary>
internal sealed record Todo(string? Id, string? Title, bool Completed, double Order, long Version, DateTimeOffset? CreatedAt, DateTimeOffset? UpdatedAt);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(Todo))]
internal sealed partial class BenchJson : JsonSerializerContext;
