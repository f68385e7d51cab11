using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Tidings.Storage;
using Tidings.Tests.Support;

namespace Tidings.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="ITidingsStore"/> must have (see the contract on the interface): atomic writes,
/// contiguous seqs, durability, the change source's order and start, <c>ChangesSince</c> bounds. A store's test class
/// derives from this and supplies <see cref="CreateStoreAsync"/>; nothing here knows which store it is testing.
/// How changes reach subscribers (no gap, no repeat, whatever the interleaving) is the feed's contract, tested once
/// for every store in tests/Tidings.Tests/Changes/FeedContractTests.cs.
/// </summary>
public abstract class StoreContract : IAsyncLifetime
{
    private const string Todos = "/api/todos";
    private const string Main = "/api/flows/main/messages";
    private const string Side = "/api/flows/side/messages";

    private readonly List<ITidingsStore> _open = [];
    private readonly Dictionary<ITidingsStore, ChangeRecorder> _recorders = [];

    /// <summary>
    /// Creates a store (not yet initialized) over the database called <paramref name="database"/>. The same
    /// name within one test means the same stored data; a new name means a new, empty database.
    /// </summary>
    /// <param name="retainedChanges">How many change-log entries the store keeps per channel.</param>
    protected abstract Task<ITidingsStore> CreateStoreAsync(string database, int retainedChanges);

