using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Storage;
using Tidings.Writes;

namespace Tidings.Changes;

/// <summary>
/// Connects collections to Bayeux. Committed changes are published on the channel equal to their REST
/// path, in commit order (the store calls <see cref="Committed"/> from its writer, after the commit).
/// Subscriptions to a collection channel may ask for catch-up (<c>ext: {since, epoch}</c>) or initial state
/// (<c>ext: {snapshot: true}</c>); both are completed inside a sequenced read, which runs between commits, and
/// the subscription goes live in that same step — so the replay and the live stream meet with no gap and no
/// duplicate. A snapshot is read beforehand on its own consistent view (writes go on meanwhile); the sequenced
/// step adds the changes committed since. Snapshots and replays fit in half the session's queue: a larger
/// snapshot is cut (<c>truncated</c>), a larger replay becomes a RESET. Publishes to a collection channel are writes (<c>{method, body}</c>) with REST's rules.
/// </summary>
public sealed class ChangeFeed(BayeuxServer bayeux, CollectionRegistry registry, ITidingsStore store, CollectionWriter writer, TidingsOptions options)
    : IChangeSink, IBayeuxChannelHandler
{
    public void Committed(IReadOnlyList<ChangeEntry> changes)
    {
        // One change that cannot be published must not silence the rest of its commit group: each is tried, and
        // the first failure is rethrown afterwards for the store to log.
        Exception? failure = null;
        foreach (var change in changes)
        {
            try
            {
                var delivery = Delivery.CreateRaw(change.Path, ChangeEvents.Change(change));
                if (registry.Resolve(change.Path) is { } target && !target.Collection.IsReadableByAnyone)
                {
                    // Every recipient, however it subscribed (exact, wildcard, /**), passes the collection's rules.
                    delivery = delivery.WithFilter(new ChangeFilter(target, change));
                }

                bayeux.Publish(delivery);
            }
            catch (Exception ex)
            {
                failure ??= ex;
            }
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    public bool Owns(string channelOrPattern) =>
        ChannelName.IsWildcard(channelOrPattern)
            ? registry.FindCovering(channelOrPattern) is not null
            : registry.Resolve(channelOrPattern) is not null;

    public async ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken)
    {
        var message = context.Message;
        var hasSince = message.TryGetExt("since", out var sinceField);
        var wantsSnapshot = message.TryGetExt("snapshot", out var snapshotField) && snapshotField.ValueKind == JsonValueKind.True;
        var pattern = context.Pattern;
        var user = context.Session.User;
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
        if (!target.Collection.Access.List.Allows(new AccessContext(user, target.RouteValues)))
        {
            context.Refuse(BayeuxError.Format(403, pattern, "not allowed to subscribe to this collection"));
            return;
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
        var snapshot = wantsSnapshot ? await ReadSnapshotAsync(target, user, pattern, cancellationToken) : null;
        await store.SequencedReadAsync(reader =>
        {
            // Runs between commits: nothing is in flight, so "read, send, go live" cannot miss or repeat a change.
            var position = reader.GetPosition(pattern);
            if (snapshot is not null && snapshot.Epoch == reader.Epoch && position.CanReplayFrom(snapshot.Seq)
                && position.Seq - snapshot.Seq <= options.MaxReplay
                && ChangesSince(target, user, reader, pattern, snapshot.Seq) is { } bridge)
            {
                // The snapshot read earlier plus what was committed since it: the same state, brought up to now.
                context.Send(snapshot.Delivery);
                bridge.ForEach(context.Send);
            }
            else if (wantsSnapshot)
            {
                // The log moved on too far meanwhile to bridge the gap: read the snapshot here after all.
                context.Send(SnapshotDelivery(target, user, reader, pattern, position.Seq));
            }
            else if (epoch == reader.Epoch && position.CanReplayFrom(since) && position.Seq - since <= options.MaxReplay
                && ChangesSince(target, user, reader, pattern, since) is { } replay)
            {
                replay.ForEach(context.Send);
            }
            else
            {
                // Another history, past the log's retention, or more than the session's queue may hold: the
                // client reloads (REST) and continues from the seq given here.
                context.Send(Delivery.CreateRaw(pattern, ChangeEvents.ResetTo(position.Seq, reader.Epoch)));
            }

            context.Activate();
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// Reads a snapshot outside the store's write sequence, on one consistent view with its seq. Reading and
    /// serializing thousands of records between commits would hold up every write for that long; the
    /// sequenced step then only adds the changes committed since this read.
    /// </summary>
    private Task<SnapshotRead> ReadSnapshotAsync(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user,
        string pattern, CancellationToken cancellationToken) =>
        store.ReadAsync(reader =>
        {
            var seq = reader.GetPosition(pattern).Seq;
            return new SnapshotRead(seq, reader.Epoch, SnapshotDelivery(target, user, reader, pattern, seq));
        }, cancellationToken);

    private Delivery SnapshotDelivery(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user,
        IStoreReader reader, string pattern, long seq)
    {
        // One more than the limit tells whether the snapshot is whole; a partial one says so.
        var stored = reader.List(pattern, options.MaxSnapshotItems + 1);
        var truncated = stored.Count > options.MaxSnapshotItems;
        var items = Readable(target, user, truncated ? [.. stored.Take(options.MaxSnapshotItems)] : stored);

        // Cut by size as well: a snapshot larger than the session's queue would close the session, and the
        // client, subscribing again, would get the same snapshot — forever.
        var budget = ReplayBudget;
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

        return Delivery.CreateRaw(pattern, ChangeEvents.SnapshotOf(fitting < items.Count ? [.. items.Take(fitting)] : items, seq, reader.Epoch, truncated));
    }

    /// <summary>
    /// The visible changes after <paramref name="since"/>, or null when together they are more than
    /// <see cref="ReplayBudget"/> bytes (the caller then resets the client instead of overflowing its queue).
    /// </summary>
    private List<Delivery>? ChangesSince(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user,
        IStoreReader reader, string pattern, long since)
    {
        var deliveries = new List<Delivery>();
        long bytes = 0;
        foreach (var change in reader.ChangesSince(pattern, since, options.MaxReplay))
        {
            if (Visible(target, user, change) is { } delivery)
            {
                bytes += delivery.Size;
                if (bytes > ReplayBudget)
                {
                    return null;
                }

                deliveries.Add(delivery);
            }
        }

        return deliveries;
    }

    /// <summary>
    /// How many bytes a snapshot or replay may take: half the session's outbound queue
    /// (<c>Bayeux:MaxQueuedBytes</c>), leaving the rest for live events that arrive while it is sent.
    /// </summary>
    private int ReplayBudget => bayeux.Options.MaxQueuedBytes / 2;

    private sealed record SnapshotRead(long Seq, string Epoch, Delivery Delivery);

    // A write through the socket: data {method: POST|PUT|PATCH|DELETE, body: {...}, version?}. The publish
    // reply carries the outcome (ext.tidings: {status, record}) or a code:args:message error; the event itself is
    // broadcast like any other change.
    public async ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken)
    {
        if (registry.Resolve(call.Channel) is not { } target)
        {
            call.Fail(BayeuxError.ChannelUnknown(call.Channel));
            return;
        }

        var data = call.Data;
        if (data.ValueKind != JsonValueKind.Object
            || !data.TryGetProperty("method", out var methodField) || methodField.ValueKind != JsonValueKind.String
            || !data.TryGetProperty("body", out var bodyField) || bodyField.ValueKind != JsonValueKind.Object)
        {
            call.Fail(BayeuxError.Format(400, "data", "a write is an object with method (POST PUT PATCH or DELETE) and body"));
            return;
        }

        long? expectedVersion = data.TryGetProperty("version", out var v) && v.TryGetInt64(out var version) ? version : null;
        var body = JsonNode.Parse(bodyField.GetRawText())!.AsObject();
        var context = new WriteContext(call.Session.User);
        var method = methodField.GetString();
        string? Id() => CollectionWriter.NormalizeId(body["id"] is JsonValue idValue && idValue.TryGetValue<string>(out var s) ? s : null);

        WriteOutcome outcome;
        switch (method)
        {
            case "POST":
                outcome = await writer.CreateAsync(target, body, context, cancellationToken);
                break;
            case "PUT" or "PATCH":
                outcome = Id() is { } updateId
                    ? await writer.UpdateAsync(target, updateId, body, expectedVersion, method == "PATCH", context, cancellationToken)
                    : WriteOutcome.Invalid("id", "'id' must be the UUID of the record to change.");
                break;
            case "DELETE":
                outcome = Id() is { } deleteId
                    ? await writer.DeleteAsync(target, deleteId, expectedVersion, context, cancellationToken)
                    : WriteOutcome.Invalid("id", "'id' must be the UUID of the record to delete.");
                break;
            default:
                call.Fail(BayeuxError.Format(400, "method", "method must be POST, PUT, PATCH or DELETE"));
                return;
        }

        var result = new JsonObject { ["status"] = outcome.Status.ToString() };
        if (outcome.Record is { } record && outcome.Status != WriteStatus.Deleted)
        {
            result["record"] = JsonNode.Parse(record.Json);
        }

        if (outcome.Seq is { } seq)
        {
            result["seq"] = seq;
        }

        call.ReplyExt("tidings", result);
        if (!outcome.Succeeded)
        {
            call.Fail(ToBayeuxError(outcome));
        }
    }

    /// <summary>A change as <paramref name="user"/> may see it (the event, a removal or a skip), for replays.</summary>
    internal static Delivery? Visible(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user, ChangeEntry change) =>
        VisibleEvent(target, user, change) is { } data ? Delivery.CreateRaw(change.Path, data) : null;

    /// <summary>The event payload of <see cref="Visible"/>, for REST catch-up.</summary>
    internal static byte[]? VisibleEvent(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user, ChangeEntry change) =>
        target.Collection.IsReadableByAnyone ? ChangeEvents.Change(change) : new ChangeFilter(target, change).EventFor(user);

    /// <summary>The records <paramref name="user"/> may read, in order.</summary>
    internal static IReadOnlyList<StoredRecord> Readable(CollectionTarget target, System.Security.Claims.ClaimsPrincipal? user,
        IReadOnlyList<StoredRecord> records)
    {
        if (target.Collection.IsReadableByAnyone)
        {
            return records;
        }

        var access = target.Collection.Access;
        return [.. records.Where(r => access.CanRead(new AccessContext(user, target.RouteValues, JsonNode.Parse(r.Json)!.AsObject())))];
    }

    private static string ToBayeuxError(WriteOutcome outcome) => outcome.Status switch
    {
        WriteStatus.NotFound => BayeuxError.Format(404, "id", "no such record"),
        WriteStatus.Forbidden => BayeuxError.Format(403, string.Empty, "not allowed to make this change"),
        WriteStatus.VersionMismatch => BayeuxError.Format(412, "version", "the record has changed - reload it and try again"),
        _ => BayeuxError.Format(422, string.Join(',', outcome.Errors?.Keys ?? []),
            string.Join(" ", outcome.Errors?.Values.SelectMany(m => m) ?? ["invalid record"])),
    };
}
