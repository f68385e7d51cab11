using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Bench;

public sealed partial class Scenarios
{
    /// <summary>
    /// (e) Store-backed end to end (Tidings only): records are written through the store — REST <c>POST</c> or a socket
    /// write (a Bayeux publish of <c>{"method":"POST","body":{…}}</c>) — at a rising rate, and every subscriber of the
    /// collection's channel should get every event. A step holds when the writer kept the rate, every write committed, every
    /// subscriber got every event, and write → last subscriber p99 is within <c>--hold-ms</c>; the ladder stops at the first step that does not.
    /// Then one step at the same rate with only <c>--compare-subs</c> subscribers: a write's own latency should not
    /// depend on how many receive it. Options: --collection PATH --field NAME --writes rest|socket --sign-in yes|no
    /// --subs N --rates A,B,… --writers N --rest-connections N --compare-subs N --hold-ms MS --drain SECONDS --prewarm SECONDS.
    /// With several endpoints (nodes of one app on one database) subscribers, writer sessions and REST writes are spread
    /// over them round-robin, so most events are written on one node and delivered by the others; every user signs in
    /// on the first node and uses its token on every node (the nodes share the signing key).
    /// </summary>
    public async Task<JsonObject> StoreAsync(CancellationToken token)
    {
        var collection = options.Text("collection", "/api/todos");
        var field = options.Text("field", "title");
        var writePath = options.Text("writes", "rest");
        var signIn = options.Text("sign-in", "no") == "yes";
        var subscriberCount = options.Count("subs", 1000);
        var compareCount = options.Count("compare-subs", 10);
        // At least one writer per node, so socket writes can go to every node.
        var writerCount = Math.Max(options.Count("writers", 4), target.EndPoints.Length);
        var restConnections = options.Count("rest-connections", 8);
        var rates = options.Numbers("rates", [100, 250, 500, 1000, 2000, 4000]);
        if (writePath is not ("rest" or "socket"))
        {
            throw new ArgumentException($"--writes must be rest or socket, not '{writePath}'");
        }

        // Subscribers find the send timestamp after the marker field, e.g. "title":"123456789 xxxx…".
        var metrics = new Metrics(Encoding.UTF8.GetBytes($"\"{field}\":\""));
        var log = new WriteLog();
        metrics.OnSample = log.Arrived;

        // Signed-in case: every subscriber is its own user, so access rules run once per recipient.
        var subscriberTokens = signIn ? await SignInAsync("bench-sub-", subscriberCount, token) : new string?[subscriberCount];
        var writerTokens = signIn ? await SignInAsync("bench-writer-", writerCount, token) : new string?[writerCount];

        var (subs, connectRate) = await OpenAsync(metrics, subscriberCount, _ => [collection], token, userTokens: i => subscriberTokens[i]);
        using StoreWriter writer = writePath == "rest"
            ? new RestStoreWriter(log, field, target.EndPoints, collection, restConnections, writerTokens, metrics)
            : new SocketStoreWriter(log, field, collection);
        var writerSessions = Array.Empty<Connection>();
        if (writer is SocketStoreWriter socketWriter)
        {
            // Writer sessions subscribe to nothing; their frames are publish replies (and connect replies).
            writerSessions = (await OpenAsync(metrics, writerCount, _ => [], token, userTokens: i => writerTokens[i],
                onReply: payload => socketWriter.OnReply(payload, metrics))).Connections;
            socketWriter.Use(writerSessions);
        }

        writer.Start();
        // A fresh server compiles its write, store and fan-out paths in its first seconds of writes: keep that out of
        // the first step (its own 1 s warm-up is too short for it).
        writer.Rate = rates[0];
        await Task.Delay(TimeSpan.FromSeconds(options.Number("prewarm", 3)), token);
        var label = $"{target.Name} {target.BackendLabel} store {collection} {writePath}";
        var steps = new JsonArray();
        double? heldRate = null;
        foreach (var rate in rates)
        {
            var step = await StoreStepAsync(writer, log, metrics, rate, subs.Length, token);
            steps.Add(step);
            Console.WriteLine($"  {label} {rate,5}/s x {subs.Length} subs: {StoreSummary(step)}");
            if (!step["holds"]!.GetValue<bool>())
            {
                break;
            }

            heldRate = rate;
        }

        // The same rate with few subscribers: fresh sessions (the ladder's may have been dropped by a step that failed),
        // opened after the others are disconnected so the server no longer fans out to them.
        await DisconnectAsync(subs, token);
        var compareRate = heldRate ?? rates[0];
        var few = (await OpenAsync(metrics, Math.Min(compareCount, subscriberCount), _ => [collection], token, userTokens: i => subscriberTokens[i])).Connections;
        var compare = await StoreStepAsync(writer, log, metrics, compareRate, few.Length, token);
        Console.WriteLine($"  {label} {compareRate,5}/s x {few.Length} subs: {StoreSummary(compare)}");
        var atRate = steps.Select(s => s!.AsObject()).First(s => s["rate"]!.GetValue<double>() == compareRate);
        Console.WriteLine($"  {label}: write p99 at {compareRate}/s with {subs.Length} subscribers {atRate["writeP99Ms"]} ms, with {few.Length} {compare["writeP99Ms"]} ms");

        await DisconnectAsync(few, token);
        await DisconnectAsync(writerSessions, token);
        return Result("store", metrics, new JsonObject
        {
            ["collection"] = collection,
            ["writes"] = writePath,
            ["signedIn"] = signIn,
            ["subscribers"] = subs.Length,
            ["writers"] = writerCount,
            ["restConnections"] = writePath == "rest" ? restConnections : null,
            ["connectRate"] = connectRate,
            ["holdMs"] = options.Number("hold-ms", 250),
            ["heldRate"] = heldRate,
            ["steps"] = steps,
            ["compare"] = compare,
        });
    }

