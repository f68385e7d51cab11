// Publishes per second on one channel while N distinct inner-wildcard patterns (/z/*/p0 … that never match it) are
// subscribed, N = 0 … 100,000, with one matching /api/flows/*/messages subscriber. Before the segment tree every
// publish checked every pattern; with it the count should not matter. In process, no network: the index alone.
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tidings.Bayeux;
using Tidings.Bayeux.Server;

var publishes = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 200_000;
using var server = new BayeuxServer(Options.Create(new BayeuxOptions()), TimeProvider.System, NullLogger<BayeuxServer>.Instance, []);
var reached = 0L;
using var matching = server.Subscribe("/api/flows/*/messages", _ => reached++);
var data = JsonSerializer.SerializeToElement(new { method = "POST", seq = 1, body = new { content = "hi" } });
var held = new List<IDisposable>();

Console.WriteLine("| inner-wildcard patterns | publishes/s | µs per publish |");
Console.WriteLine("|---:|---:|---:|");
foreach (var count in new[] { 0, 1_000, 10_000, 100_000 })
{
    while (held.Count < count)
    {
        held.Add(server.Subscribe($"/z/*/p{held.Count}", _ => { }));
    }

    for (var i = 0; i < publishes / 10; i++)
    {
        server.Publish("/api/flows/f/messages", data); // warm-up
    }

    var watch = Stopwatch.StartNew();
    for (var i = 0; i < publishes; i++)
    {
        server.Publish("/api/flows/f/messages", data);
    }

    watch.Stop();
    Console.WriteLine($"| {count:N0} | {publishes / watch.Elapsed.TotalSeconds:N0} | {watch.Elapsed.TotalMicroseconds / publishes:N2} |");
}

Console.WriteLine($"(each publish reached the one matching subscriber: {reached:N0} deliveries)");
