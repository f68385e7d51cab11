using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Bench;

/// <summary>
/// The store scenario's tables: every step of every run, the write p99 with many vs few subscribers, the backends
/// side by side when the run had several (sqlite, postgres, postgres×3), and — when run.sh also ran an older checkout
/// (target "before", <c>BEFORE_REPO</c>, SQLite only) — the two builds side by side.
/// </summary>
public static class StoreReport
{
    /// <summary>The target name run.sh gives the <c>BEFORE_REPO</c> build; this checkout's is "tidings".</summary>
    public const string BeforeTarget = "before";
    private const string AfterTarget = "tidings";

    public static string Render(List<JsonObject> results)
    {
        var runs = results.Where(r => (string?)r["scenario"] == "store" && r["failed"] is null && r["steps"] is JsonArray).ToList();
        if (runs.Count == 0)
        {
            return "";
        }

        var text = new StringBuilder();
        var holdMs = runs[0]["holdMs"];
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Store-backed end to end (Tidings only): writes through the store, events to every WebSocket subscriber of the collection; each step 1 s warm-up + 3 s measured. A step holds when at least 95% of the rate was sent, every write committed, every subscriber got every event and write → last subscriber p99 ≤ {holdMs} ms. The last row of each run is the same rate with few subscribers.");
        text.AppendLine();
        text.AppendLine("| target | backend | collection | writes | rate/s | subs | sent/s | committed/s | deliveries/s | write p50 ms | write p99 ms | write → last subscriber p99 ms | server CPU % | database CPU % | holds |");
        text.AppendLine("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var run in runs)
        {
            foreach (var step in Steps(run).Append(run["compare"]!.AsObject()))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"| {run["target"]} | {Backend(run)} | {run["collection"]} | {run["writes"]} | {Format(step["rate"])} | {Format(step["subscribers"])} | {Format(step["sentPerSecond"])} | {Format(step["committedPerSecond"])} | {Format(step["deliveredPerSecond"])} | {step["writeP50Ms"]} | {step["writeP99Ms"]} | {step["lastSubscriberP99Ms"]} | {step["serverCpuPercent"]} | {Text(step["databaseCpuPercent"])} | {(step["holds"]!.GetValue<bool>() ? "yes" : "no")} |");
            }
        }