    /// <summary>One step: warm up at <paramref name="rate"/>, measure a window, pause the writer, wait for the window's events.</summary>
    private async Task<JsonObject> StoreStepAsync(StoreWriter writer, WriteLog log, Metrics metrics, double rate, int subscribers, CancellationToken token)
    {
        log.Clear();
        writer.Measuring = false;
        writer.Rate = rate;
        await Task.Delay(TimeSpan.FromSeconds(options.Number("warmup", 1)), token);

        var closedBefore = metrics.SocketsClosed;
        var committedBefore = log.Committed;
        var skippedBefore = writer.Skipped;
        var from = ProcessSample.Read(target);
        var recorder = metrics.Begin();
        writer.Measuring = true;
        await Task.Delay(TimeSpan.FromSeconds(options.Number("measure", 3)), token);
        writer.Measuring = false;
        writer.Rate = 0;
        metrics.End();
        var to = ProcessSample.Read(target);
        var seconds = ProcessSample.Seconds(from, to);
        var committedPerSecond = (log.Committed - committedBefore) / seconds;
        var skipped = writer.Skipped - skippedBefore;

        // Let the window's writes be answered and their events arrive; bounded, since a step that needs longer
        // has failed anyway (its p99 is far past the hold limit).
        var measured = log.Measured();
        var deadline = Stopwatch.GetTimestamp() + (long)(options.Number("drain", 3) * Stopwatch.Frequency);
        while (!measured.All(w => w.RepliedAt != 0 && (!w.Ok || w.Count >= subscribers)) && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(20, token);
        }

        var writeLatency = new Histogram();
        var lastSubscriber = new Histogram();
        int failed = 0, unanswered = 0, incomplete = 0;
        foreach (var write in measured)
        {
            if (write.RepliedAt == 0)
            {
                unanswered++;
            }
            else if (!write.Ok)
            {
                failed++;
            }
            else
            {
                writeLatency.Record(write.RepliedAt - write.Sent);
                // Exactly once per subscriber: a duplicate would be as wrong as a miss.
                if (write.Count == subscribers)
                {
                    lastSubscriber.Record(write.Last - write.Sent);
                }
                else
                {
                    incomplete++;
                }
            }
        }

        var closed = metrics.SocketsClosed - closedBefore;
        var lastP99 = lastSubscriber.PercentileMs(99);
        // The writer may also fall short of the rate without skipping: its pacing thread stalled, or a socket write
        // blocked because the server stopped reading. Such a step was not offered its rate, so it does not hold.
        var sentPerSecond = measured.Count / seconds;
        var holds = sentPerSecond >= 0.95 * rate && skipped == 0 && failed == 0 && unanswered == 0 && incomplete == 0 && closed == 0
            && lastP99 <= options.Number("hold-ms", 250);
        return new JsonObject
        {
            ["rate"] = rate,
            ["subscribers"] = subscribers,
            ["measuredWrites"] = measured.Count,
            ["sentPerSecond"] = Math.Round(sentPerSecond),
            ["committedPerSecond"] = Math.Round(committedPerSecond),
            ["deliveredPerSecond"] = Math.Round(recorder.Merge().Count / seconds),
            ["writeP50Ms"] = Round(writeLatency.PercentileMs(50)),
            ["writeP99Ms"] = Round(writeLatency.PercentileMs(99)),
            ["lastSubscriberP50Ms"] = Round(lastSubscriber.PercentileMs(50)),
            ["lastSubscriberP99Ms"] = Round(lastP99),
            ["failed"] = failed,
            ["unanswered"] = unanswered,
            ["skipped"] = skipped,
            ["incomplete"] = incomplete,
            ["socketsClosed"] = closed,
            ["serverCpuPercent"] = Math.Round(ProcessSample.CpuPercent(from, to)),
            ["databaseCpuPercent"] = target.DatabasePid > 0 ? Math.Round(ProcessSample.DatabaseCpuPercent(from, to)) : null,
            ["loadToolCpuPercent"] = Math.Round(ProcessSample.OwnCpuPercent(from, to)),
            ["serverRssMb"] = to.RssKb / 1024,
            ["holds"] = holds,
        };
    }

