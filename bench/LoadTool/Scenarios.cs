using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Bench;

/// <summary>The benchmark scenarios. Each is bounded in connections, steps and seconds, and returns one JSON result.</summary>
public sealed partial class Scenarios(Target target, Options options)
{
    private static readonly byte[] TimestampMarker = "\"t\":"u8.ToArray();
    private static readonly byte[] TitleMarker = "\"title\":\""u8.ToArray();

    /// <summary>(a) one channel, many subscribers; the publish rate rises step by step until saturation.</summary>
    public async Task<JsonObject> FanOutAsync(CancellationToken token)
    {
        var metrics = new Metrics(TimestampMarker);
        var subscribers = options.Count("subs", 1000);
        var channel = "/bench/fan";
        var (subs, connectRate) = await OpenAsync(metrics, subscribers, _ => [channel], token);
        var pubs = (await OpenAsync(metrics, options.Count("pubs", 4), _ => [], token)).Connections;
        var rates = options.Numbers("rates", [100, 250, 500, 1000, 2000, 4000, 8000, 16000]);
        var steps = new JsonArray();
        using (var publisher = new Publisher(pubs, [channel], target.Protocol))
        {
            foreach (var rate in rates)
            {
                var step = await StepAsync(metrics, [(publisher, rate, subs.Length)], token);
                step["rate"] = rate;
                steps.Add(step);
                Console.WriteLine($"  {target.Name} fanout {rate,6} msg/s x {subs.Length}: {Summary(step)}");
                if (step["saturated"]!.GetValue<bool>())
                {
                    break;
                }
            }
        }

        CloseAll(subs, pubs);
        return Result("fanout", metrics, new JsonObject
        {
            ["subscribers"] = subs.Length,
            ["connectRate"] = connectRate,
            ["steps"] = steps,
        });
    }

    /// <summary>(b) every subscriber on its own channel plus a shared one; both kinds of publish at once, rising.</summary>
    public async Task<JsonObject> ChannelsAsync(CancellationToken token)
    {
        var metrics = new Metrics(TimestampMarker);
        var subscribers = options.Count("subs", 10_000);
        const string shared = "/bench/shared";
        var (subs, connectRate) = await OpenAsync(metrics, subscribers, i => [$"/bench/c/{i}", shared], token);
        var pubs = (await OpenAsync(metrics, options.Count("pubs", 4), _ => [], token)).Connections;
        var sharedRates = options.Numbers("shared-rates", [2, 5, 10, 20, 50]);
        var perChannel = options.Number("per-channel-factor", 500); // own-channel publishes per shared publish
        var steps = new JsonArray();
        var own = Enumerable.Range(0, subs.Length).Select(i => $"/bench/c/{i}").ToArray();
        using (var ownPublisher = new Publisher(pubs[..(pubs.Length / 2)], own, target.Protocol))
        using (var sharedPublisher = new Publisher(pubs[(pubs.Length / 2)..], [shared], target.Protocol))
        {
            foreach (var rate in sharedRates)
            {
                var step = await StepAsync(metrics, [(ownPublisher, rate * perChannel, 1), (sharedPublisher, rate, subs.Length)], token);
                step["sharedRate"] = rate;
                step["ownRate"] = rate * perChannel;
                steps.Add(step);
                Console.WriteLine($"  {target.Name} channels shared {rate}/s + own {rate * perChannel}/s: {Summary(step)}");
                if (step["saturated"]!.GetValue<bool>())
                {
                    break;
                }
            }
        }

        CloseAll(subs, pubs);
        return Result("channels", metrics, new JsonObject
        {
            ["subscribers"] = subs.Length,
            ["connectRate"] = connectRate,
            ["steps"] = steps,
        });
    }

