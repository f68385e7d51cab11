using Tidings.Storage;

namespace Tidings.Tests.Support;

/// <summary>Reads a store's <see cref="IChangeSource"/> in the background and records every batch, in order.</summary>
internal sealed class ChangeRecorder : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly List<IReadOnlyList<ChangeEntry>> _batches = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ChangeRecorder(IChangeSource source) => _reading = Task.Run(() => ReadAsync(source));

    private async Task ReadAsync(IChangeSource source)
    {
        try
        {
            await foreach (var batch in source.ReadAllAsync(_stop.Token))
            {
                TaskCompletionSource changed;
                lock (_gate)
                {
                    _batches.Add([.. batch]);
                    changed = _changed;
                    _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                changed.TrySetResult();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public IReadOnlyList<IReadOnlyList<ChangeEntry>> Batches
    {
        get
        {
            lock (_gate)
            {
                return [.. _batches];
            }
        }
    }

    /// <summary>Every change yielded so far, in the order the source yielded them.</summary>
    public IReadOnlyList<ChangeEntry> Changes
    {
        get
        {
            lock (_gate)
            {
                return [.. _batches.SelectMany(c => c)];
            }
        }
    }

    /// <summary>Waits until the source has yielded <paramref name="path"/>'s change <paramref name="seq"/>.</summary>
    public async Task WaitForAsync(string path, long seq)
    {
        using var timeout = new CancellationTokenSource(Eventually.Patience);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_batches.Any(b => b.Any(c => c.Path == path && c.Seq >= seq)))
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(timeout.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _reading;
        _stop.Dispose();
    }
}
