using System.Text.Json.Nodes;
using Tidings.Client.Collections;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>
/// Invariant 3 from the client's side: several .NET clients (WebSocket, long-polling only, socket writes) and a JS client
/// (clients/js on Node's faye client, a child process) writing at random through a proxy that cuts their connections,
/// across a server restart, all end equal to the server's state, none having applied an event twice.
/// </summary>
public sealed class ConvergenceTests
{
    private const string Todos = "/api/todos";

    [Fact(Timeout = 120_000)]
    public async Task Clients_converge_under_random_writes_connection_cuts_and_a_server_restart()
    {
        await using var server = await DemoServer.StartAsync();
        await using var proxy = new TcpProxy(server.Address);
        var options = new[]
        {
            new TidingsClientOptions { MaxReconnectDelay = TimeSpan.FromMilliseconds(500) },
            new TidingsClientOptions { MaxReconnectDelay = TimeSpan.FromMilliseconds(500), Transport = BayeuxTransportKind.LongPolling },
            new TidingsClientOptions { MaxReconnectDelay = TimeSpan.FromMilliseconds(500), Writes = WriteChannel.Socket, UseAckExtension = false },
        };
        var clients = options.Select(o =>
        {
            o.WriteTimeout = TimeSpan.FromSeconds(20);
            return new TidingsClient(proxy.Address, o);
        }).ToArray();
        JsCollectionClient? js = null;
        try
        {
            var recorders = new List<Recorder>();
            foreach (var client in clients)
            {
                recorders.Add(new Recorder(await client.CollectionAsync<JsonObject>(Todos)));
            }

            // The JS client ends itself after 110 s at the latest (the test's limit is 120 s).
            js = await JsCollectionClient.StartAsync(proxy.Address, Todos, seed: 2000, TimeSpan.FromSeconds(110));

            using var stop = new CancellationTokenSource();
            var writers = recorders.Select((r, i) => WriteAtRandomAsync(r.Collection, new Random(1000 + i), stop.Token)).ToList();

            // Cuts while everyone writes, a restart (every session lost, a new port behind the same address), more cuts.
            var chaos = new Random(7);
            for (var round = 0; round < 6; round++)
            {
                var least = (round + 1) * 8;
                await Eventually.UntilAsync(() => recorders.All(r => r.Applied >= least) && js.Applied >= least, $"writes flowing (round {round})", TimeSpan.FromSeconds(30));
                if (round == 3)
                {
                    await server.RestartAsync();
                    proxy.Target = server.Address;
                }

                proxy.Cut();
                await Task.Delay(chaos.Next(20, 200));
            }

            await stop.CancelAsync();
            await Task.WhenAll(writers);
            var jsWrites = await js.StopWritingAsync();

            var (items, _) = await server.ListAsync(Todos);
            var expected = Canonical(items.Select(i => i!.AsObject()));
            foreach (var recorder in recorders)
            {
                await Eventually.UntilAsync(() => Canonical(recorder.Collection.Items) == expected && recorder.Collection.PendingIds.Count == 0,
                    "a client to equal the server: " + Canonical(recorder.Collection.Items) + "\nvs\n" + expected, TimeSpan.FromSeconds(30));
                Assert.Equal(expected, Canonical(recorder.Mirror));
                Assert.Empty(recorder.Problems);
            }

            JsonObject jsState = null!;
            await Eventually.UntilAsync(async () =>
            {
                jsState = await js.StateAsync();
                return Canonical(jsState["items"]!.AsArray().Select(i => i!.AsObject())) == expected && jsState["pending"]!.AsArray().Count == 0;
            }, "the JS client to equal the server", TimeSpan.FromSeconds(30));
            Assert.Empty(jsState["problems"]!.AsArray());
            Assert.Empty(jsState["errors"]!.AsArray());
            Assert.True(jsWrites["creates"]!.GetValue<int>() > 0, "the JS client wrote: " + jsWrites.ToJsonString());

            Assert.True(proxy.Cuts > 0, "the proxy cut connections");
            Assert.True(items.Count > 0);
        }
        finally
        {
            if (js is not null)
            {
                await js.DisposeAsync();
            }

            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    /// <summary>Creates, updates and deletes at random until stopped; refusals of records others deleted are expected.</summary>
    private static async Task WriteAtRandomAsync(LiveCollection<JsonObject> todos, Random random, CancellationToken stop)
    {
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            var items = todos.Items;
            var roll = random.Next(10);
            try
            {
                if (items.Count < 5 || roll < 5)
                {
                    await todos.CreateAsync(new JsonObject { ["title"] = $"t{n++}", ["order"] = random.Next(100) }, CancellationToken.None);
                }
                else if (roll < 8)
                {
                    var id = (string)items[random.Next(items.Count)]["id"]!;
                    await todos.UpdateAsync(id, new JsonObject { ["title"] = $"u{n++}", ["completed"] = random.Next(2) == 1 }, cancellationToken: CancellationToken.None);
                }
                else
                {
                    await todos.DeleteAsync((string)items[random.Next(items.Count)]["id"]!, cancellationToken: CancellationToken.None);
                }
            }
            catch (TidingsException ex) when (ex.Status is 404 or 408 or 409)
            {
                // Another client deleted it first, or the write's answer was lost in a cut: the stream settles it.
            }
        }
    }

    /// <summary>The records' ids, versions and writable fields, sorted by id.</summary>
    private static string Canonical(IEnumerable<JsonObject> records) =>
        string.Join("\n", records
            .Select(r => $"{r["id"]}|{r["version"]}|{r["title"]}|{r["completed"]}|{r["order"]}")
            .Order(StringComparer.Ordinal));
}
