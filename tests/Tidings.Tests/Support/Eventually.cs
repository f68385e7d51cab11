namespace Tidings.Tests.Support;

/// <summary>Waits for conditions with a deadline instead of sleeping.</summary>
internal static class Eventually
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public static async Task<T> WithinAsync<T>(Task<T> task, TimeSpan? patience = null) =>
        await task.WaitAsync(patience ?? Patience);

    public static async Task WithinAsync(Task task, TimeSpan? patience = null) =>
        await task.WaitAsync(patience ?? Patience);

    /// <summary>Waits until <paramref name="condition"/> holds, checking it every few milliseconds, or fails at the deadline.</summary>
    public static async Task UntilAsync(Func<bool> condition, string because, TimeSpan? patience = null)
    {
        var deadline = TimeProvider.System.GetTimestamp() + (long)((patience ?? Patience).TotalSeconds * TimeProvider.System.TimestampFrequency);
        while (!condition())
        {
            Assert.True(TimeProvider.System.GetTimestamp() < deadline, "Timed out waiting: " + because);
            await Task.Delay(5);
        }
    }

    /// <summary>Runs <paramref name="assertion"/> until it passes, or rethrows its last failure at the deadline.</summary>
    public static async Task PassesAsync(Func<Task> assertion, TimeSpan? patience = null)
    {
        var deadline = TimeProvider.System.GetTimestamp() + (long)((patience ?? Patience).TotalSeconds * TimeProvider.System.TimestampFrequency);
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (TimeProvider.System.GetTimestamp() < deadline)
            {
                await Task.Delay(50);
            }
        }
    }
}
