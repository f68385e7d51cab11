using Microsoft.Extensions.Logging;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// The one ordered publisher of a process: reads committed batches from the change source and hands each
/// change to the <see cref="ChangeFeed"/>, off the store's writer — a slow access rule or a large fan-out delays
/// events, never writes. A failure is logged and the loop goes on; it stops only when the app stops.
/// </summary>
internal sealed class ChangePublisher(IChangeSource source, ChangeFeed feed, TimeProvider time, ILogger<ChangePublisher> logger)
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    public void Start() => _loop = Task.Run(() => RunAsync(_stopping.Token));

    public async Task StopAsync()
    {
        await _stopping.CancelAsync();
        await _loop;
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var retry = FirstRetry;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var batch in source.ReadAllAsync(cancellationToken))
                {
                    foreach (var change in batch)
                    {
                        await PublishAsync(change, cancellationToken);
                    }

                    retry = FirstRetry;
                }

                return; // the source ended: the store is closing
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The source failed (say, the database is unreachable): try again later; the feed fills any gap.
                ChangeFeedLog.SourceFailed(logger, retry, ex);
                try
                {
                    await Task.Delay(retry, time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LastRetry.Ticks));
            }
        }
    }

    private async ValueTask PublishAsync(ChangeEntry change, CancellationToken cancellationToken)
    {
        try
        {
            await feed.PublishAsync(change, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One change that cannot be published does not stop the rest; its subscribers see the gap and catch up.
            ChangeFeedLog.PublishFailed(logger, change.Path, ex);
        }
    }
}
