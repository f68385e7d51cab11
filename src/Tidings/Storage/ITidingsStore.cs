namespace Tidings.Storage;

/// <summary>
/// Durable storage for collections: records, the per-channel change log and its sequence numbers, and a
/// <see cref="IChangeSource"/> that tells what was committed. Every implementation passes the same contract suite
/// (tests/Tidings.Tests/Storage/StoreContract.cs).
/// </summary>
/// <remarks>
/// Contract (docs/design.md, "The store"):
/// <list type="bullet">
/// <item>A write's records, change-log entries and sequence numbers commit in one transaction; if the work
/// throws, nothing of it is stored and no sequence number is used.</item>
/// <item>Sequence numbers are contiguous per channel, starting at 1, in commit order.</item>
/// <item>A write's task completes when its transaction has committed durably. Publishing is not the store's
/// business: committed changes reach subscribers through <see cref="Changes"/>, later, off the writer.</item>
/// <item>Nothing else is promised about when a read runs relative to writes: the change feed joins what a
/// subscriber read with the live stream by <c>seq</c> alone.</item>
/// </list>
/// </remarks>
public interface ITidingsStore : IAsyncDisposable
{
    /// <summary>Creates or opens the storage. Called once before anything else.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> in a write transaction, possibly grouped with other writes.</summary>
    /// <remarks>Keep the work to what must be atomic (version check, put, append): rules run before it.</remarks>
    Task<T> WriteAsync<T>(Func<IStoreWriter, T> work, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="work"/> against one consistent snapshot.</summary>
    Task<T> ReadAsync<T>(Func<IStoreReader, T> work, CancellationToken cancellationToken);

    /// <summary>The committed changes, as the store learns of them.</summary>
    IChangeSource Changes { get; }
}

/// <summary>
/// Where committed changes come from: the embedded store's writer loop, or (with several processes on one
/// database) the database's own log. The change feed reads it from one loop per process.
/// </summary>
/// <remarks>
/// A source yields every change committed after it started, per channel in <c>seq</c> order, once each, in
/// batches as they committed. The feed does not rely on the order or the once: it drops what it has published
/// and fills any gap from the log (<see cref="IStoreReader.ChangesSince"/>), so a source that is late or repeats
/// itself costs time, never correctness. What it must never do is skip a change for good.
/// </remarks>
public interface IChangeSource
{
    /// <summary>The committed changes, batch by batch, until <paramref name="cancellationToken"/> fires. One reader.</summary>
    IAsyncEnumerable<IReadOnlyList<ChangeEntry>> ReadAllAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The channel's last <c>seq</c> committed before this source started: every later one is (or will be)
    /// yielded by <see cref="ReadAllAsync"/>, none before it is.
    /// </summary>
    ValueTask<long> StartingSeqAsync(string path, CancellationToken cancellationToken);
}

public interface IStoreReader
{
    /// <summary>The log's identity: it changes when the log is reset, so old sequence numbers mean nothing.</summary>
    string Epoch { get; }

    StoredRecord? Get(string path, string id);

    /// <summary>
    /// The records of a collection path at most <paramref name="limit"/>: ordered by position (records without one first),
    /// then in creation order — so an unsorted collection lists in creation order.
    /// </summary>
    IReadOnlyList<StoredRecord> List(string path, int limit);

    /// <summary>
    /// The nearest position of a record of <paramref name="path"/> after (or before) <paramref name="position"/> — with
    /// <paramref name="position"/> null, the first (or last) — leaving out record <paramref name="excludeId"/>; null when
    /// there is none. Records without a position are not counted.
    /// </summary>
    OrderNeighbor? NeighborPosition(string path, string? position, bool after, string? excludeId);

    /// <summary>The channel's last sequence number (0 when nothing was written) and the oldest one still logged.</summary>
    ChannelPosition GetPosition(string path);

    /// <summary>
    /// The logged changes with <paramref name="since"/> &lt; seq ≤ <paramref name="upTo"/>, oldest first, at most
    /// <paramref name="max"/>. Entries trimmed from the log are simply absent: compare with <see cref="GetPosition"/>.
    /// </summary>
    IReadOnlyList<ChangeEntry> ChangesSince(string path, long since, long upTo, int max);

    /// <summary>
    /// Records of every collection path (or of <paramref name="under"/> and the paths below it), in creation order across
    /// the store, after the record whose <see cref="ExportedRecord.Order"/> is <paramref name="after"/>: a page of an export.
    /// </summary>
    IReadOnlyList<ExportedRecord> ExportPage(string? under, long after, int max) =>
        throw new NotSupportedException("This store cannot export its records.");

    /// <summary>True when nothing was ever written: no record and no channel (so no sequence number) — where an import may go.</summary>
    bool IsEmpty() => throw new NotSupportedException("This store cannot tell whether it is empty.");

    /// <summary>
    /// Up to <paramref name="max"/> channels' logs, most written first: for the admin page, read once every few seconds
    /// while someone watches. Empty where the store cannot tell.
    /// </summary>
    IReadOnlyList<ChannelLog> ChannelLogs(int max) => [];

