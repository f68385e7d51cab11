using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Bench;

/// <summary>Turns the scenario results into the Markdown table of RESULTS.md, with Tidings/Faye and Tidings/ceiling ratios.</summary>
public static class Report
{
    private static readonly string[] Targets = ["tidings", "faye", "ceiling"];

    public static string Render(List<JsonObject> results)
    {
        JsonObject? Find(string target, string scenario) =>
            results.LastOrDefault(r => (string?)r["target"] == target && (string?)r["scenario"] == scenario && r["failed"] is null);

        var rows = new List<(string Metric, Func<JsonObject, double?> Value, bool HigherIsBetter, string Scenario)>
        {
            ("fan-out: best delivered msgs/s", r => Best(r)?["delivered"]?.GetValue<double>(), true, "fanout"),
            ("fan-out: publish rate at best (msg/s × subs)", r => Best(r)?["rate"]?.GetValue<double>(), true, "fanout"),
            ("fan-out: p99 ms at best", r => Best(r)?["p99Ms"]?.GetValue<double>(), false, "fanout"),
            ("fan-out: p50 ms at 100 msg/s (1,000 subs)", r => At(r, 100)?["p50Ms"]?.GetValue<double>(), false, "fanout"),
            ("fan-out: p99 ms at 100 msg/s (1,000 subs)", r => At(r, 100)?["p99Ms"]?.GetValue<double>(), false, "fanout"),
            ("fan-out: p99.9 ms at 100 msg/s (1,000 subs)", r => At(r, 100)?["p999Ms"]?.GetValue<double>(), false, "fanout"),
            ("fan-out: server CPU % at best (200 = both cores)", r => Best(r)?["serverCpuPercent"]?.GetValue<double>(), false, "fanout"),
            ("fan-out: connect rate, sessions/s", r => r["connectRate"]?.GetValue<double>(), true, "fanout"),
            ("channels: best delivered msgs/s", r => Best(r)?["delivered"]?.GetValue<double>(), true, "channels"),
            ("channels: p99 ms at first step", r => First(r)?["p99Ms"]?.GetValue<double>(), false, "channels"),
            ("channels: p99 ms at best", r => Best(r)?["p99Ms"]?.GetValue<double>(), false, "channels"),
            ("channels: connect rate, sessions/s", r => r["connectRate"]?.GetValue<double>(), true, "channels"),
            ("idle: sessions held", r => r["sessions"]?.GetValue<double>(), true, "idle"),
            ("idle: connect rate, sessions/s", r => r["connectRate"]?.GetValue<double>(), true, "idle"),
            ("idle: server KB per session (RSS delta)", r => r["kbPerSession"]?.GetValue<double>(), false, "idle"),
            ("idle: broadcast to all, max ms", r => r["broadcastMaxMs"]?.GetValue<double>(), false, "idle"),
        };

        var text = new StringBuilder();
        // A store-only or crossnode-only run has nothing for the comparison tables: print only its own.
        var comparison = results.Any(r => (string?)r["scenario"] is not ("store" or "crossnode"));
        if (comparison)
        {
            text.AppendLine("| metric | Tidings | Faye (Node) | raw WS ceiling | Tidings/Faye | Tidings/ceiling |");
            text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
            foreach (var (metric, value, _, scenario) in rows)
            {
                var values = Targets.Select(t => Find(t, scenario) is { } r ? value(r) : null).ToArray();
                text.Append(CultureInfo.InvariantCulture, $"| {metric} | {Format(values[0])} | {Format(values[1])} | {Format(values[2])} | {Ratio(values[0], values[1])} | {Ratio(values[0], values[2])} |\n");
            }
        }

        if (Find("tidings", "e2e") is { } e2e)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"End to end (Tidings only — Faye and the ceiling have no REST store): POST /api/todos at {e2e["rate"]}/s, {e2e["writes"]} writes, {e2e["subscribers"]} WebSocket subscribers of /api/todos.");
            text.AppendLine();
            text.AppendLine("| metric | Tidings |");
            text.AppendLine("| --- | ---: |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| events that reached every subscriber | {e2e["eventsComplete"]} / {e2e["writes"]} |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| POST → each subscriber p50 / p99 / p99.9 ms | {e2e["p50Ms"]} / {e2e["p99Ms"]} / {e2e["p999Ms"]} |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| POST → last subscriber p50 / p99 ms | {e2e["allSubscribersP50Ms"]} / {e2e["allSubscribersP99Ms"]} |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| POST response (201) p50 / p99 ms | {e2e["postP50Ms"]} / {e2e["postP99Ms"]} |");
            text.AppendLine(CultureInfo.InvariantCulture, $"| server CPU % | {e2e["serverCpuPercent"]} |");
        }

        text.Append(StoreReport.Render(results));
        text.Append(CrossNodeReport.Render(results));
        if (comparison)
        {
            text.AppendLine();
            text.AppendLine("Steps (each: 1 s warm-up, 3 s measured; delivered = messages received by all subscribers per second):");
            text.AppendLine();
            text.AppendLine("| target | scenario | publish rate | asked deliveries/s | delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU % | tool CPU % | server RSS MB | closed | saturated |");
            text.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        }

        foreach (var result in results.Where(r => r["steps"] is JsonArray && (string?)r["scenario"] is not ("store" or "crossnode")))
        {
            foreach (var step in result["steps"]!.AsArray().Select(s => s!.AsObject()))
            {
                var rate = step["rate"] is { } r ? Format(r.GetValue<double>()) : $"{step["sharedRate"]} shared + {step["ownRate"]} own";
                text.AppendLine(CultureInfo.InvariantCulture, $"| {result["target"]} | {result["scenario"]} | {rate} | {Format(step["targetDelivered"]?.GetValue<double>())} | {Format(step["delivered"]?.GetValue<double>())} | {step["p50Ms"]} | {step["p99Ms"]} | {step["p999Ms"]} | {step["serverCpuPercent"]} | {step["loadToolCpuPercent"]} | {step["serverRssMb"]} | {step["socketsClosed"]} | {((bool?)step["saturated"] == true ? "yes" : "")} |");
            }
        }

        var failures = results.Where(r => r["failed"] is not null || (r["errors"]?.GetValue<long>() ?? 0) > 0).ToList();
        if (failures.Count > 0)
        {
            text.AppendLine();
            foreach (var f in failures)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"- {f["target"]} {f["scenario"]}: {f["failed"] ?? $"{f["errors"]} errors, first: {f["firstError"]}"}");
            }
        }

        return text.ToString();
    }

    private static JsonObject? Best(JsonObject result) =>
        result["steps"]?.AsArray().Select(s => s!.AsObject()).MaxBy(s => s["delivered"]?.GetValue<double>() ?? 0);

    private static JsonObject? First(JsonObject result) => result["steps"]?.AsArray().FirstOrDefault()?.AsObject();

    private static JsonObject? At(JsonObject result, double rate) =>
        result["steps"]?.AsArray().Select(s => s!.AsObject()).FirstOrDefault(s => s["rate"]?.GetValue<double>() == rate);

    private static string Format(double? value) => value switch
    {
        null => "–",
        >= 1000 => value.Value.ToString("N0", CultureInfo.InvariantCulture),
        _ => value.Value.ToString("0.##", CultureInfo.InvariantCulture),
    };

    private static string Ratio(double? a, double? b) =>
        a is { } x && b is { } y && y != 0 ? (x / y).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–";
}
