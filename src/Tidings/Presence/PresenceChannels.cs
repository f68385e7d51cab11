using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Tidings.Access;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Changes;

namespace Tidings.Presence;

/// <summary>
/// The Bayeux side of presence: owns <c>/tidings/presence/**</c>. A subscribe to <c>/tidings/presence</c> + a collection
/// path is allowed to those who may list the collection (as its own subscribe) and starts with
/// <c>{"method": "SNAPSHOT", "users", "anonymous"}</c>, then JOIN/LEAVE. Wildcards and publishes are refused: presence
/// channels are the server's.
/// </summary>
internal sealed class PresenceChannels(PresenceTracker tracker, IAuthorizationService? authorization = null) : IBayeuxChannelHandler
{
    public bool Owns(string channelOrPattern) =>
        channelOrPattern.StartsWith(PresenceTracker.ChannelPrefix + "/", StringComparison.Ordinal) || channelOrPattern == PresenceTracker.ChannelPrefix;

    public async ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken)
    {
        var pattern = context.Pattern;
        if (ChannelName.IsWildcard(pattern))
        {
            context.Refuse(BayeuxError.Format(400, pattern, "presence is watched one channel at a time: /tidings/presence + a collection path"));
            return;
        }

        if (tracker.Resolve(pattern) is not { } target)
        {
            context.Refuse(BayeuxError.Format(404, pattern, "no collection at this path"));
            return;
        }

        // A List policy is decided here, once; JOIN/LEAVE deliveries to this subscription reuse the decision.
        var list = target.Collection.Access.List;
        var asked = new AccessContext(context.Session.User, target.RouteValues) { Path = target.Path, Operation = TidingsOperations.List };
        var decisions = list.UsesPolicies ? await list.DecideAsync(asked, authorization) : PolicyDecisions.None;
        if (!list.Allows(asked.With(decisions)))
        {
            context.Refuse(BayeuxError.Format(403, pattern, "not allowed to see who watches this collection"));
            return;
        }

        if (list.UsesPolicies)
        {
            SubscribeDecisions.Remember(context.Session, pattern, decisions);
        }

        // Snapshot and activation under the tracker's lock: no JOIN or LEAVE falls between them, none comes twice.
        lock (tracker.Gate)
        {
            var now = tracker.Snapshot(pattern[PresenceTracker.ChannelPrefix.Length..]);
            var data = JsonSerializer.SerializeToUtf8Bytes(new PresenceSnapshotEvent("SNAPSHOT", now.Users, now.Anonymous),
                PresenceJson.Default.PresenceSnapshotEvent);
            context.Send(Delivery.CreateRaw(pattern, data));
            context.Activate();
        }
    }

    public ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken)
    {
        call.Fail(BayeuxError.Format(403, call.Channel, "presence channels are written by the server only"));
        return ValueTask.CompletedTask;
    }
}
