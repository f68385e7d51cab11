using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Tidings.Storage;

namespace Tidings.Tests.Support;

/// <summary>
/// A change source that breaks the promises a source should keep, to show the feed does not depend on them:
/// it can hold batches back (the feed then runs behind the commits), release them in reverse and twice, and in
/// chaos mode it delays, repeats and swaps batches at random. It never loses one for good.
/// Wraps the store's real source: register it as the app's <see cref="IChangeSource"/>.
/// </summary>
internal sealed class UnreliableChangeSource(IChangeSource inner, Random? chaos = null) : IChangeSource
{
    private readonly Lock _gate = new();
    private readonly List<IReadOnlyList<ChangeEntry>> _held = [];
    private readonly Channel<IReadOnlyList<ChangeEntry>> _out = Channel.CreateUnbounded<IReadOnlyList<ChangeEntry>>();
    private bool _holding;
    private IReadOnlyList<ChangeEntry>? _swapped;

    /// <summary>From now on, batches are kept back until <see cref="Release"/>.</summary>
    public void Hold()
    {
        lock (_gate)
        {
            _holding = true;
        }
    }

    public int HeldCount
    {
        get
        {
            lock (_gate)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>Lets the held batches go: newest first when <paramref name="reversed"/>, and all of them twice when <paramref name="twice"/>.</summary>
    public void Release(bool reversed = false, bool twice = false)
    {
        lock (_gate)
        {
            _holding = false;
            IEnumerable<IReadOnlyList<ChangeEntry>> order = reversed ? Enumerable.Reverse(_held) : _held;
            foreach (var batch in twice ? order.Concat(order).ToList() : order.ToList())
            {
                _out.Writer.TryWrite(batch);
            }

            _held.Clear();
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<ChangeEntry>> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pump = Task.Run(() => PumpAsync(cancellationToken), cancellationToken);
        await foreach (var batch in _out.Reader.ReadAllAsync(cancellationToken))
        {
            yield return batch;
        }

        await pump;
    }

    public ValueTask<long> StartingSeqAsync(string path, CancellationToken cancellationToken) => inner.StartingSeqAsync(path, cancellationToken);

    private void LetSwappedGo(IReadOnlyList<ChangeEntry> batch)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_swapped, batch))
            {
                _out.Writer.TryWrite(batch);
                _swapped = null;
            }
        }
    }

    private async Task PumpAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var batch in inner.ReadAllAsync(cancellationToken))
            {
                if (chaos is not null)
                {
                    await Task.Delay(chaos.Next(3), cancellationToken); // late
                }

                lock (_gate)
                {
                    if (_holding)
                    {
                        _held.Add(batch);
                        continue;
                    }

                    if (chaos is null)
                    {
                        _out.Writer.TryWrite(batch);
                        continue;
                    }

                    // Out of order: a batch kept back goes out after the next one. Twice: some go out again later.
                    if (_swapped is null && chaos.Next(4) == 0)
                    {
                        // Goes out after the next batch, or on its own shortly if none comes: late, never lost.
                        _swapped = batch;
                        _ = Task.Delay(20, cancellationToken).ContinueWith(_ => LetSwappedGo(batch), TaskScheduler.Default);
                        continue;
                    }

                    _out.Writer.TryWrite(batch);
                    if (_swapped is not null)
                    {
                        _out.Writer.TryWrite(_swapped);
                        _swapped = null;
                    }

                    if (chaos.Next(5) == 0)
                    {
                        _out.Writer.TryWrite(batch);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
