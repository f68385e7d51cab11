using System.Text.Json.Nodes;

namespace Tidings.Bench;

public sealed partial class Scenarios
{
    /// <summary>
    /// (f) Plain publishes across nodes (Tidings on PostgreSQL): publishers on the first endpoint (node A), subscribers
    /// of one plain Bayeux channel — not a collection — round-robin on the others (B, C, …), so every delivery crossed
    /// the database (<c>tidings_messages</c>). The publish rate rises step by step until saturation, as in fan-out. With
    /// one endpoint, publishers and subscribers share the node: the same measurement without the hop, to compare.
    /// Options: --subs N --pubs N --rates A,B,… --prewarm SECONDS.
    /// </summary>
    public async Task<JsonObject> CrossNodeAsync(CancellationToken token)
    {
        var metrics = new Metrics(TimestampMarker);
        const string channel = "/bench/cross";
        var endpoints = target.EndPoints;
        var publishOn = endpoints[..1];
        var subscribeOn = endpoints.Length == 1 ? endpoints : endpoints[1..];
        var (subs, connectRate) = await OpenAsync(metrics, options.Count("subs", 100), _ => [channel], token, endpoints: subscribeOn);
        var pubs = (await OpenAsync(metrics, options.Count("pubs", 2), _ => [], token, endpoints: publishOn)).Connections;
        var rates = options.Numbers("rates", [100, 250, 500, 1000, 2000, 4000, 8000]);
        var layout = endpoints.Length == 1
            ? "publishers and subscribers on one node"
            : $"publishers on node A, subscribers on {string.Join(", ", subscribeOn.Select((_, i) => (char)('B' + i)))}";
        var label = $"{target.Name} {target.BackendLabel} crossnode ({layout})";
        var steps = new JsonArray();
        using (var publisher = new Publisher(pubs, [channel], target.Protocol))
        {
            // Fresh servers compile their publish, broker and fan-out paths in the first seconds: keep that out of the first step.
            publisher.Rate = rates[0];
            await Task.Delay(TimeSpan.FromSeconds(options.Number("prewarm", 3)), token);
            foreach (var rate in rates)
            {
                var step = await StepAsync(metrics, [(publisher, rate, subs.Length)], token);
                step["rate"] = rate;
                steps.Add(step);
                Console.WriteLine($"  {label} {rate,6} msg/s x {subs.Length}: {Summary(step)}");
                if (step["saturated"]!.GetValue<bool>())
                {
                    break;
                }
            }

            publisher.Rate = 0;
        }

        await DisconnectAsync([.. subs, .. pubs], token);
        return Result("crossnode", metrics, new JsonObject
        {
            ["layout"] = layout,
            ["subscribers"] = subs.Length,
            ["publishers"] = pubs.Length,
            ["connectRate"] = connectRate,
            ["steps"] = steps,
        });
    }
}
