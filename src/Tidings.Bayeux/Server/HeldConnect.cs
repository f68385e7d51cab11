using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>Every way a <c>/meta/connect</c> ends. One place, so no ending is forgotten.</summary>
public enum ConnectRelease
{
    /// <summary>Answered without waiting: batched with other messages, <c>advice.timeout: 0</c>, or messages already waiting.</summary>
    Immediate,

    /// <summary>A message arrived for the session.</summary>
    Delivery,

    /// <summary><see cref="BayeuxOptions.ConnectTimeout"/> passed with nothing to deliver.</summary>
    Timeout,

    /// <summary>A newer connect from the same client took over; the older one is answered, never dropped.</summary>
    Superseded,

    /// <summary>The session ended (disconnect, expiry, queue overflow); the client is told to handshake.</summary>
    SessionClosed,

    /// <summary>The HTTP request was aborted or the WebSocket closed; there is nobody to answer.</summary>
    ClientGone,
}

/// <summary>
/// A connect being answered: held until one of the <see cref="ConnectRelease"/> events, then completed
/// by the transport that received it (an HTTP response or a WebSocket frame).
/// </summary>
internal sealed class HeldConnect
{
    private readonly TaskCompletionSource<ConnectRelease> _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITimer? _timer;
    private CancellationTokenRegistration _abortRegistration;

    public HeldConnect(BayeuxSession session, BayeuxMessage request, BayeuxReply reply, BayeuxTransportContext transport)
    {
        Session = session;
        Request = request;
        Reply = reply;
        Transport = transport;
    }

    public BayeuxSession Session { get; }
    public BayeuxMessage Request { get; }
    public BayeuxReply Reply { get; }
    public BayeuxTransportContext Transport { get; }

    public Task<ConnectRelease> Released => _released.Task;

    /// <summary>Starts the hold: released by the timer, by <paramref name="aborted"/>, or by <see cref="TryRelease"/>.</summary>
    public void Hold(TimeProvider time, TimeSpan timeout, CancellationToken aborted)
    {
        _timer = time.CreateTimer(static state => ((HeldConnect)state!).TryRelease(ConnectRelease.Timeout), this, timeout, Timeout.InfiniteTimeSpan);
        if (aborted.CanBeCanceled)
        {
            _abortRegistration = aborted.UnsafeRegister(static state => ((HeldConnect)state!).TryRelease(ConnectRelease.ClientGone), this);
        }

        if (_released.Task.IsCompleted)
        {
            Cleanup();
        }
    }

    public void ReleaseNow() => TryRelease(ConnectRelease.Immediate);

    public bool TryRelease(ConnectRelease reason)
    {
        if (!_released.TrySetResult(reason))
        {
            return false;
        }

        Cleanup();
        return true;
    }

    private void Cleanup()
    {
        _timer?.Dispose();
        _abortRegistration.Dispose();
    }
}
