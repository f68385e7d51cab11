namespace Tidings.Client.Tests.Support;

/// <summary>Waits for conditions with a deadline instead of sleeping.</summary>
internal static class Eventually
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>Waits until <paramref name="condition"/> holds, checking it every few milliseconds, or fails at the deadline.</summary>
    public static async Task UntilAsync(Func<bool> condition, string because, TimeSpan? patience = null)
    {
        var deadline = TimeProvider.System.GetTimestamp() + (long)((patience ?? Patience).TotalSeconds * TimeProvider.System.TimestampFrequency);
        while (!condition())
        {
            Assert.True(TimeProvider.System.GetTimestamp() < deadline, "Timed out waiting: " + because);
            await Task.Delay(10);
        }
    }

    /// <summary>Like <see cref="UntilAsync(Func{bool}, string, TimeSpan?)"/> with an asynchronous condition.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string because, TimeSpan? patience = null)
    {
        var deadline = TimeProvider.System.GetTimestamp() + (long)((patience ?? Patience).TotalSeconds * TimeProvider.System.TimestampFrequency);
        while (!await condition())
        {
            Assert.True(TimeProvider.System.GetTimestamp() < deadline, "Timed out waiting: " + because);
            await Task.Delay(20);
        }
    }

    public static Task<T> WithinAsync<T>(Task<T> task, TimeSpan? patience = null) => task.WaitAsync(patience ?? Patience);

    public static Task WithinAsync(Task task, TimeSpan? patience = null) => task.WaitAsync(patience ?? Patience);
}
