using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>
/// The CometD ack extension's side of a session: every connect reply carries all unacknowledged deliveries
/// under a new batch number, and a delivery is forgotten only once a later connect acknowledges its batch,
/// so a dropped reply loses nothing. Not thread-safe: the session calls it under its own lock.
/// </summary>
internal sealed class AckBatches
{
    private List<(long Batch, Delivery Delivery)>? _unacked;
    private long _batch;

    /// <summary>The bytes of the deliveries sent and not yet acknowledged.</summary>
    public long Bytes { get; private set; }

    public bool HasUnacknowledged => _unacked is { Count: > 0 };

    /// <summary>The client has every batch up to <paramref name="batch"/>: forget them.</summary>
    public void Acknowledge(long batch)
    {
        if (_unacked is null)
        {
            return;
        }

        var n = 0;
        while (n < _unacked.Count && _unacked[n].Batch <= batch)
        {
            Bytes -= _unacked[n].Delivery.Size;
            n++;
        }

        _unacked.RemoveRange(0, n);
    }

    /// <summary>
    /// Numbers a new batch holding what <paramref name="pending"/> has (emptying it) and returns every
    /// unacknowledged delivery, earlier batches first.
    /// </summary>
    public List<Delivery> NextBatch(Queue<Delivery>? pending, out long batch)
    {
        batch = ++_batch;
        if (pending is { Count: > 0 })
        {
            _unacked ??= [];
            while (pending.TryDequeue(out var delivery))
            {
                _unacked.Add((batch, delivery));
                Bytes += delivery.Size;
            }
        }

        if (_unacked is not { Count: > 0 })
        {
            return [];
        }

        var all = new List<Delivery>(_unacked.Count);
        foreach (var (_, delivery) in _unacked)
        {
            all.Add(delivery);
        }

        return all;
    }

    public void Clear()
    {
        _unacked = null;
        Bytes = 0;
    }
}