    /// <summary>How many jobs each queue holds in each state (for the admin page). Empty where the store cannot tell.</summary>
    IReadOnlyList<JobStateCount> JobCounts() => [];
}

/// <summary>A channel's change log: its last <c>seq</c> and the oldest one still logged (<c>Seq + 1</c> when none is).</summary>
public sealed record ChannelLog(string Path, long Seq, long OldestSeq)
{
    /// <summary>Entries logged: the log is trimmed from its oldest end only, so it holds every seq from the oldest on.</summary>
    public long Entries => Math.Max(0, Seq - OldestSeq + 1);
}

/// <summary>The number of jobs of a queue in one state (<c>queued</c>, <c>running</c>, <c>failed</c>, <c>dead</c>, ...).</summary>
public sealed record JobStateCount(string Queue, string State, long Count);

/// <summary>A record as exported: its path, its place in the store's creation order, and the record itself.</summary>
public sealed record ExportedRecord(long Order, string Path, StoredRecord Record);

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
    /// <remarks><paramref name="after"/> is kept with a <c>MOVE</c>: the id of the record it now follows (null at the start).</remarks>
    ChangeEntry Append(string path, string method, string bodyJson, string? previousJson = null, string? after = null);

    /// <summary>
    /// Serializes changes to the order of <paramref name="path"/> until the transaction ends, so two writers never give
    /// two records the same position (a no-op where writes are serialized anyway).
    /// </summary>
    void LockOrder(string path);

    /// <summary>The job index: where each job of each queue stands, for claiming (the job itself is a record).</summary>
    IJobIndex Jobs { get; }
}

/// <summary>
/// Where a job stands, kept beside its record so workers can claim due jobs without reading every record. The lease
/// token lives only here: it is never part of the record that subscribers see.
/// </summary>
/// <param name="RunAt">Unix milliseconds; a queued job is due from then on.</param>
/// <param name="LeaseUntil">Unix milliseconds; a running job whose lease ran out is taken back.</param>
/// <param name="FinishedAt">Unix milliseconds when it reached a final state (succeeded, dead, cancelled); 0 before.</param>
public sealed record JobEntry(string Queue, string Id, string State, int Priority, long RunAt, string? Key, string? Lease, long LeaseUntil,
    long FinishedAt);

/// <summary>The job index, inside a write transaction. Jobs returned by the "find" methods are locked for it (another node's
/// claim skips them).</summary>
public interface IJobIndex
{
    void Put(JobEntry job);

    JobEntry? Get(string queue, string id);

    void Delete(string queue, string id);

    /// <summary>The queued or running job of <paramref name="queue"/> with <paramref name="key"/>, if any.</summary>
    JobEntry? ActiveByKey(string queue, string key);

    /// <summary>Queued jobs due at <paramref name="now"/>: highest priority first, then oldest <c>runAt</c>.</summary>
    IReadOnlyList<JobEntry> Due(string queue, long now, int max);

    /// <summary>Running jobs of any queue whose lease ran out before <paramref name="now"/>.</summary>
    IReadOnlyList<JobEntry> LeaseExpired(long now, int max);

    /// <summary>Jobs of <paramref name="queue"/> that finished before <paramref name="cutoff"/> (for retention).</summary>
    IReadOnlyList<JobEntry> FinishedBefore(string queue, long cutoff, int max);

    /// <summary>
    /// Moves a recurring schedule from <paramref name="due"/> to <paramref name="next"/> if it is still at <paramref name="due"/>
    /// (or, never seen, creates it at <paramref name="next"/> and says true): of several nodes, one wins each tick.
    /// </summary>
    bool TryAdvanceSchedule(string name, long due, long next);

    /// <summary>When the schedule <paramref name="name"/> fires next (unix milliseconds), or null when it was never set.</summary>
    long? ScheduleDue(string name);
}

/// <summary>A record: its id, its version (1 on create, +1 per update), its full JSON and, in a sorted collection, its
/// position key (kept in an indexed column beside the record, and as <c>position</c> in the JSON).</summary>
public sealed record StoredRecord(string Id, long Version, string Json, string? Position = null);

/// <summary>A record's place in a sorted collection: its id and position key.</summary>
public sealed record OrderNeighbor(string Id, string Position);

/// <summary>One entry of a channel's change log. <paramref name="After"/>: for a MOVE, the id the record now follows (null: first).</summary>
public sealed record ChangeEntry(string Path, long Seq, string Method, string BodyJson, DateTimeOffset At, string? PreviousJson = null,
    string? After = null);

/// <summary>The methods a change-log entry carries (the REST verb that made it).</summary>
public static class ChangeMethods
{
    public const string Post = "POST";
    public const string Put = "PUT";
    public const string Delete = "DELETE";

    /// <summary>A record of a sorted collection changed place; the body is the record after the move.</summary>
    public const string Move = "MOVE";
}

/// <summary>
/// Where a channel's log stands. A client that has seen up to <c>s</c> can catch up when
/// <c>s &gt;= OldestSeq - 1</c>; otherwise the entries it missed are gone and it must reload.
/// </summary>
public readonly record struct ChannelPosition(long Seq, long OldestSeq)
{
    public bool CanReplayFrom(long since) => since >= OldestSeq - 1 && since <= Seq;
}

/// <summary>
/// The store cannot be reached right now (its database is down or the network to it is): nothing was written.
/// REST answers 503, a socket write <c>503::</c>; the caller may try again later.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);
