using System.Collections;
using System.Collections.Specialized;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Tidings.Client.Bayeux;

namespace Tidings.Client.Collections;

/// <summary>
/// A live copy of one collection (<c>/api/todos</c>, <c>/api/flows/main/messages</c>) that stays equal to the server's.
/// </summary>
/// <remarks>
/// <para>
/// Two layers make up what <see cref="Items"/> shows, as in the JavaScript client:
/// <b>confirmed</b> — the server's state as of <see cref="Seq"/>, built from a snapshot and the change events in
/// <c>seq</c> order (<c>seq &lt;= Seq</c> is a duplicate and dropped; a gap holds later events back while
/// <c>GET ?since</c> fetches the missing ones; write replies land here too but never move a record to an older
/// <c>version</c> nor bring back one the stream deleted) — and <b>pending</b>: this client's unanswered writes replayed on
/// top. Whenever either layer changes for a record, its visible form is recomputed and compared with what was shown;
/// that is the only place changes are raised, so a create reconciled by its reply and by its event, in either order,
/// is added exactly once.
/// </para>
/// <para>
/// Threading: the state is guarded by one lock and changed on the client's threads. What <see cref="Items"/> returns and
/// the <see cref="CollectionChanged"/>/<see cref="PropertyChanged"/> events are updated together on the
/// <see cref="SynchronizationContext"/> captured when the collection was opened (a UI thread), in order, so a bound
/// list never sees an index that its events have not announced. Without a context they are raised on the client's
/// threads, one at a time. <see cref="ChangesAsync"/> readers get the same changes as they happen.
/// </para>
/// </remarks>
public sealed partial class LiveCollection<T> : IReadOnlyList<T>, INotifyCollectionChanged, INotifyPropertyChanged, IAsyncDisposable
{
    private const int Tombstones = 10_000;
    private static readonly JsonObject Deleted = new();

    private readonly TidingsClient _client;
    private readonly RecordMapper<T> _mapper;
    private readonly Lock _gate = new();

    // Guarded by _gate: the model.
    private Dictionary<string, JsonObject> _confirmed = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<PendingWrite>> _pending = new(StringComparer.Ordinal);
    private readonly HashSet<string> _tombstones = new(StringComparer.Ordinal);
    private readonly Queue<string> _tombstoneOrder = new();
    private readonly SortedDictionary<long, JsonObject> _held = [];
    private readonly List<Channel<CollectionChange<T>>> _readers = [];

    /// <summary>What is shown, by id, in the order the view holds it.</summary>
    private readonly Dictionary<string, JsonObject> _shown = new(StringComparer.Ordinal);
    private long? _seq;
    private string? _epoch;
    private bool _loaded;
    private bool _truncated;
    private bool _closed;

    /// <summary>The server said the collection is sorted (its snapshot or list has <c>sorted: true</c>).</summary>
    private bool _sorted;

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private BayeuxSubscription? _subscription;

    internal LiveCollection(TidingsClient client, string path, RecordMapper<T> mapper, CollectionOptions options)
    {
        _client = client;
        Path = path;
        _mapper = mapper;
        Writes = options.Writes ?? client.Options.Writes;
        MaxHeld = options.MaxHeldEvents ?? client.Options.MaxHeldEvents;
        _context = SynchronizationContext.Current is { } context && context.GetType() != typeof(SynchronizationContext) ? context : null;
    }

    /// <summary>The collection's path, which is also its Bayeux channel.</summary>
    public string Path { get; }

    /// <summary>Where this collection's writes go.</summary>
    public WriteChannel Writes { get; }

    /// <summary>Events past a gap held while it is fetched; one more and the collection reloads instead.</summary>
    public int MaxHeld { get; }

    /// <summary>The last change applied; null before the first snapshot and while a reload is under way.</summary>
    public long? Seq
    {
        get
        {
            lock (_gate)
            {
                return _seq;
            }
        }
    }

    /// <summary>The server's log identity; another epoch means the history was replaced, so the collection reloads.</summary>
    public string? Epoch
    {
        get
        {
            lock (_gate)
            {
                return _epoch;
            }
        }
    }

