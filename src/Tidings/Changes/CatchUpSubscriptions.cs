using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// Subscriptions to collection channels. A plain one goes live at once; one that asks for catch-up
/// (<c>ext: {since, epoch}</c>) or initial state (<c>ext: {snapshot: true}</c>) reads that on its own consistent
/// view while writes go on, and joins the live stream through the <see cref="ChangeFeed"/>, keyed on seq.
/// </summary>
/// <remarks>
/// Budget: what a session is sent to catch up — read, plus the live events held while it reads — fits in its
/// outbound queue (<c>Bayeux:MaxQueuedBytes</c>) with room to spare, counted per session: a snapshot is cut and
/// marked <c>truncated</c>, a replay becomes a RESET, and the held events become a RESET. So several catch-ups
/// at once (a client re-subscribing six collections after a reconnect) never overflow the queue, and a client
/// never loops on "closed, handshake, subscribe, closed".
/// </remarks>
internal sealed class CatchUpSubscriptions
{
    private readonly BayeuxServer bayeux;
    private readonly CollectionRegistry registry;
    private readonly ITidingsStore store;
    private readonly ChangeFeed feed;
    private readonly TidingsOptions options;
    private readonly IAuthorizationService? authorization;

    public CatchUpSubscriptions(BayeuxServer bayeux, CollectionRegistry registry, ITidingsStore store, ChangeFeed feed, TidingsOptions options,
        IAuthorizationService? authorization = null)
    {
        this.bayeux = bayeux;
        this.registry = registry;
        this.store = store;
        this.feed = feed;
        this.options = options;
        this.authorization = authorization;

        // A List policy's subscribe-time decision lives as long as the subscription.
        bayeux.Unsubscribed += SubscribeDecisions.Forget;
    }

    public async ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken)
    {
        var message = context.Message;
        var hasSince = message.TryGetExt("since", out var sinceField);
        var wantsSnapshot = message.TryGetExt("snapshot", out var snapshotField) && snapshotField.ValueKind == JsonValueKind.True;
        var pattern = context.Pattern;
        var session = context.Session;
        if (ChannelName.IsWildcard(pattern))
        {
            if (hasSince || wantsSnapshot)
            {
                context.Refuse(BayeuxError.Format(400, pattern, "since and snapshot need a concrete collection channel, not a wildcard"));
                return;
            }

            // Across partitions: each event is filtered per recipient as it is delivered.
            context.Activate();
            return;
        }

        var target = registry.Resolve(pattern)!;
        // A List policy is evaluated here, once: deliveries to this subscription reuse the decision (SubscribeDecisions).
        var list = target.Collection.Access.List;
        var asked = new AccessContext(session.User, target.RouteValues) { Path = pattern, Operation = TidingsOperations.List };
        var decisions = list.UsesPolicies ? await list.DecideAsync(asked, authorization) : null;
        if (!list.Allows(decisions is null ? asked : asked.With(decisions)))
        {
            context.Refuse(BayeuxError.Format(403, pattern, "not allowed to subscribe to this collection"));
            return;
        }

        if (decisions is not null)
        {
            SubscribeDecisions.Remember(session, pattern, decisions);
        }

        if (!hasSince && !wantsSnapshot)
        {
            context.Activate();
            return;
        }

        long since = 0;
        if ((hasSince && (sinceField.ValueKind != JsonValueKind.Number || !sinceField.TryGetInt64(out since))) || since < 0)
        {
            context.Refuse(BayeuxError.Format(400, "since", "ext.since must be a non-negative integer"));
            return;
        }

        var epoch = message.TryGetExt("epoch", out var epochField) && epochField.ValueKind == JsonValueKind.String ? epochField.GetString() : null;

        // Half the queue for what is read, less what the session already holds (other catch-ups of this batch
        // among them); a quarter for live events held meanwhile; the rest for what follows.
        var queue = bayeux.Options.MaxQueuedBytes;
        var readBudget = (int)Math.Max(0, queue / 2 - session.QueuedBytes);
        await feed.JoinAsync(pattern, session,
            ct => store.ReadAsync(reader => wantsSnapshot
                ? Snapshot(target, session.User, decisions, reader, pattern, readBudget)
                : Replay(target, session.User, decisions, reader, pattern, since, epoch, readBudget), ct),
            context.Activate, queue / 4, cancellationToken);
    }

    /// <summary>The initial state, cut at <c>Tidings:MaxSnapshotItems</c> and at <paramref name="budget"/> bytes.</summary>
    private JoinRead Snapshot(CollectionTarget target, ClaimsPrincipal? user, PolicyDecisions? decisions, IStoreReader reader, string pattern, int budget)
    {
        var seq = reader.GetPosition(pattern).Seq;

        // One more than the limit tells whether the snapshot is whole; a partial one says so.
        var stored = reader.List(pattern, options.MaxSnapshotItems + 1);
        var truncated = stored.Count > options.MaxSnapshotItems;
        var items = Visibility.Records(target, user, decisions, truncated ? [.. stored.Take(options.MaxSnapshotItems)] : stored);

        var fitting = 0;
        foreach (var item in items)
        {
            budget -= Encoding.UTF8.GetByteCount(item.Json) + 1;
            if (budget < 0)
            {
                truncated = true;
                break;
            }

            fitting++;
        }

        var snapshot = ChangeEvents.SnapshotOf(fitting < items.Count ? [.. items.Take(fitting)] : items, seq, reader.Epoch, truncated,
            target.Collection.IsSorted);
        return new JoinRead([Delivery.CreateRaw(pattern, snapshot)], seq, reader.Epoch);
    }

    /// <summary>
    /// The changes after <paramref name="since"/> as this user may see them; a RESET (reload, then continue from
    /// its seq) when the epoch differs, the log no longer reaches back, or they would not fit in <paramref name="budget"/>.
    /// </summary>
    private JoinRead Replay(CollectionTarget target, ClaimsPrincipal? user, PolicyDecisions? decisions, IStoreReader reader, string pattern, long since, string? epoch,
        int budget)
    {
        var position = reader.GetPosition(pattern);
        if (epoch == reader.Epoch && position.CanReplayFrom(since) && position.Seq - since <= options.MaxReplay)
        {
            var deliveries = new List<Delivery>();
            long bytes = 0;
            foreach (var change in reader.ChangesSince(pattern, since, position.Seq, options.MaxReplay))
            {
                if (Visibility.Change(target, user, decisions, change) is { } delivery)
                {
                    bytes += delivery.Size;
                    if (bytes > budget)
                    {
                        deliveries = null;
                        break;
                    }

                    deliveries.Add(delivery);
                }
            }

            if (deliveries is not null)
            {
                return new JoinRead(deliveries, position.Seq, reader.Epoch);
            }
        }

        return new JoinRead([Delivery.CreateRaw(pattern, ChangeEvents.ResetTo(position.Seq, reader.Epoch))], position.Seq, reader.Epoch);
    }
}
