using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bench;

// Tidings benchmark load tool. bench/run.sh drives it; by hand:
//   LoadTool fanout   --target tidings --protocol bayeux --endpoint 127.0.0.1:5080 --path /bayeux --pid PID --out results.jsonl
//   LoadTool channels | idle | e2e | store | crossnode  (same options; see Scenarios*.cs for the per-scenario ones)
//   Several nodes of one app: --endpoints 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 --pids PID1,PID2,PID3 (instead of
//   --endpoint/--pid); sessions and writes are spread over them round-robin. --db-pid PID: the database server's
//   CPU (it and its child processes) beside the servers'.
//   LoadTool report results.jsonl
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: LoadTool fanout|channels|idle|e2e|store|crossnode --target NAME --protocol bayeux|raw --endpoint IP:PORT | --endpoints IP:PORT,… --path /bayeux --pid PID | --pids PID,… [--db-pid PID] [--backend NAME] [--out FILE] | report FILE");
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
var endpoints = options.Text("endpoints", options.Text("endpoint", "127.0.0.1:5080")).Split(',').Select(IPEndPoint.Parse).ToArray();
var pids = options.Text("pids", options.Text("pid", "0")).Split(',').Select(int.Parse).Where(pid => pid > 0).ToArray();
var target = new Target(
    options.Text("target", "tidings"),
    options.Text("protocol", "bayeux") == "raw" ? Protocol.Raw : Protocol.Bayeux,
    endpoints,
    options.Text("path", "/bayeux"),
    pids,
    options.Count("db-pid", 0),
    options.Text("backend", ""));

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
        "crossnode" => await scenarios.CrossNodeAsync(cancel.Token),
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
