using System.Threading.Tasks.Sources;

namespace Tidings.Bayeux.Transports;

/// <summary>
/// Wakes one waiting loop (a socket's send loop) without allocating per wake-up: one reusable
/// <see cref="IValueTaskSource"/> instead of a new <c>TaskCompletionSource</c> each time the loop goes idle.
/// Not thread-safe by itself: the owner calls <see cref="Arm"/> and <see cref="Set"/> under its own lock,
/// and awaits each armed wait before arming the next.
/// </summary>
internal sealed class WakeSignal : IValueTaskSource
{
    // Continuations run on the thread pool: whoever calls Set (a publisher fanning out to thousands of
    // sockets) must not end up running a send loop inline, under the owner's lock.
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _armed;

    /// <summary>A wait that completes at the next <see cref="Set"/>.</summary>
    public ValueTask Arm()
    {
        _core.Reset();
        _armed = true;
        return new ValueTask(this, _core.Version);
    }

    /// <summary>Completes the armed wait, if any; a no-op otherwise.</summary>
    public void Set()
    {
        if (_armed)
        {
            _armed = false;
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
