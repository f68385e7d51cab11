namespace Tidings.Storage;

/// <summary>
/// What a store tells an operator's health check beyond "it answers" (optional: a store without it is checked for
/// reachability only). Cheap to read: counters the store keeps anyway, no I/O.
/// </summary>
public interface IStoreHealth
{
    /// <summary>Work waiting inside the store right now.</summary>
    StoreBacklog Backlog { get; }

    /// <summary>
    /// How long since the change tail last finished a look at the shared log (each look brings this node up to date with
    /// every node's commits); null where the store hands over its own commits and has no tail (SQLite).
    /// </summary>
    TimeSpan? TailLag { get; }
}

/// <summary>Writes waiting for the store's writer, and committed batches waiting for the change feed, each with its bound.</summary>
/// <param name="QueuedWrites">Writes waiting for their turn (SQLite: in the writer loop's queue; PostgreSQL: for a connection slot).</param>
/// <param name="WriteCapacity">How many may wait before writers are held back (SQLite's <c>QueueCapacity</c>), 0 when unbounded by count.</param>
/// <param name="QueuedChangeBatches">Committed batches not yet taken by the change feed (SQLite's change buffer).</param>
/// <param name="ChangeBufferCapacity">The change buffer's bound (the writer waits when it is full), 0 when there is none.</param>
public readonly record struct StoreBacklog(int QueuedWrites, int WriteCapacity, int QueuedChangeBatches, int ChangeBufferCapacity);
