namespace Tidings.Tests.Support;

/// <summary>Waits for conditions with a deadline instead of sleeping.</summary>
internal static class Eventually
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public static async Task<T> WithinAsync<T>(Task<T> task, TimeSpan? patience = null) =>
        await task.WaitAsync(patience ?? Patience);

    public static async Task WithinAsync(Task task, TimeSpan? patience = null) =>
        await task.WaitAsync(patience ?? Patience);
}