    /// <summary>True when the last snapshot was cut by a server limit: <see cref="Items"/> holds part of the collection.</summary>
    public bool IsTruncated
    {
        get
        {
            lock (_gate)
            {
                return _truncated;
            }
        }
    }

    /// <summary>
    /// True for a sorted collection (the server says so with its snapshot): <see cref="Items"/> is in the server's order,
    /// by <c>position</c>, with optimistic moves and placed creates shown at once.
    /// </summary>
    public bool IsSorted
    {
        get
        {
            lock (_gate)
            {
                return _sorted;
            }
        }
    }

    /// <summary>Ids of records with writes not yet answered.</summary>
    public IReadOnlyList<string> PendingIds
    {
        get
        {
            lock (_gate)
            {
                return [.. _pending.Keys];
            }
        }
    }

    /// <summary>Completes when the first snapshot has been applied.</summary>
    public Task Ready => _ready.Task;

    /// <summary>A refused write (also thrown by its call), a failed load, a refused re-subscribe, or bad input from the server.</summary>
    public event EventHandler<TidingsException>? Error;

    internal async Task OpenAsync(CancellationToken cancellationToken)
    {
        _subscription = await _client.Bayeux.SubscribeAsync(Path, OnMessageAsync, SubscribeExt, OnRefused, cancellationToken);
        await _ready.Task.WaitAsync(cancellationToken);
    }

    /// <summary>What a (re-)subscribe asks of the server: a snapshot, or the changes since our position.</summary>
    private JsonObject SubscribeExt()
    {
        lock (_gate)
        {
            return _seq is { } seq && _epoch is { } epoch
                ? new JsonObject { ["since"] = seq, ["epoch"] = epoch }
                : new JsonObject { ["snapshot"] = true };
        }
    }

    private void OnRefused(TidingsException error) => Report(error);

    /// <summary>Unsubscribes and stops retries. Writes in flight still settle.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            foreach (var reader in _readers)
            {
                reader.Writer.TryComplete();
            }

