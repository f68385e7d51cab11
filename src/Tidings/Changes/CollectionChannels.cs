using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;
using Tidings.Collections;
using Tidings.Writes;

namespace Tidings.Changes;

/// <summary>
/// Connects collections to Bayeux: it owns every channel named after a collection path, so subscriptions there
/// go through <see cref="CatchUpSubscriptions"/> and publishes there are writes (<see cref="SocketWrites"/>).
/// </summary>
internal sealed class CollectionChannels(CollectionRegistry registry, CatchUpSubscriptions subscriptions, SocketWrites writes)
    : IBayeuxChannelHandler
{
    public bool Owns(string channelOrPattern) =>
        ChannelName.IsWildcard(channelOrPattern)
            ? registry.FindCovering(channelOrPattern) is not null
            : registry.Resolve(channelOrPattern) is not null;

    public ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken) =>
        subscriptions.SubscribeAsync(context, cancellationToken);

    public ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken) =>
        writes.PublishAsync(call, cancellationToken);
}