        text.AppendLine();
        foreach (var run in runs)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- {run["target"]} {Backend(run)} {run["collection"]} {run["writes"]}: {SubscriberLine(run)}");
        }

        var after = runs.Where(r => (string?)r["target"] == AfterTarget).ToList();
        var backends = after.Select(Backend).Distinct().ToList();
        if (backends.Count > 1)
        {
            RenderBackends(text, after, backends);
        }

        // BEFORE_REPO runs on SQLite only: compare it with this checkout's SQLite runs.
        var before = runs.Where(r => (string?)r["target"] == BeforeTarget).ToList();
        var afterSqlite = after.Where(r => Backend(r) == "sqlite").ToList();
        if (before.Count > 0 && afterSqlite.Count > 0)
        {
            RenderBeforeAfter(text, before, afterSqlite);
        }

        return text.ToString();
    }

    /// <summary>How a run names its store: sqlite, postgres or postgres×N (results from before the backend field were SQLite).</summary>
    public static string Backend(JsonObject run)
    {
        var backend = (string?)run["backend"] ?? "sqlite";
        var nodes = run["nodes"]?.GetValue<int>() ?? 1;
        return nodes > 1 ? $"{backend}×{nodes}" : backend;
    }

    /// <summary>This checkout's backends side by side: per case and rate, committed changes/s, write → last subscriber p99, holds.</summary>
    private static void RenderBackends(StringBuilder text, List<JsonObject> runs, List<string> backends)
    {
        var names = string.Join(" | ", backends);
        var dashes = string.Concat(backends.Select(_ => " ---: |"));
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Backends side by side ({string.Join(", ", backends)}), same cases, run alternately; committed/s = successful writes per second, every one of them delivered to every subscriber when the step holds:");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"| collection | writes | rate/s | committed/s {names} | write → last subscriber p99 ms {names} | holds {names} |");
        text.AppendLine(CultureInfo.InvariantCulture, $"| --- | --- | ---: |{dashes}{dashes}{string.Concat(backends.Select(_ => " --- |"))}");
        var keys = runs.Select(Key).Distinct().ToList();
        foreach (var key in keys)
        {
            var byBackend = backends.Select(b => runs.LastOrDefault(r => Key(r) == key && Backend(r) == b)).ToList();
            var rates = byBackend.Where(r => r is not null).SelectMany(r => Steps(r!)).Select(s => s["rate"]!.GetValue<double>()).Distinct().Order();
            foreach (var rate in rates)
            {
                var steps = byBackend.Select(r => r is null ? null : Steps(r).FirstOrDefault(s => s["rate"]!.GetValue<double>() == rate)).ToList();
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {key.Collection} | {key.Writes} | {Format(rate)} | {string.Join(" | ", steps.Select(s => Format(s?["committedPerSecond"])))} | {string.Join(" | ", steps.Select(s => Text(s?["lastSubscriberP99Ms"])))} | {string.Join(" | ", steps.Select(Holds))} |");
            }
        }

        text.AppendLine();
        foreach (var backend in backends)
        {
            var lines = keys.Select(key => runs.LastOrDefault(r => Key(r) == key && Backend(r) == backend)).Where(r => r is not null).Select(r => HeldLine(r!));
            text.AppendLine(CultureInfo.InvariantCulture, $"- {backend}: {string.Join("; ", lines)}");
        }
    }

    /// <summary>One case in a backend's derived line: the highest rate that held, with its committed/s and write → last subscriber p99.</summary>
    private static string HeldLine(JsonObject run)
    {
        var held = run["heldRate"] is { } h ? Steps(run).LastOrDefault(s => s["rate"]!.GetValue<double>() == h.GetValue<double>()) : null;
        return held is null
            ? $"{run["collection"]} {run["writes"]} held no step"
            : $"{run["collection"]} {run["writes"]} held {Format(held["rate"])}/s ({Format(held["committedPerSecond"])} committed/s, write → last subscriber p99 {held["lastSubscriberP99Ms"]} ms)";
    }

    /// <summary>The derived line: write p99 at one rate with all subscribers vs with few (it should not grow with subscribers).</summary>
    private static string SubscriberLine(JsonObject run)
    {
        var compare = run["compare"]!.AsObject();
        var rate = compare["rate"]!.GetValue<double>();
        var many = Steps(run).FirstOrDefault(s => s["rate"]!.GetValue<double>() == rate);
        var held = run["heldRate"] is { } h ? $"highest rate that held {Format(h)}/s" : "no step held";
        return $"{held}; write p99 at {Format(rate)}/s: {Format(many?["subscribers"])} subscribers {many?["writeP99Ms"]} ms vs {Format(compare["subscribers"])} subscribers {compare["writeP99Ms"]} ms ({Ratio(many?["writeP99Ms"], compare["writeP99Ms"])})";
    }

    private static void RenderBeforeAfter(StringBuilder text, List<JsonObject> before, List<JsonObject> after)
    {
        text.AppendLine();
        text.AppendLine("Before (BEFORE_REPO) / after (this checkout), same scenario, same machine, run alternately:");
        text.AppendLine();
        text.AppendLine("| collection | writes | rate/s | committed/s before | after | write p99 ms before | after | write → last p99 ms before | after | holds before | after |");
        text.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
        var keys = before.Concat(after).Select(Key).Distinct().ToList();
        foreach (var key in keys)
        {
            var b = before.LastOrDefault(r => Key(r) == key);
            var a = after.LastOrDefault(r => Key(r) == key);
            var rates = new[] { b, a }.Where(r => r is not null).SelectMany(r => Steps(r!)).Select(s => s["rate"]!.GetValue<double>()).Distinct().Order();
            foreach (var rate in rates)
            {
                var sb = b is null ? null : Steps(b).FirstOrDefault(s => s["rate"]!.GetValue<double>() == rate);
                var sa = a is null ? null : Steps(a).FirstOrDefault(s => s["rate"]!.GetValue<double>() == rate);
                text.AppendLine(CultureInfo.InvariantCulture, $"| {key.Collection} | {key.Writes} | {Format(rate)} | {Format(sb?["committedPerSecond"])} | {Format(sa?["committedPerSecond"])} | {Text(sb?["writeP99Ms"])} | {Text(sa?["writeP99Ms"])} | {Text(sb?["lastSubscriberP99Ms"])} | {Text(sa?["lastSubscriberP99Ms"])} | {Holds(sb)} | {Holds(sa)} |");
            }
        }

        text.AppendLine();
        foreach (var key in keys)
        {
            var b = before.LastOrDefault(r => Key(r) == key);
            var a = after.LastOrDefault(r => Key(r) == key);
            text.AppendLine(CultureInfo.InvariantCulture, $"- {key.Collection} {key.Writes}: before — {(b is null ? "not run" : SubscriberLine(b))}; after — {(a is null ? "not run" : SubscriberLine(a))}");
        }
    }

    private static (string? Collection, string? Writes) Key(JsonObject run) => ((string?)run["collection"], (string?)run["writes"]);

    private static IEnumerable<JsonObject> Steps(JsonObject run) => run["steps"]!.AsArray().Select(s => s!.AsObject());

    private static string Holds(JsonObject? step) => step is null ? "–" : step["holds"]!.GetValue<bool>() ? "yes" : "no";

    private static string Text(JsonNode? value) => value is null ? "–" : value.ToString();

    private static string Format(JsonNode? value) => value is null
        ? "–"
        : value.GetValue<double>() is var v && v >= 1000 ? v.ToString("N0", CultureInfo.InvariantCulture) : value.GetValue<double>().ToString("0.##", CultureInfo.InvariantCulture);

    private static string Ratio(JsonNode? many, JsonNode? few) =>
        many is null || few is null || few.GetValue<double>() == 0 ? "–" : (many.GetValue<double>() / few.GetValue<double>()).ToString("0.00", CultureInfo.InvariantCulture) + "×";
}