    /// <summary>Removes what the test's databases left behind; every store is disposed before this runs.</summary>
    protected virtual Task DeleteDatabasesAsync() => Task.CompletedTask;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _open)
        {
            await store.DisposeAsync();
        }

        foreach (var recorder in _recorders.Values)
        {
            await recorder.DisposeAsync();
        }

        await DeleteDatabasesAsync();
    }

    /// <summary>Opens a store; its change source is read from the start, as the change feed would.</summary>
    private async Task<ITidingsStore> OpenAsync(string database = "main", int retainedChanges = 10_000)
    {
        var store = await CreateStoreAsync(database, retainedChanges);
        _open.Add(store);
        await store.InitializeAsync(CancellationToken.None).WaitAsync(Eventually.Patience);
        _recorders[store] = new ChangeRecorder(store.Changes);
        return store;
    }

    private ChangeRecorder Source(ITidingsStore store) => _recorders[store];

    private static StoredRecord Record(string id, long version = 1, int n = 0) =>
        new(id, version, new JsonObject { ["id"] = id, ["version"] = version, ["n"] = n }.ToJsonString());

    private static string NewId() => Guid.NewGuid().ToString("D");

    private static Task<T> Write<T>(ITidingsStore store, Func<IStoreWriter, T> work) =>
        store.WriteAsync(work, CancellationToken.None).WaitAsync(Eventually.Patience);

    private static Task<T> Read<T>(ITidingsStore store, Func<IStoreReader, T> work) =>
        store.ReadAsync(work, CancellationToken.None).WaitAsync(Eventually.Patience);

    [Fact]
    public async Task A_written_record_reads_back_by_id_and_only_under_its_own_path()
    {
        var store = await OpenAsync();
        var record = Record(NewId(), n: 7);

        await Write(store, w =>
        {
            w.Put(Todos, record);
            return 0;
        });

        Assert.Equal(record, await Read(store, r => r.Get(Todos, record.Id)));
        Assert.Null(await Read(store, r => r.Get(Main, record.Id)));
        Assert.Null(await Read(store, r => r.Get(Todos, NewId())));
    }

    [Fact]
    public async Task A_write_sees_its_own_puts_before_it_commits()
    {
        var store = await OpenAsync();
        var record = Record(NewId());

        var seen = await Write(store, w =>
        {
            w.Put(Todos, record);
            return w.Get(Todos, record.Id);
        });

        Assert.Equal(record, seen);
    }

    [Fact]
    public async Task Put_replaces_a_record_and_keeps_its_place_in_creation_order()
    {
        var store = await OpenAsync();
        var (a, b, c) = (Record(NewId()), Record(NewId()), Record(NewId()));
        await Write(store, w =>
        {
            w.Put(Todos, a);
            w.Put(Todos, b);
            w.Put(Todos, c);
            return 0;
        });

        var b2 = Record(b.Id, version: 2, n: 99);
        await Write(store, w =>
        {
            w.Put(Todos, b2);
            return 0;
        });

        Assert.Equal(b2, await Read(store, r => r.Get(Todos, b.Id)));
        Assert.Equal([a, b2, c], await Read(store, r => r.List(Todos, 100)));
    }

    [Fact]
    public async Task Delete_says_whether_there_was_a_record_to_delete()
    {
        var store = await OpenAsync();
        var record = Record(NewId());
        await Write(store, w =>
        {
            w.Put(Todos, record);
            return 0;
        });

        Assert.False(await Write(store, w => w.Delete(Main, record.Id)));
        Assert.True(await Write(store, w => w.Delete(Todos, record.Id)));
        Assert.False(await Write(store, w => w.Delete(Todos, record.Id)));
        Assert.Null(await Read(store, r => r.Get(Todos, record.Id)));
        Assert.Empty(await Read(store, r => r.List(Todos, 100)));
    }

    [Fact]
    public async Task List_returns_a_paths_records_oldest_first_up_to_the_limit()
    {
        var store = await OpenAsync();
        var records = Enumerable.Range(0, 10).Select(n => Record(NewId(), n: n)).ToList();
        foreach (var record in records)
        {
            await Write(store, w =>
            {
                w.Put(Main, record);
                w.Put(Side, Record(NewId()));
                return 0;
            });
        }

        Assert.Equal(records, await Read(store, r => r.List(Main, 100)));
        Assert.Equal(records.Take(3), await Read(store, r => r.List(Main, 3)));
        Assert.Empty(await Read(store, r => r.List(Todos, 100)));
    }

    [Fact]
    public async Task Append_numbers_each_channel_from_1_contiguously_and_independently()
    {
        var store = await OpenAsync();

        var main1 = await Write(store, w => w.Append(Main, "POST", """{"id":"a"}"""));
        var side1 = await Write(store, w => w.Append(Side, "POST", """{"id":"b"}"""));
        var (main2, main3) = await Write(store, w => (w.Append(Main, "PUT", """{"id":"a"}"""), w.Append(Main, "DELETE", """{"id":"a"}""")));

        Assert.Equal((1L, 1L, 2L, 3L), (main1.Seq, side1.Seq, main2.Seq, main3.Seq));
        Assert.Equal(Main, main3.Path);
        Assert.Equal("DELETE", main3.Method);
        Assert.Equal(new ChannelPosition(3, 1), await Read(store, r => r.GetPosition(Main)));
        Assert.Equal(new ChannelPosition(1, 1), await Read(store, r => r.GetPosition(Side)));
    }

    [Fact]
    public async Task A_channel_never_written_stands_at_0_and_can_replay_from_0()
    {
        var store = await OpenAsync();

        var position = await Read(store, r => r.GetPosition(Todos));

        Assert.Equal(0, position.Seq);
        Assert.True(position.CanReplayFrom(0));
        Assert.False(position.CanReplayFrom(1));
        Assert.Empty(await Read(store, r => r.ChangesSince(Todos, 0, long.MaxValue, 100)));
    }

    [Fact]
    public async Task ChangesSince_returns_the_changes_after_since_up_to_upTo_oldest_first_at_most_max()
    {
        var store = await OpenAsync();
        for (var i = 1; i <= 10; i++)
        {
            var body = $$"""{"n":{{i}}}""";
            await Write(store, w =>
            {
                w.Append(Main, i % 2 == 0 ? "PUT" : "POST", body);
                return w.Append(Side, "POST", "{}");
            });
        }

        var some = await Read(store, r => r.ChangesSince(Main, 5, long.MaxValue, 3));
        Assert.Equal([6L, 7L, 8L], some.Select(c => c.Seq));
        Assert.All(some, c => Assert.Equal(Main, c.Path));
        Assert.Equal(["PUT", "POST", "PUT"], some.Select(c => c.Method));
        Assert.Equal(7, JsonNode.Parse(some[1].BodyJson)!["n"]!.GetValue<int>());
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), (await Read(store, r => r.ChangesSince(Main, 0, long.MaxValue, 100))).Select(c => c.Seq));
        Assert.Equal([3L, 4L], (await Read(store, r => r.ChangesSince(Main, 2, 4, 100))).Select(c => c.Seq));
        Assert.Empty(await Read(store, r => r.ChangesSince(Main, 4, 4, 100)));
        Assert.Empty(await Read(store, r => r.ChangesSince(Main, 10, long.MaxValue, 100)));
    }

    [Fact]
    public async Task Trimming_by_count_moves_the_oldest_seq_and_ends_replay_from_before_it()
    {
        var store = await OpenAsync(retainedChanges: 5);
        for (var i = 0; i < 12; i++)
        {
            await Write(store, w => w.Append(Main, "POST", "{}"));
        }

        await Write(store, w => w.Append(Side, "POST", "{}"));

        var position = await Read(store, r => r.GetPosition(Main));
        Assert.Equal(new ChannelPosition(12, 8), position);
        Assert.Equal([8L, 9L, 10L, 11L, 12L], (await Read(store, r => r.ChangesSince(Main, 0, long.MaxValue, 100))).Select(c => c.Seq));
        Assert.True(position.CanReplayFrom(7));
        Assert.True(position.CanReplayFrom(12));
        Assert.False(position.CanReplayFrom(6));
        Assert.False(position.CanReplayFrom(0));
        Assert.False(position.CanReplayFrom(13));
        Assert.Equal(new ChannelPosition(1, 1), await Read(store, r => r.GetPosition(Side)));
    }

    [Fact]
    public async Task A_throwing_write_stores_nothing_uses_no_seq_and_is_never_yielded_while_writes_grouped_with_it_commit()
    {
        var store = await OpenAsync();
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();

        // Hold the writer so the writes below queue up and commit as one group (where the store groups them).
        var blocker = store.WriteAsync(w =>
        {
            started.Set();
            release.Wait(Eventually.Patience);
            return w.Append(Todos, "POST", "{}");
        }, CancellationToken.None);
        Assert.True(started.Wait(Eventually.Patience));

        var writes = Enumerable.Range(0, 60).Select(i => (i, id: NewId())).Select(x => (x.i, x.id, task: store.WriteAsync(w =>
        {
            w.Put(Main, Record(x.id, n: x.i));
            var change = w.Append(Main, "POST", Record(x.id, n: x.i).Json);
            if (x.i % 3 == 0)
            {
                throw new InvalidOperationException("refused " + x.i);
            }

            return change;
        }, CancellationToken.None))).ToList();
        release.Set();
        await blocker.WaitAsync(Eventually.Patience);
        try
        {
            await Task.WhenAll(writes.Select(w => w.task)).WaitAsync(Eventually.Patience);
        }
        catch (InvalidOperationException)
        {
        }

        var failed = writes.Where(w => w.i % 3 == 0).ToList();
        var succeeded = writes.Where(w => w.i % 3 != 0).ToList();
        Assert.All(failed, w => Assert.IsType<InvalidOperationException>(w.task.Exception?.InnerException));
        Assert.All(succeeded, w => Assert.True(w.task.IsCompletedSuccessfully));
        Assert.Equal(Enumerable.Range(1, succeeded.Count).Select(i => (long)i), succeeded.Select(w => w.task.Result.Seq).Order());

        var (items, position, log) = await Read(store, r => (r.List(Main, 1000), r.GetPosition(Main), r.ChangesSince(Main, 0, long.MaxValue, 1000)));
        Assert.Equal(succeeded.Select(w => w.id).Order(), items.Select(r => r.Id).Order());
        Assert.Equal(succeeded.Count, position.Seq);
        Assert.Equal(Enumerable.Range(1, succeeded.Count).Select(i => (long)i), log.Select(c => c.Seq));
        await Source(store).WaitForAsync(Main, succeeded.Count);
        var published = Source(store).Changes.Where(c => c.Path == Main).ToList();
        Assert.Equal(Enumerable.Range(1, succeeded.Count).Select(i => (long)i), published.Select(c => c.Seq));
        Assert.DoesNotContain(published, c => failed.Any(f => c.BodyJson.Contains(f.id, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Concurrent_writers_get_contiguous_seqs_and_the_source_yields_each_change_once_in_seq_order()
    {
        var store = await OpenAsync();
        string[] channels = [Todos, Main, Side];
        var results = new ConcurrentBag<ChangeEntry>();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                var path = channels[(writer + i) % channels.Length];
                var id = NewId();
                results.Add(await store.WriteAsync(w =>
                {
                    w.Put(path, Record(id, n: i));
                    return w.Append(path, "POST", Record(id, n: i).Json);
                }, CancellationToken.None));
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(1600, results.Count);
        foreach (var channel in channels)
        {
            var seqs = results.Where(c => c.Path == channel).Select(c => c.Seq).Order().ToList();
            Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
            await Source(store).WaitForAsync(channel, seqs.Count);
            Assert.Equal(seqs, Source(store).Changes.Where(c => c.Path == channel).Select(c => c.Seq)); // once each, in order
            var (items, position) = await Read(store, r => (r.List(channel, 10_000), r.GetPosition(channel)));
            Assert.Equal(seqs.Count, items.Count);
            Assert.Equal(seqs.Count, position.Seq);
        }
    }

    [Fact]
    public async Task A_completed_write_is_in_what_any_later_read_sees()
    {
        var store = await OpenAsync();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                var path = writer % 2 == 0 ? Main : Side;
                var change = await store.WriteAsync(w => w.Append(path, "POST", "{}"), CancellationToken.None);
                var seen = await store.ReadAsync(r => r.GetPosition(path).Seq, CancellationToken.None);
                Assert.True(seen >= change.Seq, $"a read after write {change.Seq} of {path} saw only {seen}");
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task The_source_starts_where_the_store_was_opened_and_yields_every_later_change()
    {
        var first = await OpenAsync();
        for (var i = 0; i < 3; i++)
        {
            await Write(first, w => w.Append(Main, "POST", "{}"));
        }

        await first.DisposeAsync();
        _open.Remove(first);

        var reopened = await OpenAsync();
        Assert.Equal(3, await reopened.Changes.StartingSeqAsync(Main, CancellationToken.None));
        Assert.Equal(0, await reopened.Changes.StartingSeqAsync(Side, CancellationToken.None));

        await Write(reopened, w => (w.Append(Main, "POST", "{}"), w.Append(Side, "POST", "{}")));
        await Write(reopened, w => w.Append(Main, "PUT", "{}"));

        // Where the stream started stays put however far the channel moves on.
        Assert.Equal(3, await reopened.Changes.StartingSeqAsync(Main, CancellationToken.None));
        Assert.Equal(0, await reopened.Changes.StartingSeqAsync(Side, CancellationToken.None));
        await Source(reopened).WaitForAsync(Main, 5);
        await Source(reopened).WaitForAsync(Side, 1);
        Assert.Equal([4L, 5L], Source(reopened).Changes.Where(c => c.Path == Main).Select(c => c.Seq));
        Assert.Equal([1L], Source(reopened).Changes.Where(c => c.Path == Side).Select(c => c.Seq));
    }

    [Fact]
    public async Task A_read_is_one_consistent_snapshot_while_writes_commit()
    {
        var store = await OpenAsync();
        var writers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                var id = NewId();
                await store.WriteAsync(w =>
                {
                    w.Put(Main, Record(id));
                    return w.Append(Main, "POST", Record(id).Json);
                }, CancellationToken.None);
            }
        })).ToList();

        var snapshots = new List<(int Items, long Seq, int Logged)>();
        while (!writers.All(w => w.IsCompleted))
        {
            snapshots.Add(await Read(store, r =>
            {
                var items = r.List(Main, 10_000).Count;
                var log = r.ChangesSince(Main, 0, long.MaxValue, 10_000).Count;
                return (items, r.GetPosition(Main).Seq, log);
            }));
        }

        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.NotEmpty(snapshots);
        Assert.All(snapshots, s => Assert.Equal((s.Items, s.Items), ((int)s.Seq, s.Logged)));
    }

    [Fact]
    public async Task Records_seqs_and_the_epoch_survive_closing_and_reopening_the_database()
    {
        var store = await OpenAsync();
        var record = Record(NewId(), n: 5);
        await Write(store, w =>
        {
            w.Put(Main, record);
            w.Append(Main, "POST", record.Json);
            return w.Append(Main, "PUT", record.Json);
        });
        var epoch = await Read(store, r => r.Epoch);
        Assert.False(string.IsNullOrEmpty(epoch));
        await store.DisposeAsync();
        _open.Remove(store);

        var reopened = await OpenAsync();

        Assert.Equal(epoch, await Read(reopened, r => r.Epoch));
        Assert.Equal(record, await Read(reopened, r => r.Get(Main, record.Id)));
        Assert.Equal(new ChannelPosition(2, 1), await Read(reopened, r => r.GetPosition(Main)));
        Assert.Equal(["POST", "PUT"], (await Read(reopened, r => r.ChangesSince(Main, 0, long.MaxValue, 10))).Select(c => c.Method));
        Assert.Equal(3, (await Write(reopened, w => w.Append(Main, "DELETE", record.Json))).Seq);
    }

    [Fact]
    public async Task A_new_database_has_a_different_epoch()
    {
        var first = await OpenAsync(database: "first");
        var second = await OpenAsync(database: "second");

        var a = await Read(first, r => r.Epoch);
        var b = await Read(second, r => r.Epoch);

        Assert.NotEqual(a, b);
        Assert.Equal(a, await Write(first, w => w.Epoch));
    }
    private static StoredRecord Placed(string id, string position, long version = 1) =>
        new(id, version, new JsonObject { ["id"] = id, ["version"] = version, ["position"] = position }.ToJsonString(), position);

    [Fact]
    public async Task Records_list_by_position_and_the_order_survives_reopening()
    {
        var store = await OpenAsync("sorted");
        var (a, b, c) = (NewId(), NewId(), NewId());
        await Write(store, w =>
        {
            w.Put(Todos, Placed(a, "V"));
            w.Put(Todos, Placed(b, "F"));
            w.Put(Todos, Placed(c, "k"));
            return 0;
        });
        Assert.Equal([b, a, c], (await Read(store, r => r.List(Todos, 10))).Select(x => x.Id));
        Assert.Equal("F", (await Read(store, r => r.Get(Todos, b)))!.Position);

        await store.DisposeAsync();
        _open.Remove(store);
        var reopened = await OpenAsync("sorted");
        var listed = await Read(reopened, r => r.List(Todos, 10));
        Assert.Equal([b, a, c], listed.Select(x => x.Id));
        Assert.Equal(["F", "V", "k"], listed.Select(x => x.Position));
    }

    [Fact]
    public async Task Keys_made_between_any_two_keys_sort_in_the_store_as_made_and_nothing_is_renumbered()
    {
        var store = await OpenAsync();
        var random = new Random(7);
        var order = new List<(string Id, string Key)>();
        for (var i = 0; i < 300; i++)
        {
            var at = random.Next(order.Count + 1);
            if (random.Next(3) == 0)
            {
                at = random.Next(2) == 0 ? 0 : order.Count; // runs at the ends, where keys grow fastest
            }

            var key = Tidings.Collections.PositionKeys.Between(at > 0 ? order[at - 1].Key : null, at < order.Count ? order[at].Key : null);
            var id = NewId();
            order.Insert(at, (id, key));
            await Write(store, w =>
            {
                w.Put(Todos, Placed(id, key));
                return 0;
            });
        }

        var listed = await Read(store, r => r.List(Todos, 1000));
        Assert.Equal(order.Select(o => o.Id), listed.Select(x => x.Id));   // the store's order is the keys' ordinal order
        Assert.Equal(order.Select(o => o.Key), listed.Select(x => x.Position)); // and every key is the one it was given
        Assert.All(order, o => Assert.True(Tidings.Collections.PositionKeys.IsValid(o.Key)));
        Assert.True(order.Max(o => o.Key.Length) < 40, $"keys grew to {order.Max(o => o.Key.Length)}");
    }

    [Fact]
    public async Task Neighbours_by_position_leave_out_one_record_and_records_without_a_position()
    {
        var store = await OpenAsync();
        var (a, b, c, plain) = (NewId(), NewId(), NewId(), NewId());
        await Write(store, w =>
        {
            w.Put(Todos, Placed(a, "F"));
            w.Put(Todos, Placed(b, "V"));
            w.Put(Todos, Placed(c, "k"));
            w.Put(Todos, Record(plain));
            return 0;
        });

        await Read(store, r =>
        {
            Assert.Equal(a, r.NeighborPosition(Todos, null, after: true, null)!.Id);
            Assert.Equal(new OrderNeighbor(c, "k"), r.NeighborPosition(Todos, null, after: false, null));
            Assert.Equal(b, r.NeighborPosition(Todos, null, after: true, a)!.Id);
            Assert.Equal(c, r.NeighborPosition(Todos, "V", after: true, null)!.Id);
            Assert.Equal(a, r.NeighborPosition(Todos, "V", after: false, null)!.Id);
            Assert.Null(r.NeighborPosition(Todos, "V", after: false, a));
            Assert.Null(r.NeighborPosition(Side, null, after: true, null));
            return 0;
        });
        Assert.Equal(plain, (await Read(store, r => r.List(Todos, 10)))[0].Id); // no position: listed first
    }

    [Fact]
    public async Task A_logged_move_keeps_the_id_it_follows_in_the_log_and_the_change_source()
    {
        var store = await OpenAsync();
        var (a, b) = (NewId(), NewId());
        await Write(store, w =>
        {
            w.Append(Todos, ChangeMethods.Move, Placed(a, "V").Json, null, b);
            w.Append(Todos, ChangeMethods.Move, Placed(b, "F").Json, null, null);
            return 0;
        });

        var logged = await Read(store, r => r.ChangesSince(Todos, 0, 2, 10));
        Assert.Equal([b, null], logged.Select(x => x.After));
        await Source(store).WaitForAsync(Todos, 2);
        Assert.Equal([b, null], Source(store).Changes.Where(x => x.Path == Todos).Select(x => x.After));
    }
}
