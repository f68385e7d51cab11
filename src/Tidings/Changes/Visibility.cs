using System.Security.Claims;
using System.Text.Json.Nodes;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// What one user may see of stored records and logged changes: the rules the fan-out applies, for reads. Synchronous (it
/// runs inside the store's read); <c>decisions</c> are what the List rule's policies decided for the user, evaluated
/// before the read (null when List has none).
/// </summary>
internal static class Visibility
{
    /// <summary>A change as <paramref name="user"/> may see it (the event, a removal or a skip), for replays.</summary>
    public static Delivery? Change(CollectionTarget target, ClaimsPrincipal? user, PolicyDecisions? decisions, ChangeEntry change) =>
        ChangeEvent(target, user, decisions, change) is { } data ? Delivery.CreateRaw(change.Path, data) : null;

    /// <summary>The event payload of <see cref="Change"/>, for REST catch-up.</summary>
    public static byte[]? ChangeEvent(CollectionTarget target, ClaimsPrincipal? user, PolicyDecisions? decisions, ChangeEntry change) =>
        target.Collection.IsReadableByAnyone ? ChangeEvents.Change(change) : new ChangeFilter(target, change).EventFor(user, decisions);

    /// <summary>The records <paramref name="user"/> may read, in order.</summary>
    public static IReadOnlyList<StoredRecord> Records(CollectionTarget target, ClaimsPrincipal? user, PolicyDecisions? decisions,
        IReadOnlyList<StoredRecord> records)
    {
        if (target.Collection.IsReadableByAnyone)
        {
            return records;
        }

        var access = target.Collection.Access;
        return [.. records.Where(r => access.CanRead(new AccessContext(user, target.RouteValues, JsonNode.Parse(r.Json)!.AsObject()) { Decisions = decisions }))];
    }
}
