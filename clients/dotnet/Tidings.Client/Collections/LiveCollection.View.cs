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

    // Guarded by _viewGate; changed only by the drain, together with the events that announce it.
    private readonly Lock _viewGate = new();
    private readonly List<string> _viewIds = [];
    private readonly List<T> _view = [];
    private T[]? _snapshot;

    /// <summary>Raised for every add, change (replace), remove and reset of <see cref="Items"/>, on the captured context.</summary>
    public event NotifyCollectionChangedEventHandler? CollectionChanged;

    /// <summary>Raised for <see cref="Count"/> and the indexer, on the captured context.</summary>
    public event PropertyChangedEventHandler? PropertyChanged;

    /// <summary>
    /// The visible records — the server's state with this client's unanswered writes on top — as a read-only snapshot,
    /// in arrival order (a reload takes the server's order). Consistent with the events raised so far.
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
            var index = _viewIds.IndexOf(id);
            item = index >= 0 ? _view[index] : default!;
            return index >= 0;
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
                    else if (update.Change is { } change && ApplyToView(change) is { } args)
                    {
                        if (change.Kind == CollectionChangeKind.Reset)
                        {
                            // Opening completes once the first snapshot is in the view, on the context that shows it.
                            _ready.TrySetResult();
                        }

                        CollectionChanged?.Invoke(this, args);
                        PropertyChanged?.Invoke(this, CountChanged);
                        PropertyChanged?.Invoke(this, IndexerChanged);
                    }
                }
                catch (Exception ex)
                {
                    _client.ReportHandlerFailure(Path, ex);
                }
            }
        }
    }

    private NotifyCollectionChangedEventArgs? ApplyToView(CollectionChange<T> change)
    {
        lock (_viewGate)
        {
            _snapshot = null;
            switch (change.Kind)
            {
                case CollectionChangeKind.Added:
                    _viewIds.Add(change.Id!);
                    _view.Add(change.Item!);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Add, change.Item, _view.Count - 1);
                case CollectionChangeKind.Removed:
                {
                    var index = _viewIds.IndexOf(change.Id!);
                    if (index < 0)
                    {
                        return null;
                    }

                    var old = _view[index];
                    _viewIds.RemoveAt(index);
                    _view.RemoveAt(index);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Remove, old, index);
                }

                case CollectionChangeKind.Changed:
                {
                    var index = _viewIds.IndexOf(change.Id!);
                    if (index < 0)
                    {
                        return null;
                    }

                    var old = _view[index];
                    _view[index] = change.Item!;
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Replace, change.Item, old, index);
                }

                default:
                    _viewIds.Clear();
                    _view.Clear();
                    _viewIds.AddRange(change.ResetIds!);
                    _view.AddRange(change.Items!);
                    return new NotifyCollectionChangedEventArgs(NotifyCollectionChangedAction.Reset);
            }
        }
    }

    private sealed record ViewUpdate(CollectionChange<T>? Change, TidingsException? Error);
}