    /// <summary>(c) as many idle sessions as will open (each subscribed to one channel); server memory per session.</summary>
    public async Task<JsonObject> IdleAsync(CancellationToken token)
    {
        var metrics = new Metrics(TimestampMarker);
        const string channel = "/bench/idle";
        var warm = (await OpenAsync(metrics, 200, _ => [channel], token)).Connections;
        await Task.Delay(2000, token);
        var before = ProcessSample.Read(target);
        var (idle, connectRate) = await OpenAsync(metrics, options.Count("sessions", 19_000) - warm.Length, _ => [channel], token, tolerateFailures: true);
        await Task.Delay(options.Count("settle-ms", 5000), token);
        var after = ProcessSample.Read(target);
        var alive = warm.Concat(idle).Count(c => !c.Closed);

        // One broadcast to all of them proves they are live sessions, not just open sockets.
        var pubs = (await OpenAsync(metrics, 1, _ => [], token)).Connections;
        var recorder = metrics.Begin();
        using (var publisher = new Publisher(pubs, [channel], target.Protocol))
        {
            publisher.Rate = 1;
            var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
            while (publisher.Published == 0 && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(1, token);
            }

            publisher.Rate = 0;
            while (recorder.Merge().Count < alive && Stopwatch.GetTimestamp() < deadline)
            {
                await Task.Delay(50, token);
            }
        }

        metrics.End();
        var broadcast = recorder.Merge();
        var sessions = idle.Length;
        var perSessionKb = sessions == 0 ? 0 : (after.RssKb - before.RssKb) / (double)sessions;
        Console.WriteLine($"  {target.Name} idle: {alive} sessions, {connectRate:F0}/s, RSS {before.RssKb / 1024} -> {after.RssKb / 1024} MB = {perSessionKb:F1} KB/session; broadcast reached {broadcast.Count} in {broadcast.PercentileMs(100):F0} ms");
        CloseAll(warm, idle, pubs);
        return Result("idle", metrics, new JsonObject
        {
            ["sessions"] = alive,
            ["connectRate"] = connectRate,
            ["rssBeforeKb"] = before.RssKb,
            ["rssAfterKb"] = after.RssKb,
            ["kbPerSession"] = Math.Round(perSessionKb, 2),
            ["broadcastDelivered"] = broadcast.Count,
            ["broadcastP50Ms"] = Round(broadcast.PercentileMs(50)),
            ["broadcastP99Ms"] = Round(broadcast.PercentileMs(99)),
            ["broadcastMaxMs"] = Round(broadcast.PercentileMs(100)),
        });
    }

