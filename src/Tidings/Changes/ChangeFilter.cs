using System.Text.Json.Nodes;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// Authorization on the fan-out path: each recipient of a change event gets what it may see now — the event,
/// a removal (it could read the record before this update but not after), or a <c>SKIP</c> that only keeps
/// its <c>seq</c> contiguous. The three variants are serialized at most once each, whatever the number of
/// recipients; per recipient only the in-memory rules run. No database read.
/// </summary>
internal sealed class ChangeFilter : IDeliveryFilter
{
    private readonly CollectionAccess _access;
    private readonly IReadOnlyDictionary<string, string> _routeValues;
    private readonly ChangeEntry _change;
    private JsonObject? _body;
    private JsonObject? _previous;
    private Delivery? _removal;
    private Delivery? _skip;

    public ChangeFilter(CollectionTarget target, ChangeEntry change)
    {
        _access = target.Collection.Access;
        _routeValues = target.RouteValues;
        _change = change;
    }

    /// <remarks>A policy on List counts as decided when the recipient subscribed to this channel (<see cref="SubscribeDecisions"/>).</remarks>
    public Delivery? Select(BayeuxSession recipient, Delivery delivery) =>
        Decide(recipient.User, _access.List.UsesPolicies ? SubscribeDecisions.For(recipient, _change.Path) : null) switch
    {
        ChangeVisibility.Full => delivery,
        ChangeVisibility.Removal => _removal ??= Delivery.CreateRaw(_change.Path, RemovalEvent()),
        ChangeVisibility.Skip => _skip ??= Delivery.CreateRaw(_change.Path, ChangeEvents.Skip(_change.Seq)),
        _ => null,
    };

    /// <summary>The event payload <paramref name="user"/> may see of this change, or null for nothing.</summary>
    /// <param name="decisions">What List's policies decided for <paramref name="user"/>, evaluated before (null: none).</param>
    public byte[]? EventFor(System.Security.Claims.ClaimsPrincipal? user, PolicyDecisions? decisions) => Decide(user, decisions) switch
    {
        ChangeVisibility.Full => ChangeEvents.Change(_change),
        ChangeVisibility.Removal => RemovalEvent(),
        ChangeVisibility.Skip => ChangeEvents.Skip(_change.Seq),
        _ => null,
    };

    private byte[] RemovalEvent() => ChangeEvents.Removal(_change.Seq, _body!["id"]!.GetValue<string>());

    private ChangeVisibility Decide(System.Security.Claims.ClaimsPrincipal? user, PolicyDecisions? decisions)
    {
        if (!_access.List.Allows(new AccessContext(user, _routeValues) { Decisions = decisions }))
        {
            return ChangeVisibility.None; // not a reader of this partition at all (say, subscribed through /**)
        }

        _body ??= JsonNode.Parse(_change.BodyJson)!.AsObject();
        if (_access.Read.Allows(new AccessContext(user, _routeValues, _body)))
        {
            return ChangeVisibility.Full;
        }

        // A MOVE is an update too: a record that just left the recipient's view is removed, like after a PUT.
        if (_change.Method is ChangeMethods.Put or ChangeMethods.Move && _change.PreviousJson is { } previousJson)
        {
            _previous ??= JsonNode.Parse(previousJson)!.AsObject();
            if (_access.Read.Allows(new AccessContext(user, _routeValues, _previous)))
            {
                return ChangeVisibility.Removal; // it was visible and no longer is
            }
        }

        return ChangeVisibility.Skip;
    }

    private enum ChangeVisibility
    {
        None,
        Full,
        Removal,
        Skip,
    }
}
