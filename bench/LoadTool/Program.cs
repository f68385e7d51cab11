using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bench;

// Tidings benchmark load tool. bench/run.sh drives it; by hand:
//   LoadTool fanout   --target tidings --protocol bayeux --endpoint 127.0.0.1:5080 --path /bayeux --pid PID --out results.jsonl
//   LoadTool channels | idle | e2e | store  (same options; see Scenarios.cs and Scenarios.Store.cs for the per-scenario ones)
//   LoadTool report results.jsonl
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: LoadTool fanout|channels|idle|e2e|store --target NAME --protocol bayeux|raw --endpoint IP:PORT --path /bayeux --pid PID [--out FILE] | report FILE");
    return 2;
}

if (args[0] == "report")
{
    Console.Write(Report.Render(File.ReadAllLines(args[1]).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList()));
    return 0;
}

var values = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 1; i + 1 < args.Length; i += 2)
{
    values[args[i].TrimStart('-')] = args[i + 1];
}

var options = new Options(values);
var target = new Target(
    options.Text("target", "tidings"),
    options.Text("protocol", "bayeux") == "raw" ? Protocol.Raw : Protocol.Bayeux,
    IPEndPoint.Parse(options.Text("endpoint", "127.0.0.1:5080")),
    options.Text("path", "/bayeux"),
    options.Count("pid", 0));

// Every scenario is bounded in time as well as in counts.
using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(options.Number("timeout", 180)));
var scenarios = new Scenarios(target, options);
JsonObject result;
try
{
    result = args[0] switch
    {
        "fanout" => await scenarios.FanOutAsync(cancel.Token),
        "channels" => await scenarios.ChannelsAsync(cancel.Token),
        "idle" => await scenarios.IdleAsync(cancel.Token),
        "e2e" => await scenarios.EndToEndAsync(cancel.Token),
        "store" => await scenarios.StoreAsync(cancel.Token),
        _ => throw new ArgumentException($"unknown scenario '{args[0]}'"),
    };
}
catch (Exception ex) when (ex is OperationCanceledException or IOException or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"  {target.Name} {args[0]} failed: {ex.Message}");
    result = new JsonObject { ["target"] = target.Name, ["scenario"] = args[0], ["failed"] = ex.Message };
}

var line = result.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
if (values.TryGetValue("out", out var output))
{
    File.AppendAllText(output, line + Environment.NewLine);
}
else
{
    Console.WriteLine(line);
}

return result.ContainsKey("failed") ? 1 : 0;