            _readers.Clear();
        }

        _ready.TrySetCanceled();
        _client.Forget(this);
        if (_subscription is { } subscription)
        {
            await subscription.DisposeAsync();
        }
    }

    /// <summary>
    /// The changes from now on, beginning with a <see cref="CollectionChangeKind.Reset"/> holding the current items. A reader
    /// that falls more than <c>ChangeBufferSize</c> changes behind ends with a <see cref="TidingsException"/>.
    /// </summary>
    public async IAsyncEnumerable<CollectionChange<T>> ChangesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateBounded<CollectionChange<T>>(new BoundedChannelOptions(Math.Max(2, _client.Options.ChangeBufferSize))
        {
            SingleReader = true,
            SingleWriter = true,
        });
        lock (_gate)
        {
            if (_closed)
            {
                yield break;
            }

            if (_loaded)
            {
                channel.Writer.TryWrite(ResetChange());
            }

            _readers.Add(channel);
        }

        try
        {
            await foreach (var change in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return change;
            }
        }
        finally
        {
            lock (_gate)
            {
                _readers.Remove(channel);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // The model: what is shown

    private JsonObject? Visible(string id)
    {
        _confirmed.TryGetValue(id, out var record);
        if (_pending.TryGetValue(id, out var writes))
        {
            foreach (var write in writes)
            {
                switch (write.Kind)
                {
                    case WriteKind.Create:
                        if (record is null && !write.Seen && !_tombstones.Contains(id))
                        {
                            record = write.Body;
                        }

                        break;
                    case WriteKind.Update:
                        if (record is not null)
                        {
                            record = write.Replace ? MergeReplace(record, write.Body!) : RecordJson.MergePatch(record, write.Body!);
                        }

                        break;
                    default:
                        record = null;
                        break;
                }
            }
        }

        return record;
    }

    private JsonObject MergeReplace(JsonObject record, JsonObject body)
    {
        var result = (JsonObject)body.DeepClone();
        if (_sorted)
        {
            // A replace keeps the record's place: the position is the server's, changed only by a move.
            result.Remove("position");
            if (record["position"] is { } position)
            {
                result["position"] = position.DeepClone();
            }
        }

        foreach (var field in RecordJson.ServerFields)
        {
            if (record[field] is { } value)
            {
                result[field] = value.DeepClone();
            }
        }

        return result;
    }

    /// <summary>Recomputes one record's visible form and raises what changed. Call under the lock.</summary>
    private void Refresh(string id)
    {
        if (!_loaded && !_pending.ContainsKey(id) && !_shown.ContainsKey(id))
        {
            return; // before the first snapshot only local creates are shown
        }

        var record = Visible(id);
        _shown.TryGetValue(id, out var previous);
        if (record is not null && previous is null)
        {
            _shown[id] = record;
            Emit(new CollectionChange<T>(CollectionChangeKind.Added, id, _mapper.Read(record), default, null) { Position = PositionOf(record) });
        }
        else if (record is null && previous is not null)
        {
            _shown.Remove(id);
            Emit(new CollectionChange<T>(CollectionChangeKind.Removed, id, default, _mapper.Read(previous), null));
        }
        else if (record is not null && previous is not null && !JsonNode.DeepEquals(record, previous))
        {
            _shown[id] = record;
            var position = PositionOf(record);
            var kind = _sorted && position != PositionOf(previous) ? CollectionChangeKind.Moved : CollectionChangeKind.Changed;
            Emit(new CollectionChange<T>(kind, id, _mapper.Read(record), _mapper.Read(previous), null) { Position = position });
        }
    }

    /// <summary>A record's order key in a sorted collection; null elsewhere (and for a record that has none yet).</summary>
    private string? PositionOf(JsonObject record) => _sorted ? RecordJson.String(record["position"]) : null;

    /// <summary>What is shown, as ids: by position in a sorted collection, else in arrival order.</summary>
    private List<string> ShownIds()
    {
        var ids = _shown.Keys.ToList();
        if (_sorted)
        {
            ids.Sort((a, b) => PositionKeys.Compare(PositionOf(_shown[a]), a, PositionOf(_shown[b]), b));
        }

        return ids;
    }

    /// <summary>A reset of the view to what is shown now, in order.</summary>
    private CollectionChange<T> ResetChange()
    {
        var ids = ShownIds();
        return new CollectionChange<T>(CollectionChangeKind.Reset, null, default, default, [.. ids.Select(id => _mapper.Read(_shown[id]))])
        {
            ResetIds = [.. ids],
            ResetPositions = _sorted ? [.. ids.Select(id => PositionOf(_shown[id]))] : null,
        };
    }

    /// <summary>Hands a change to the readers and to the view. Call under the lock: changes keep their order.</summary>
    private void Emit(CollectionChange<T> change)
    {
        for (var i = _readers.Count - 1; i >= 0; i--)
        {
            var reader = _readers[i];
            if (!reader.Writer.TryWrite(change))
            {
                reader.Writer.TryComplete(new TidingsException(
                    $"a reader of {Path} fell more than {_client.Options.ChangeBufferSize} changes behind (ChangeBufferSize)", 0));
                _readers.RemoveAt(i);
            }
        }

        QueueForView(change);
    }

    private void Report(TidingsException error) => QueueForView(error);

    private void Tomb(string id)
    {
        if (_tombstones.Add(id))
        {
            _tombstoneOrder.Enqueue(id);
            if (_tombstoneOrder.Count > Tombstones)
            {
                _tombstones.Remove(_tombstoneOrder.Dequeue());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // IReadOnlyList over the view

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private enum WriteKind
    {
        Create,
        Update,
        Delete,
    }

    private sealed class PendingWrite(WriteKind kind, JsonObject? body, bool replace = false)
    {
        public WriteKind Kind { get; } = kind;

        public JsonObject? Body { get; } = body;

        public bool Replace { get; } = replace;

        /// <summary>A create whose record the stream (or a snapshot) has shown: it no longer stands in for it.</summary>
        public bool Seen { get; set; }
    }
}

/// <summary>Per-collection settings; unset ones take the client's.</summary>
public sealed record CollectionOptions
{
    public WriteChannel? Writes { get; init; }

    public int? MaxHeldEvents { get; init; }
}
