using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Bench;

/// <summary>The crossnode scenario's table: plain publishes through the database to other nodes, beside the same on one node.</summary>
public static class CrossNodeReport
{
    public static string Render(List<JsonObject> results)
    {
        var runs = results.Where(r => (string?)r["scenario"] == "crossnode" && r["failed"] is null && r["steps"] is JsonArray).ToList();
        if (runs.Count == 0)
        {
            return "";
        }

        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine("Plain publishes across nodes (Tidings only): one plain Bayeux channel, publish rate stepped (1 s warm-up + 3 s measured per step) until saturated (delivered < 80% of asked, p99 > 1 s, a socket dropped, or publishes not taken). Several nodes: publishers on node A, subscribers on the others, every delivery through PostgreSQL; one node: publishers and subscribers on it. Server CPU is all nodes together.");
        text.AppendLine();
        text.AppendLine("| backend | layout | publish rate | subs | asked deliveries/s | delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU % | database CPU % | tool CPU % | saturated |");
        text.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var run in runs)
        {
            foreach (var step in Steps(run))
            {
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {StoreReport.Backend(run)} | {run["layout"]} | {Format(step["rate"])} | {run["subscribers"]} | {Format(step["targetDelivered"])} | {Format(step["delivered"])} | {step["p50Ms"]} | {step["p99Ms"]} | {step["p999Ms"]} | {step["serverCpuPercent"]} | {Text(step["databaseCpuPercent"])} | {step["loadToolCpuPercent"]} | {((bool?)step["saturated"] == true ? "yes" : "")} |");
            }
        }

        text.AppendLine();
        foreach (var run in runs)
        {
            var held = Steps(run).LastOrDefault(s => (bool?)s["saturated"] != true);
            var line = held is null
                ? "saturated at its first step"
                : $"highest unsaturated rate {Format(held["rate"])} msg/s, {Format(held["delivered"])} deliveries/s, publish → subscriber p99 {held["p99Ms"]} ms";
            text.AppendLine(CultureInfo.InvariantCulture, $"- {StoreReport.Backend(run)} ({run["layout"]}): {line}");
        }

        // The hop itself: p99 at each rate both layouts ran, several nodes vs one.
        var one = runs.LastOrDefault(r => (r["nodes"]?.GetValue<int>() ?? 1) == 1);
        var several = runs.LastOrDefault(r => (r["nodes"]?.GetValue<int>() ?? 1) > 1);
        if (one is not null && several is not null)
        {
            var pairs = Steps(several)
                .Select(s => (Rate: s["rate"]!.GetValue<double>(), Cross: s, One: Steps(one).FirstOrDefault(o => o["rate"]!.GetValue<double>() == s["rate"]!.GetValue<double>())))
                .Where(p => p.One is not null)
                .Select(p => $"{Format(p.Rate)}/s {Text(p.Cross["p99Ms"])} vs {Text(p.One!["p99Ms"])} ms");
            text.AppendLine(CultureInfo.InvariantCulture, $"- publish → subscriber p99, {StoreReport.Backend(several)} across nodes vs {StoreReport.Backend(one)} one node: {string.Join("; ", pairs)}");
        }

        return text.ToString();
    }

    private static IEnumerable<JsonObject> Steps(JsonObject run) => run["steps"]!.AsArray().Select(s => s!.AsObject());

    private static string Text(JsonNode? value) => value is null ? "–" : value.ToString();

    private static string Format(JsonNode? value) => value is null
        ? "–"
        : value.GetValue<double>() is var v && v >= 1000 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("0.##", CultureInfo.InvariantCulture);
}
