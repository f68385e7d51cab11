namespace Tidings.Storage;

/// <summary>
/// Durable storage for collections: records, the per-channel change log and its sequence numbers.
/// Every implementation passes the same contract suite (tests/Tidings.Tests/Storage/StoreContract.cs).
/// </summary>
/// <remarks>
/// Contract:
/// <list type="bullet">
/// <item>A write's records, change-log entries and sequence numbers commit in one transaction; if the work
/// throws, nothing of it is stored and no sequence number is used.</item>
/// <item>Sequence numbers are contiguous per channel, starting at 1.</item>
/// <item>Committed changes are handed to <see cref="IChangeSink"/> after the commit, in commit order, and
/// before the write's task completes. A completed write is durable.</item>
/// <item><see cref="SequencedReadAsync{T}"/> runs at a point where every earlier commit has been handed to the
/// sink and no later one has: what it reads plus what the sink publishes afterwards is the whole stream, with
/// no gap and no overlap.</item>
/// </list>
/// </remarks>
public interface ITidingsStore : IAsyncDisposable
{
    /// <summary>Creates or opens the storage. Called once before anything else.</summary>
    Task InitializeAsync(IChangeSink sink, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> in a write transaction, possibly grouped with other writes.</summary>
    Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> against one consistent snapshot.</summary>
    Task<T> ReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> between commits, ordered with the change stream (see remarks).</summary>
    Task<T> SequencedReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken);
}

/// <summary>Receives committed changes, in commit order, once each.</summary>
public interface IChangeSink
{
    void Committed(IReadOnlyList<ChangeEntry> changes);
}

public interface IStoreReader
{
    /// <summary>The log's identity: it changes when the log is reset, so old sequence numbers mean nothing.</summary>
    string Epoch { get; }

    StoredRecord? Get(string path, string id);

    /// <summary>The records of a collection path in creation order, at most <paramref name="limit"/>.</summary>
    IReadOnlyList<StoredRecord> List(string path, int limit);

    /// <summary>The channel's last sequence number (0 when nothing was written) and the oldest one still logged.</summary>
    ChannelPosition GetPosition(string path);

    /// <summary>Changes with sequence numbers above <paramref name="since"/>, oldest first, at most <paramref name="max"/>.</summary>
    IReadOnlyList<ChangeEntry> ChangesSince(string path, long since, int max);
}

public interface IStoreWriter : IStoreReader
{
    /// <summary>Inserts or replaces a record.</summary>
    void Put(string path, StoredRecord record);

    /// <summary>Deletes a record; false when there was none.</summary>
    bool Delete(string path, string id);

    /// <summary>
    /// Appends a change to the channel's log under the next sequence number. <paramref name="previousJson"/> is
    /// the record before an update: with it, a subscriber who could read the old record but not the new one is
    /// sent a removal.
    /// </summary>
    ChangeEntry Append(string path, string method, string bodyJson, string? previousJson = null);
}

/// <summary>A record: its id, its version (1 on create, +1 per update) and its full JSON.</summary>
public sealed record StoredRecord(string Id, long Version, string Json);

/// <summary>One entry of a channel's change log.</summary>
public sealed record ChangeEntry(string Path, long Seq, string Method, string BodyJson, DateTimeOffset At, string? PreviousJson = null);

/// <summary>
/// Where a channel's log stands. A client that has seen up to <c>s</c> can catch up when
/// <c>s &gt;= OldestSeq - 1</c>; otherwise the entries it missed are gone and it must reload.
/// </summary>
public readonly record struct ChannelPosition(long Seq, long OldestSeq)
{
    public bool CanReplayFrom(long since) => since >= OldestSeq - 1 && since <= Seq;
}
