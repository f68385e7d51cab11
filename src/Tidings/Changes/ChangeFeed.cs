using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Observability;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// The one place where the live stream and what a subscriber read meet, keyed on <c>seq</c> alone — the same for
/// every store. Per channel it knows the last <c>seq</c> it published and publishes each later change once, in
/// order: a repeat is dropped, and a change past a gap waits while the missing range is read from the log.
/// </summary>
/// <remarks>
/// <para>A subscription that reads first (a snapshot or a <c>since</c> replay) joins like this: it starts
/// buffering the channel's live events, reads up to some seq S, sends what it read, then goes live with the
/// buffered events after S (those up to S are dropped). Everything published before it started buffering was
/// committed before its read, so read + buffer + live is the whole stream with no gap and no repeat — whatever
/// the store, whenever the read ran. If the read saw changes not yet published here (the feed runs behind the
/// commits), the subscription goes live when the feed reaches S, from the publisher.</para>
/// <para>Locks: a channel's gate is held while one of its changes is fanned out and while a subscription joins
/// it; it is taken before a session's lock, never after.</para>
/// </remarks>
public sealed partial class ChangeFeed(BayeuxServer bayeux, CollectionRegistry registry, IChangeSource source, ITidingsStore store,
    ILogger<ChangeFeed> logger)
{
    /// <summary>Changes read from the log per query while a gap is filled.</summary>
    private const int GapReadChunk = 1_000;

    private readonly ConcurrentDictionary<string, ChannelState> _channels = new(StringComparer.Ordinal);
    private readonly ChangeTraces _traces = ChangeTraces.For(store);

    /// <summary>The last seq published on <paramref name="path"/> (null before the feed has looked at it).</summary>
    public long? PublishedSeq(string path) =>
        _channels.TryGetValue(path, out var channel) && Volatile.Read(ref channel.Published) is var seq && seq != ChannelState.Unknown ? seq : null;

    /// <summary>How many subscriptions are joining <paramref name="path"/> right now (reading, or waiting for the feed).</summary>
    internal int JoiningCount(string path)
    {
        if (!_channels.TryGetValue(path, out var channel))
        {
            return 0;
        }

        lock (channel.Gate)
        {
            return channel.Joiners?.Count ?? 0;
        }
    }

    /// <summary>
    /// Publishes one committed change, unless it was published already; fills a gap before it from the log.
    /// Called by the publisher loop only (<see cref="ChangePublisher"/>), one change at a time.
    /// </summary>
    internal async ValueTask PublishAsync(ChangeEntry change, CancellationToken cancellationToken)
    {
        var channel = Channel(change.Path);
        var published = await KnownPublishedAsync(channel, cancellationToken);
        if (change.Seq <= published)
        {
            return; // a repeat, or filled in from the log when a later change arrived first
        }

        if (change.Seq > published + 1)
        {
            await FillGapAsync(channel, published, change.Seq - 1, cancellationToken);
        }

        Emit(channel, change.Seq, EventFor(change));
    }

    /// <summary>
    /// Joins <paramref name="session"/> to <paramref name="path"/>'s live stream after what <paramref name="read"/>
    /// returns (see remarks on the class). <paramref name="activate"/> adds the subscription; it runs under the
    /// channel's gate, here or on the publisher, and never once <paramref name="cancellationToken"/> has fired.
    /// </summary>
    /// <param name="bufferBytes">The most live-event bytes held while reading; beyond it the subscriber is sent a
    /// RESET (it reloads) instead of the buffered events, so a slow read cannot grow memory.</param>
    internal async Task JoinAsync(string path, BayeuxSession session, Func<CancellationToken, Task<JoinRead>> read, Action activate,
        int bufferBytes, CancellationToken cancellationToken)
    {
        var channel = Channel(path);
        await KnownPublishedAsync(channel, cancellationToken);
        var joiner = new Joiner(session, activate, bufferBytes, cancellationToken);
        lock (channel.Gate)
        {
            (channel.Joiners ??= []).Add(joiner);
        }

        try
        {
            var caughtUp = await read(cancellationToken);
            lock (channel.Gate)
            {
                cancellationToken.ThrowIfCancellationRequested();
                foreach (var delivery in caughtUp.Deliveries)
                {
                    session.Send(delivery);
                }

                joiner.ReadUpTo(caughtUp.Seq, caughtUp.Epoch);
                if (channel.Published >= caughtUp.Seq)
                {
                    GoLive(channel, joiner);
                    return;
                }
            }

            // The read saw changes this feed has not published yet: the publisher lets it in when it gets there.
            await joiner.Live.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (channel.Gate)
            {
                joiner.Abandon();
                channel.Joiners?.Remove(joiner);
            }
        }
    }

    private ChannelState Channel(string path) => _channels.GetOrAdd(path, static p => new ChannelState(p));

    /// <summary>The channel's last published seq, learning where the source's stream starts the first time.</summary>
    private async ValueTask<long> KnownPublishedAsync(ChannelState channel, CancellationToken cancellationToken)
    {
        var published = Volatile.Read(ref channel.Published);
        if (published != ChannelState.Unknown)
        {
            return published;
        }

        var start = await channel.StartingSeq(source).WaitAsync(cancellationToken);
        lock (channel.Gate)
        {
            if (channel.Published == ChannelState.Unknown)
            {
                channel.Published = start;
            }

            return channel.Published;
        }
    }

    /// <summary>Publishes (<paramref name="after"/>, <paramref name="upTo"/>] from the log, or a RESET where it no longer reaches.</summary>
    private async ValueTask FillGapAsync(ChannelState channel, long after, long upTo, CancellationToken cancellationToken)
    {
        var next = after + 1;
        while (next <= upTo)
        {
            var from = next - 1;
            var (missing, epoch) = await store.ReadAsync(r => (r.ChangesSince(channel.Path, from, upTo, GapReadChunk), r.Epoch), cancellationToken);
            var progressed = false;
            foreach (var change in missing)
            {
                if (change.Seq != next)
                {
                    break;
                }

                Emit(channel, change.Seq, EventFor(change));
                next++;
                progressed = true;
            }

            if (!progressed)
            {
                // The log was trimmed past the gap: subscribers cannot get these changes one by one, so they reload.
                ChangeFeedLog.GapPastLog(logger, channel.Path, next, upTo);
                Emit(channel, upTo, Delivery.CreateRaw(channel.Path, ChangeEvents.ResetTo(upTo, epoch)));
                return;
            }
        }
    }

    /// <summary>Fans one event out on its channel and hands it to the subscriptions joining it.</summary>
    private void Emit(ChannelState channel, long seq, Delivery delivery)
    {
        // Continues the trace of the write that committed it (when it was traced here); nothing while nobody listens.
        var parent = _traces.Take(channel.Path, seq);
        using var trace = TidingsTracing.Source.StartActivity(TidingsTracing.Publish, System.Diagnostics.ActivityKind.Producer, parent);
        trace?.SetTag(TidingsTracing.PathTag, channel.Path).SetTag(TidingsTracing.SeqTag, seq);
        lock (channel.Gate)
        {
            try
            {
                if (channel.Joiners is { Count: > 0 } joiners)
                {
                    foreach (var joiner in joiners)
                    {
                        joiner.Offer(seq, delivery);
                    }
                }

                var recipients = bayeux.Publish(delivery);
                trace?.SetTag(TidingsTracing.DeliveriesTag, recipients);
            }
            finally
            {
                // Published even when a recipient's rule threw: the others got it, and a subscriber that missed it
                // sees the gap in seq and catches up.
                channel.Published = seq;
                if (channel.Joiners is { Count: > 0 } waiting)
                {
                    foreach (var joiner in waiting.ToArray())
                    {
                        if (joiner.IsReadyAt(seq))
                        {
                            GoLive(channel, joiner);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Under the channel's gate: sends what the joiner buffered after its read and adds the subscription.</summary>
    private void GoLive(ChannelState channel, Joiner joiner)
    {
        if (joiner.Flush(channel.Path, channel.Published))
        {
            joiner.Activate();
        }

        channel.Joiners?.Remove(joiner);
    }

    /// <summary>A change's event; for a collection that not everyone may read, filtered per recipient as it is delivered.</summary>
    private Delivery EventFor(ChangeEntry change)
    {
        var delivery = Delivery.CreateRaw(change.Path, ChangeEvents.Change(change));
        return registry.Resolve(change.Path) is { } target && !target.Collection.IsReadableByAnyone
            ? delivery.WithFilter(new ChangeFilter(target, change))
            : delivery;
    }

    private sealed class ChannelState(string path)
    {
        public const long Unknown = -1;

        public readonly string Path = path;
        public readonly Lock Gate = new();

        /// <summary>The last seq fanned out here; <see cref="Unknown"/> until the source's starting point is known.</summary>
        public long Published = Unknown;

        /// <summary>Subscriptions buffering this channel while they read.</summary>
        public List<Joiner>? Joiners;

        private Task<long>? _startingSeq;

        public Task<long> StartingSeq(IChangeSource source)
        {
            lock (Gate)
            {
                if (_startingSeq is null || _startingSeq.IsFaulted || _startingSeq.IsCanceled)
                {
                    _startingSeq = source.StartingSeqAsync(Path, CancellationToken.None).AsTask();
                }

                return _startingSeq;
            }
        }
    }
}

/// <summary>What a joining subscription read: the messages to send first, and the seq they bring it up to.</summary>
internal sealed record JoinRead(IReadOnlyList<Delivery> Deliveries, long Seq, string Epoch);

internal static partial class ChangeFeedLog
{
    [LoggerMessage(1, LogLevel.Warning, "Changes {From}..{To} of {Channel} are no longer in the log; its subscribers are told to reload.")]
    public static partial void GapPastLog(ILogger logger, string channel, long from, long to);

    [LoggerMessage(2, LogLevel.Error, "Publishing a change of {Channel} failed.")]
    public static partial void PublishFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(3, LogLevel.Error, "Reading the change source failed; retrying in {Delay}.")]
    public static partial void SourceFailed(ILogger logger, TimeSpan delay, Exception exception);
}