    /// <summary>Signs in <paramref name="count"/> demo users (<c>POST /api/session {"name"}</c>) and returns their bearer tokens.</summary>
    private async Task<string?[]> SignInAsync(string prefix, int count, CancellationToken token)
    {
        using var http = HttpClients.Create(target.EndPoint, 16);
        var tokens = new string?[count];
        using var gate = new SemaphoreSlim(16);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync(token);
            try
            {
                using var response = await http.PostAsJsonAsync("/api/session", new { name = prefix + i.ToString(CultureInfo.InvariantCulture) }, token);
                response.EnsureSuccessStatusCode();
                var body = await response.Content.ReadFromJsonAsync<JsonObject>(token);
                tokens[i] = (string?)body?["token"] ?? throw new IOException("sign-in answered without a token");
            }
            catch (HttpRequestException ex)
            {
                throw new IOException($"sign-in of {prefix}{i} failed: {ex.Message}", ex);
            }
            finally
            {
                gate.Release();
            }
        }));
        return tokens;
    }

    /// <summary>Ends the sessions, then closes their sockets once the disconnects have had time to arrive.</summary>
    private static async Task DisconnectAsync(Connection[] connections, CancellationToken token)
    {
        foreach (var connection in connections)
        {
            connection.SendDisconnect();
        }

        await Task.Delay(500, token);
        CloseAll(connections);
    }

    private static string StoreSummary(JsonObject step) =>
        $"sent {step["sentPerSecond"]}/s, committed {step["committedPerSecond"]}/s, delivered {step["deliveredPerSecond"]}/s, write p50 {step["writeP50Ms"]} p99 {step["writeP99Ms"]} ms, " +
        $"write→last subscriber p99 {step["lastSubscriberP99Ms"]} ms, {(int)step["measuredWrites"]! - (int)step["failed"]! - (int)step["unanswered"]! - (int)step["incomplete"]!}/{step["measuredWrites"]} events reached everyone, " +
        $"failed {step["failed"]}, unanswered {step["unanswered"]}, skipped {step["skipped"]}, closed {step["socketsClosed"]}, server CPU {step["serverCpuPercent"]}%, tool CPU {step["loadToolCpuPercent"]}%" +
        (step["holds"]!.GetValue<bool>() ? " - holds" : " - DOES NOT HOLD");
}
