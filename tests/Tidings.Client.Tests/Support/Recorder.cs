using System.Collections.Specialized;
using System.Text.Json.Nodes;
using Tidings.Client.Collections;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// Watches a collection the way a bound UI list would: replays its CollectionChanged events on a list of its own (which
/// must end equal to Items), counts adds and removes per id, and checks that applied seqs only ever go up.
/// </summary>
internal sealed class Recorder
{
    private readonly Lock _gate = new();
    private readonly List<JsonObject> _mirror = [];
    private readonly Dictionary<string, int> _adds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _removes = new(StringComparer.Ordinal);
    private long _lastSeq = -1;

    public Recorder(LiveCollection<JsonObject> collection)
    {
        Collection = collection;
        lock (_gate)
        {
            _mirror.AddRange(collection.Items);
        }

        collection.CollectionChanged += OnChanged;
        collection.Applied = seq =>
        {
            lock (_gate)
            {
                if (seq <= _lastSeq)
                {
                    Problems.Add($"seq {seq} applied after {_lastSeq}");
                }

                _lastSeq = seq;
                Applied++;
            }
        };
    }

    public LiveCollection<JsonObject> Collection { get; }

    public List<string> Problems { get; } = [];

    public int Applied { get; private set; }

    public int Adds(string id)
    {
        lock (_gate)
        {
            return _adds.GetValueOrDefault(id);
        }
    }

    public int Removes(string id)
    {
        lock (_gate)
        {
            return _removes.GetValueOrDefault(id);
        }
    }

    public List<JsonObject> Mirror
    {
        get
        {
            lock (_gate)
            {
                return [.. _mirror];
            }
        }
    }

    private void OnChanged(object? sender, NotifyCollectionChangedEventArgs e)
    {
        lock (_gate)
        {
            switch (e.Action)
            {
                case NotifyCollectionChangedAction.Add:
                    var added = (JsonObject)e.NewItems![0]!;
                    _mirror.Insert(e.NewStartingIndex, added);
                    Count(_adds, (string)added["id"]!);
                    break;
                case NotifyCollectionChangedAction.Remove:
                    var removed = (JsonObject)e.OldItems![0]!;
                    if (!JsonNode.DeepEquals(_mirror[e.OldStartingIndex], removed))
                    {
                        Problems.Add($"remove at {e.OldStartingIndex} named another record");
                    }

                    _mirror.RemoveAt(e.OldStartingIndex);
                    Count(_removes, (string)removed["id"]!);
                    break;
                case NotifyCollectionChangedAction.Move:
                    var moved = (JsonObject)e.OldItems![0]!;
                    if (!JsonNode.DeepEquals(_mirror[e.OldStartingIndex], moved))
                    {
                        Problems.Add($"move from {e.OldStartingIndex} named another record");
                    }

                    _mirror.RemoveAt(e.OldStartingIndex);
                    _mirror.Insert(e.NewStartingIndex, moved);
                    break;
                case NotifyCollectionChangedAction.Replace:
                    _mirror[e.NewStartingIndex] = (JsonObject)e.NewItems![0]!;
                    break;
                case NotifyCollectionChangedAction.Reset:
                    _mirror.Clear();
                    _mirror.AddRange(Collection.Items);
                    break;
            }
        }
    }

    private static void Count(Dictionary<string, int> counts, string id) => counts[id] = counts.GetValueOrDefault(id) + 1;
}
