using System.Collections.Specialized;
using System.ComponentModel;

namespace Tidings.Client.Collections;

public sealed partial class LiveCollection<T>
{
    private static readonly PropertyChangedEventArgs CountChanged = new(nameof(Count));
    private static readonly PropertyChangedEventArgs IndexerChanged = new("Item[]");

    private readonly SynchronizationContext? _context;
    private readonly Queue<ViewUpdate> _viewQueue = new();
    private readonly Lock _drainLock = new();
    private bool _drainScheduled;

    // Guarded by _viewGate; changed only by the drain, together with the events that announce it. _viewIndex maps an id
    // to its index in _view (so a change finds its record without a scan); _viewKeys holds each record's position in a
    // sorted collection, where _view is kept in (position, id) order and a new or moved record's place is found by a
    // binary search.
    private readonly Lock _viewGate = new();
    private readonly List<string> _viewIds = [];
    private readonly List<T> _view = [];
    private readonly List<string?> _viewKeys = [];
    private readonly Dictionary<string, int> _viewIndex = new(StringComparer.Ordinal);
    private bool _viewSorted;
    private T[]? _snapshot;

    /// <summary>
    /// Raised for every add, change (replace), remove, move and reset of <see cref="Items"/>, on the captured context. A
    /// moved record of a sorted collection raises a Replace at its old index (its position changed) and then a Move.
    /// </summary>
    public event NotifyCollectionChangedEventHandler? CollectionChanged;

    /// <summary>Raised for <see cref="Count"/> and the indexer, on the captured context.</summary>
    public event PropertyChangedEventHandler? PropertyChanged;

    /// <summary>
    /// The visible records — the server's state with this client's unanswered writes on top — as a read-only snapshot,
    /// in the server's order for a sorted collection (<see cref="IsSorted"/>: by position, ties by id), else in arrival
    /// order (a reload takes the server's order). Consistent with the events raised so far.
    /// </summary>
    public IReadOnlyList<T> Items
    {
        get
        {
            lock (_viewGate)
            {
                return _snapshot ??= [.. _view];
            }
        }
    }

    public int Count => Items.Count;

    public T this[int index] => Items[index];

    /// <summary>The visible record with this id.</summary>
    public bool TryGet(string id, out T item)
    {
        lock (_viewGate)
        {
            var found = _viewIndex.TryGetValue(id, out var index);
            item = found ? _view[index] : default!;
            return found;
        }
    }

    /// <summary>Runs <paramref name="change"/> under the model's lock, then brings the view up to date.</summary>
    private void Mutate(Action change)
    {
        lock (_gate)
        {
            change();
        }

        FlushView();
    }

    private void QueueForView(CollectionChange<T> change) => Enqueue(new ViewUpdate(change, null));

    private void QueueForView(TidingsException error) => Enqueue(new ViewUpdate(null, error));

    private void Enqueue(ViewUpdate update)
    {
        lock (_viewQueue)
        {
            _viewQueue.Enqueue(update);
        }
    }

    /// <summary>
    /// Applies queued changes to the view and raises their events: posted to the captured context, or here and now
    /// (never under the model's lock, so handlers may call back into the collection).
    /// </summary>
    private void FlushView()
    {
        if (_context is null)
        {
            DrainView();
            return;
        }

        lock (_viewQueue)
        {
            if (_drainScheduled || _viewQueue.Count == 0)
            {
                return;
            }

            _drainScheduled = true;
        }

        _context.Post(static state => ((LiveCollection<T>)state!).DrainView(), this);
    }

    private void DrainView()
    {
        lock (_drainLock)
        {
            while (true)
            {
                ViewUpdate update;
                lock (_viewQueue)
                {
                    if (!_viewQueue.TryDequeue(out update!))
                    {
                        _drainScheduled = false;
                        return;
                    }
                }

                try
                {
                    if (update.Error is { } error)
                    {
                        Error?.Invoke(this, error);
                    }
                    else if (update.Change is { } change)
                    {
                        if (ApplyToView(change) is { } args)
                        {
                            if (change.Kind == CollectionChangeKind.Reset)
                            {
                                // Opening completes once the first snapshot is in the view, on the context that shows it.
                                _ready.TrySetResult();
                            }

                            Announce(args);
                        }

                        // A move: the record was replaced where it stood; now it goes to its new place.
                        if (change.Kind == CollectionChangeKind.Moved && MoveInView(change) is { } moved)
                        {
                            Announce(moved);
                        }
                    }
                }
                catch (Exception ex)
                {
                    _client.ReportHandlerFailure(Path, ex);
                }
            }
        }
    }

