using System.Collections.Specialized;
using System.Net;
using System.Text.Json.Nodes;
using Tidings.Client;
using Tidings.Client.Collections;
using Tidings.Tests.Support;

namespace Tidings.Tests.Sorted;

/// <summary>
/// Property: random concurrent moves from several clients — raw REST, a raw socket, and the .NET client's
/// <c>MoveAsync</c> over REST and over the socket (optimistic, settled by the echo) — converge. Every subscriber — one
/// that joined before the moves and one that joined with a snapshot while they ran — applies the events in seq order and
/// ends with exactly the order <c>GET</c> answers, whether it sorts by the records' positions or places each MOVE after
/// the id it names; so do the .NET clients' live collections, and a list that replays their CollectionChanged events.
/// </summary>
public class SortedConvergenceTests : IAsyncLifetime
{
    private const string Items = SortedCollectionTests.Items;
    private const int Records = 12;
    private const int Movers = 4;
    private const int MovesPerMover = 60;

    private TidingsApp _app = null!;

    public async Task InitializeAsync() => _app = await TidingsApp.StartAsync(declare: SortedCollectionTests.Declare, postgres: await PostgresAsync());

    protected virtual Task<string?> PostgresAsync() => Task.FromResult<string?>(null);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Concurrent_moves_from_rest_and_socket_clients_converge_on_one_order_everywhere(int seed)
    {
        var ids = new List<string>();
        for (var i = 0; i < Records; i++)
        {
            ids.Add((await _app.CreateAsync(Items, $$"""{"title":"r{{i}}"}"""))["id"]!.GetValue<string>());
        }

        var early = await SubscriberAsync();
        // Movers 2 and 3 are .NET clients (REST and socket writes); a third .NET client only watches.
        await using var dotnetRest = new TidingsClient(_app.Address);
        await using var dotnetSocket = new TidingsClient(_app.Address, new TidingsClientOptions { Writes = WriteChannel.Socket });
        await using var dotnetWatcher = new TidingsClient(_app.Address);
        var live = new List<(LiveCollection<JsonObject> Collection, List<string> Mirror)>();
        foreach (var client in new[] { dotnetRest, dotnetSocket, dotnetWatcher })
        {
            var collection = await client.CollectionAsync<JsonObject>(Items);
            live.Add((collection, Mirror(collection)));
        }

        var started = new TaskCompletionSource();
        var movers = Enumerable.Range(0, Movers).Select(m => Task.Run(async () =>
        {
            var random = new Random(seed * 100 + m);
            var socket = m == 1 ? new BayeuxClient(_app.Http) : null;
            var dotnet = m >= 2 ? live[m - 2].Collection : null;
            if (socket is not null)
            {
                await socket.HandshakeAsync();
            }

            for (var i = 0; i < MovesPerMover; i++)
            {
                if (i == MovesPerMover / 3)
                {
                    started.TrySetResult();
                }

                var id = ids[random.Next(ids.Count)];
                var anchor = ids[random.Next(ids.Count)];
                var place = random.Next(4) switch
                {
                    0 when anchor != id => new JsonObject { ["before"] = anchor },
                    1 when anchor != id => new JsonObject { ["after"] = anchor },
                    2 => new JsonObject { ["to"] = "start" },
                    _ => new JsonObject { ["to"] = "end" },
                };
                if (dotnet is not null)
                {
                    await dotnet.MoveAsync(id, (string?)place["before"] is { } before ? Placement.Before(before)
                        : (string?)place["after"] is { } after ? Placement.After(after)
                        : (string?)place["to"] == "start" ? Placement.Start : Placement.End);
                }
                else if (socket is null)
                {
                    using var response = await _app.PostAsync($"{Items}/{id}/move", place.ToJsonString());
                    Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }
                else
                {
                    place["method"] = "MOVE";
                    place["body"] = new JsonObject { ["id"] = id };
                    BayeuxClient.Succeeded(await socket.PublishAsync(Items, place));
                }
            }
        })).ToList();

        await started.Task.WaitAsync(Eventually.Patience);
        var late = await SubscriberAsync();
        await Task.WhenAll(movers).WaitAsync(TimeSpan.FromSeconds(60));

        var final = await _app.ListAsync(Items);
        Assert.Equal(Records + Movers * MovesPerMover, final.Seq);
        foreach (var subscriber in new[] { early, late })
        {
            var (byPosition, byAfter) = await FollowAsync(subscriber, final.Seq);
            Assert.Equal(final.Ids, byPosition);
            Assert.Equal(final.Ids, byAfter);
        }

        foreach (var (collection, mirror) in live)
        {
            await Eventually.UntilAsync(() => collection.Seq == final.Seq && collection.PendingIds.Count == 0, "a .NET client to apply every move");
            Assert.Equal(final.Ids, collection.Items.Select(i => i["id"]!.GetValue<string>()));
            lock (mirror)
            {
                Assert.Equal(final.Ids, mirror);
            }
        }
    }