    /// <summary>(d) REST writes at a fixed rate; how long until each subscriber, and the last one, has the event.</summary>
    public async Task<JsonObject> EndToEndAsync(CancellationToken token)
    {
        var metrics = new Metrics(TitleMarker);
        var channel = options.Text("channel", "/api/todos");
        var events = new ConcurrentDictionary<long, EventTrack>();
        metrics.OnSample = (sent, now) => events.GetOrAdd(sent, static _ => new EventTrack()).Arrived(now);
        var (subs, connectRate) = await OpenAsync(metrics, options.Count("subs", 200), _ => [channel], token);
        var rate = options.Number("rate", 100);
        var seconds = options.Number("seconds", 5);
        var total = (int)(rate * seconds);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64, UseProxy = false })
        {
            BaseAddress = new Uri($"http://{target.EndPoint}"),
        };
        var writeLatency = new Histogram();
        var failures = 0;
        var before = ProcessSample.Read(target);
        var recorder = metrics.Begin();
        var started = Stopwatch.GetTimestamp();
        var posts = new List<Task>(total);
        for (var i = 0; i < total; i++)
        {
            var at = started + (long)(i / rate * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < at)
            {
                await Task.Delay(1, token);
            }

            posts.Add(PostAsync());
        }

        await Task.WhenAll(posts);
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        var expected = (long)total * subs.Length;
        while (recorder.Merge().Count < expected && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(50, token);
        }

        metrics.End();
        var after = ProcessSample.Read(target);
        var deliveries = recorder.Merge();
        var lastSubscriber = new Histogram();
        var complete = 0;
        foreach (var (sent, track) in events)
        {
            if (track.Count == subs.Length)
            {
                complete++;
                lastSubscriber.Record(track.Last - sent);
            }
        }

        Console.WriteLine($"  {target.Name} e2e {rate}/s x {subs.Length} subs: {complete}/{total} events reached everyone; delivery p50 {deliveries.PercentileMs(50):F1} p99 {deliveries.PercentileMs(99):F1} ms; all-subscribers p99 {lastSubscriber.PercentileMs(99):F1} ms; POST p99 {writeLatency.PercentileMs(99):F1} ms");
        CloseAll(subs);
        return Result("e2e", metrics, new JsonObject
        {
            ["subscribers"] = subs.Length,
            ["connectRate"] = connectRate,
            ["rate"] = rate,
            ["writes"] = total,
            ["writeFailures"] = failures,
            ["eventsComplete"] = complete,
            ["delivered"] = deliveries.Count,
            ["expected"] = expected,
            ["p50Ms"] = Round(deliveries.PercentileMs(50)),
            ["p99Ms"] = Round(deliveries.PercentileMs(99)),
            ["p999Ms"] = Round(deliveries.PercentileMs(99.9)),
            ["allSubscribersP50Ms"] = Round(lastSubscriber.PercentileMs(50)),
            ["allSubscribersP99Ms"] = Round(lastSubscriber.PercentileMs(99)),
            ["postP50Ms"] = Round(writeLatency.PercentileMs(50)),
            ["postP99Ms"] = Round(writeLatency.PercentileMs(99)),
            ["serverCpuPercent"] = Math.Round(ProcessSample.CpuPercent(before, after)),
        });

        async Task PostAsync()
        {
            var sent = Stopwatch.GetTimestamp();
            try
            {
                using var content = new StringContent($"{{\"title\":\"{sent}\"}}", Encoding.UTF8, "application/json");
                using var response = await http.PostAsync(channel, content, token);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failures);
                    metrics.Error($"POST {channel}: {(int)response.StatusCode}");
                }
            }
            catch (HttpRequestException ex)
            {
                Interlocked.Increment(ref failures);
                metrics.Error($"POST {channel}: {ex.Message}");
            }

            lock (writeLatency)
            {
                writeLatency.Record(Stopwatch.GetTimestamp() - sent);
            }
        }
    }

    /// <summary>Runs the publishers at their rates for a warm-up, then measures a window.</summary>
    private async Task<JsonObject> StepAsync(Metrics metrics, (Publisher Publisher, double Rate, int Fanout)[] load, CancellationToken token)
    {
        foreach (var (publisher, rate, _) in load)
        {
            publisher.Rate = rate;
        }

        var closedBefore = metrics.SocketsClosed;
        await Task.Delay(TimeSpan.FromSeconds(options.Number("warmup", 1)), token);
        var published = load.Select(l => l.Publisher.Published).ToArray();
        var from = ProcessSample.Read(target);
        var recorder = metrics.Begin();
        await Task.Delay(TimeSpan.FromSeconds(options.Number("measure", 3)), token);
        metrics.End();
        var to = ProcessSample.Read(target);
        var histogram = recorder.Merge();
        var seconds = ProcessSample.Seconds(from, to);
        var delivered = histogram.Count / seconds;
        var asked = load.Sum(l => l.Rate * l.Fanout);
        var offered = load.Select((l, i) => (l.Publisher.Published - published[i]) * (double)l.Fanout).Sum() / seconds;
        var publishLag = load.Select((l, i) => (l.Publisher.Published - published[i]) / seconds / l.Rate).Min();
        var closed = metrics.SocketsClosed - closedBefore;
        var p99 = histogram.PercentileMs(99);

        // Saturated: deliveries fall behind what was asked, latency runs away, sessions drop, or the server stops taking publishes.
        var saturated = delivered < 0.8 * asked || double.IsNaN(p99) || p99 > 1000 || closed > 0 || publishLag < 0.8;
        return new JsonObject
        {
            ["targetDelivered"] = Math.Round(asked),
            ["offered"] = Math.Round(offered),
            ["delivered"] = Math.Round(delivered),
            ["p50Ms"] = Round(histogram.PercentileMs(50)),
            ["p99Ms"] = Round(p99),
            ["p999Ms"] = Round(histogram.PercentileMs(99.9)),
            ["maxMs"] = Round(histogram.PercentileMs(100)),
            ["serverCpuPercent"] = Math.Round(ProcessSample.CpuPercent(from, to)),
            ["databaseCpuPercent"] = target.DatabasePid > 0 ? Math.Round(ProcessSample.DatabaseCpuPercent(from, to)) : null,
            ["loadToolCpuPercent"] = Math.Round(ProcessSample.OwnCpuPercent(from, to)),
            ["serverRssMb"] = to.RssKb / 1024,
            ["socketsClosed"] = closed,
            ["saturated"] = saturated,
        };
    }

    /// <summary>
    /// Opens sessions with bounded concurrency, spread over the source addresses and round-robin over the target's
    /// endpoints (or <paramref name="endpoints"/>): session i on endpoint i mod n. Returns them and the rate they opened at.
    /// </summary>
    private async Task<(Connection[] Connections, double PerSecond)> OpenAsync(Metrics metrics, int count, Func<int, string[]> subscriptions, CancellationToken token, bool tolerateFailures = false,
        Func<int, string?>? userTokens = null, Connection.ReplyHandler? onReply = null, IPEndPoint[]? endpoints = null)
    {
        var sources = options.Sources;
        endpoints ??= target.EndPoints;
        var opened = new Connection?[count];
        var failures = 0;
        var started = Stopwatch.GetTimestamp();
        using var gate = new SemaphoreSlim(options.Count("connect-concurrency", 100));
        var tasks = Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync(token);
            try
            {
                if (tolerateFailures && Volatile.Read(ref failures) > 100)
                {
                    return;
                }

                opened[i] = await Connection.OpenAsync(target, endpoints[i % endpoints.Length], sources[i % sources.Length], subscriptions(i), metrics,
                    options.Count("buffer", 8192), token, userTokens?.Invoke(i), onReply);
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException or TimeoutException)
            {
                if (Interlocked.Increment(ref failures) == 1)
                {
                    metrics.Error($"open #{i}: {ex.Message}");
                }

                if (!tolerateFailures)
                {
                    throw;
                }
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(tasks);
        var seconds = (double)(Stopwatch.GetTimestamp() - started) / Stopwatch.Frequency;
        var connections = opened.OfType<Connection>().ToArray();
        if (failures > 0)
        {
            Console.WriteLine($"  {target.Name}: {failures} of {count} sessions failed to open ({metrics.FirstError})");
        }

        return (connections, Math.Round(connections.Length / seconds));
    }

    private JsonObject Result(string scenario, Metrics metrics, JsonObject body)
    {
        body["target"] = target.Name;
        body["scenario"] = scenario;
        if (target.Backend.Length > 0)
        {
            body["backend"] = target.Backend;
            body["nodes"] = target.EndPoints.Length;
        }

        body["errors"] = metrics.Errors;
        body["firstError"] = metrics.FirstError;
        return body;
    }

    private static void CloseAll(params Connection[][] groups)
    {
        foreach (var group in groups)
        {
            foreach (var connection in group)
            {
                connection.Close();
            }
        }
    }

    private static string Summary(JsonObject step) =>
        $"delivered {step["delivered"]}/s of {step["targetDelivered"]}, p50 {step["p50Ms"]} p99 {step["p99Ms"]} p99.9 {step["p999Ms"]} ms, server CPU {step["serverCpuPercent"]}%, tool CPU {step["loadToolCpuPercent"]}%, closed {step["socketsClosed"]}{(step["saturated"]!.GetValue<bool>() ? " SATURATED" : "")}";

    private static double? Round(double value) => double.IsNaN(value) ? null : Math.Round(value, 2);

    private sealed class EventTrack
    {
        private int _count;
        private long _last;

        public int Count => Volatile.Read(ref _count);

        public long Last => Interlocked.Read(ref _last);

        public void Arrived(long now)
        {
            Interlocked.Increment(ref _count);
            long seen;
            while (now > (seen = Interlocked.Read(ref _last)) && Interlocked.CompareExchange(ref _last, now, seen) != seen)
            {
            }
        }
    }
}

/// <summary>Command-line options: <c>--name value</c> pairs.</summary>
public sealed class Options(Dictionary<string, string> values)
{
    public IPAddress[] Sources { get; } = [.. (values.GetValueOrDefault("sources") ?? "127.0.0.1").Split(',').Select(IPAddress.Parse)];

    public string Text(string name, string fallback) => values.GetValueOrDefault(name) ?? fallback;

    public int Count(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    public double Number(string name, double fallback) => values.TryGetValue(name, out var v) ? double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    public double[] Numbers(string name, double[] fallback) => values.TryGetValue(name, out var v)
        ? [.. v.Split(',').Select(x => double.Parse(x, System.Globalization.CultureInfo.InvariantCulture))]
        : fallback;
}
