using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Tidings.Storage;

namespace Tidings.Sqlite;

/// <summary>
/// The embedded store's change source: the writer loop hands each commit's changes here after the commit, in
/// commit order. The buffer is bounded: when the feed falls this far behind, the writer waits for it
/// (back-pressure) rather than memory growing.
/// </summary>
internal sealed class SqliteChangeSource(SqliteStore store, int capacity) : IChangeSource
{
    private readonly Channel<IReadOnlyList<ChangeEntry>> _committed = Channel.CreateBounded<IReadOnlyList<ChangeEntry>>(
        new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });

    // The first seq each channel got from this process's writer: the one before it is where the stream starts.
    // Written at append time, before the commit, so a reader that sees the commit also sees this entry.
    private readonly ConcurrentDictionary<string, long> _firstAppended = new(StringComparer.Ordinal);
    private int _reading;

    public async IAsyncEnumerable<IReadOnlyList<ChangeEntry>> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _reading, 1) == 1)
        {
            throw new InvalidOperationException("The SQLite change source has one reader (the change feed's publisher).");
        }

        try
        {
            await foreach (var batch in _committed.Reader.ReadAllAsync(cancellationToken))
            {
                yield return batch;
            }
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    public async ValueTask<long> StartingSeqAsync(string path, CancellationToken cancellationToken)
    {
        if (_firstAppended.TryGetValue(path, out var first))
        {
            return first - 1;
        }

        var seq = await store.ReadAsync(r => r.GetPosition(path).Seq, cancellationToken);

        // Appended meanwhile: that append got seq + 1 (or the read already saw it and the entry says so).
        return _firstAppended.TryGetValue(path, out first) ? first - 1 : seq;
    }

    /// <summary>Committed batches waiting for the feed.</summary>
    internal int Queued => _committed.Reader.Count;

    internal void NoteAppended(string path, long seq) => _firstAppended.TryAdd(path, seq);

    /// <summary>Called by the writer loop after a commit; waits while the buffer is full.</summary>
    internal ValueTask CommittedAsync(IReadOnlyList<ChangeEntry> changes, CancellationToken cancellationToken) =>
        _committed.Writer.WriteAsync(changes, cancellationToken);

    internal void Complete() => _committed.Writer.TryComplete();
}