    /// <summary>The ids of a list kept as a bound UI list keeps itself: by replaying the collection's events.</summary>
    private static List<string> Mirror(LiveCollection<JsonObject> collection)
    {
        var mirror = new List<string>();
        lock (mirror)
        {
            mirror.AddRange(collection.Items.Select(i => i["id"]!.GetValue<string>()));
        }

        collection.CollectionChanged += (_, e) =>
        {
            lock (mirror)
            {
                switch (e.Action)
                {
                    case NotifyCollectionChangedAction.Add:
                        mirror.Insert(e.NewStartingIndex, ((JsonObject)e.NewItems![0]!)["id"]!.GetValue<string>());
                        break;
                    case NotifyCollectionChangedAction.Remove:
                        mirror.RemoveAt(e.OldStartingIndex);
                        break;
                    case NotifyCollectionChangedAction.Move:
                        var id = mirror[e.OldStartingIndex];
                        mirror.RemoveAt(e.OldStartingIndex);
                        mirror.Insert(e.NewStartingIndex, id);
                        break;
                    case NotifyCollectionChangedAction.Reset:
                        mirror.Clear();
                        mirror.AddRange(collection.Items.Select(i => i["id"]!.GetValue<string>()));
                        break;
                }
            }
        };
        return mirror;
    }

    private async Task<BayeuxClient> SubscriberAsync()
    {
        var client = new BayeuxClient(_app.Http);
        await client.HandshakeAsync();
        BayeuxClient.Succeeded(await client.SubscribeAsync(Items, new JsonObject { ["snapshot"] = true }));
        return client;
    }

    /// <summary>Applies the snapshot and then every event in seq order (checking it is contiguous) up to <paramref name="upTo"/>.</summary>
    private static async Task<(List<string> ByPosition, List<string> ByAfter)> FollowAsync(BayeuxClient client, long upTo)
    {
        var snapshot = (await client.NextAsync()).Data;
        Assert.Equal("SNAPSHOT", snapshot["method"]!.GetValue<string>());
        var positions = new Dictionary<string, string>();
        var list = new List<string>();
        foreach (var item in snapshot["items"]!.AsArray())
        {
            positions[item!["id"]!.GetValue<string>()] = item["position"]!.GetValue<string>();
            list.Add(item["id"]!.GetValue<string>());
        }

        var seq = snapshot["seq"]!.GetValue<long>();
        while (seq < upTo)
        {
            var change = await client.NextAsync();
            Assert.Equal(seq + 1, change.Seq);
            seq = change.Seq;
            Assert.Equal("MOVE", change.Method);
            positions[change.Id] = change.Body["position"]!.GetValue<string>();
            list.Remove(change.Id);
            var after = change.Data["after"]?.GetValue<string>();
            list.Insert(after is null ? 0 : list.IndexOf(after) + 1, change.Id);
        }

        return ([.. positions.OrderBy(p => p.Value, StringComparer.Ordinal).Select(p => p.Key)], list);
    }
}

/// <summary>The same property on PostgreSQL, where writers really run at once (the order lock serializes them).</summary>
public sealed class PostgresSortedConvergenceTests : SortedConvergenceTests
{
    protected override async Task<string?> PostgresAsync() => await PostgresServer.Instance.CreateDatabaseAsync();
}
