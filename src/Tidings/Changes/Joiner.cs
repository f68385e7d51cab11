using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Changes;

/// <summary>
/// A subscription on its way into a channel's live stream (see <see cref="ChangeFeed"/>): it holds the events
/// published while it reads, then sends those after its read and is activated. Every member is used under the
/// channel's gate.
/// </summary>
internal sealed class Joiner(BayeuxSession session, Action activate, int maxBufferedBytes, CancellationToken cancellationToken)
{
    private const long NotRead = long.MaxValue;

    private readonly List<(long Seq, Delivery Delivery)> _buffer = [];
    private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _bufferedBytes;
    private bool _overflowed;
    private bool _abandoned;
    private string _epoch = string.Empty;

    /// <summary>The seq its read brought it up to; <see cref="NotRead"/> while it is still reading.</summary>
    private long _readSeq = NotRead;

    /// <summary>Completes when the subscription is live (or abandoned).</summary>
    public Task Live => _live.Task;

    /// <summary>A live event of the channel, published while this subscription joins.</summary>
    public void Offer(long seq, Delivery delivery)
    {
        if (seq <= _readSeq && _readSeq != NotRead || _overflowed)
        {
            return; // the read already has it, or only a reload can help now
        }

        _bufferedBytes += delivery.Size;
        if (_bufferedBytes > maxBufferedBytes)
        {
            _overflowed = true;
            _buffer.Clear();
            return;
        }

        _buffer.Add((seq, delivery));
    }

    /// <summary>The read is sent: it covers every change up to <paramref name="seq"/>.</summary>
    public void ReadUpTo(long seq, string epoch)
    {
        _readSeq = seq;
        _epoch = epoch;
        _buffer.RemoveAll(e => e.Seq <= seq);
    }

    /// <summary>Whether the channel, now published up to <paramref name="published"/>, has caught up with the read.</summary>
    public bool IsReadyAt(long published) => _readSeq != NotRead && !_abandoned && published >= _readSeq;

    /// <summary>
    /// Sends the buffered events (each filtered for this recipient, as the fan-out would) or, if the buffer
    /// overflowed, a RESET at <paramref name="published"/>. False when the subscription must not go live.
    /// </summary>
    public bool Flush(string channel, long published)
    {
        if (_abandoned || cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        if (_overflowed)
        {
            session.Send(Delivery.CreateRaw(channel, ChangeEvents.ResetTo(published, _epoch)));
        }
        else
        {
            foreach (var (_, delivery) in _buffer)
            {
                if (delivery.Filter is not { } filter)
                {
                    session.Send(delivery);
                }
                else if (filter.Select(session, delivery) is { } visible)
                {
                    session.Send(visible);
                }
            }
        }

        _buffer.Clear();
        return true;
    }

    public void Activate()
    {
        activate();
        _live.TrySetResult();
    }

    /// <summary>The subscribe request ended (done, failed or cancelled): this joiner never goes live after this.</summary>
    public void Abandon()
    {
        _abandoned = true;
        _buffer.Clear();
        _live.TrySetResult();
    }
}