    private void Announce(NotifyCollectionChangedEventArgs args)
    {
        CollectionChanged?.Invoke(this, args);
        PropertyChanged?.Invoke(this, CountChanged);
        PropertyChanged?.Invoke(this, IndexerChanged);
    }

    private NotifyCollectionChangedEventArgs? ApplyToView(CollectionChange<T> change)
    {
        lock (_viewGate)
        {
            _snapshot = null;
            switch (change.Kind)
            {
                case CollectionChangeKind.Added:
                {
                    // Arrival order, or the record's place by position in a sorted collection.
                    var index = _viewSorted ? PlaceFor(change.Position, change.Id!) : _view.Count;
                    InsertInView(index, change.Id!, change.Item!, change.Position);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Add, change.Item, index);
                }

                case CollectionChangeKind.Removed:
                {
                    if (!_viewIndex.TryGetValue(change.Id!, out var index))
                    {
                        return null;
                    }

                    var old = _view[index];
                    RemoveFromView(index);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Remove, old, index);
                }

                case CollectionChangeKind.Changed:
                case CollectionChangeKind.Moved:
                {
                    if (!_viewIndex.TryGetValue(change.Id!, out var index))
                    {
                        return null;
                    }

                    var old = _view[index];
                    _view[index] = change.Item!;
                    if (change.Kind == CollectionChangeKind.Changed && _viewSorted)
                    {
                        _viewKeys[index] = change.Position;
                    }

                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Replace, change.Item, old, index);
                }

                default:
                    _viewIds.Clear();
                    _view.Clear();
                    _viewKeys.Clear();
                    _viewIndex.Clear();
                    _viewSorted = change.ResetPositions is not null;
                    _viewIds.AddRange(change.ResetIds!);
                    _view.AddRange(change.Items!);
                    if (_viewSorted)
                    {
                        _viewKeys.AddRange(change.ResetPositions!);
                    }

                    Reindex(0, _viewIds.Count - 1);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Reset);
            }
        }
    }

    /// <summary>The second half of a move: takes the (already replaced) record to its place by its new position.</summary>
    private NotifyCollectionChangedEventArgs? MoveInView(CollectionChange<T> change)
    {
        lock (_viewGate)
        {
            if (!_viewSorted || !_viewIndex.TryGetValue(change.Id!, out var from))
            {
                return null;
            }

            _snapshot = null;
            var item = _view[from];
            _viewIds.RemoveAt(from);
            _view.RemoveAt(from);
            _viewKeys.RemoveAt(from);
            var to = PlaceFor(change.Position, change.Id!);
            _viewIds.Insert(to, change.Id!);
            _view.Insert(to, item);
            _viewKeys.Insert(to, change.Position);
            Reindex(Math.Min(from, to), Math.Max(from, to)); // only the records between the two places shift
            return from == to ? null : new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Move, item, to, from);
        }
    }

    /// <summary>Where a record with this position and id goes in the sorted view: a binary search, O(log n).</summary>
    private int PlaceFor(string? position, string id)
    {
        int low = 0, high = _view.Count;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (PositionKeys.Compare(_viewKeys[middle], _viewIds[middle], position, id) < 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    private void InsertInView(int index, string id, T item, string? position)
    {
        _viewIds.Insert(index, id);
        _view.Insert(index, item);
        if (_viewSorted)
        {
            _viewKeys.Insert(index, position);
        }

        Reindex(index, _viewIds.Count - 1);
    }

    private void RemoveFromView(int index)
    {
        _viewIndex.Remove(_viewIds[index]);
        _viewIds.RemoveAt(index);
        _view.RemoveAt(index);
        if (_viewSorted)
        {
            _viewKeys.RemoveAt(index);
        }

        Reindex(index, _viewIds.Count - 1);
    }

    /// <summary>
    /// Brings the id → index map up to date for the records that shifted. Appends (the common case in arrival order) touch
    /// one entry; an insert or removal in the middle touches the records after it, as the list's own shift does.
    /// </summary>
    private void Reindex(int from, int to)
    {
        for (var i = from; i <= to; i++)
        {
            _viewIndex[_viewIds[i]] = i;
        }
    }

    private sealed record ViewUpdate(CollectionChange<T>? Change, TidingsException? Error);
}
