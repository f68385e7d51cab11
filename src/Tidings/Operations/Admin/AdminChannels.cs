using System.Text.Json;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Operations.Admin;

/// <summary>
/// The Bayeux side of the admin page: owns <c>/tidings/admin/**</c>. Only <see cref="AdminSampler.Channel"/> may be
/// subscribed, by an admin (401 signed out, 403 otherwise); the subscriber first gets the kept history alone
/// (<c>{"method": "HISTORY", "history": [...]}</c>), then <c>{"method": "SAMPLE", "sample": {...}}</c> once a second.
/// Samples carry a filter that admits these subscribers only, so a <c>/**</c> subscriber never sees them.
/// </summary>
internal sealed class AdminChannels(AdminSampler sampler) : IBayeuxChannelHandler
{
    private const string Prefix = "/tidings/admin";

    public bool Owns(string channelOrPattern) =>
        channelOrPattern == Prefix || channelOrPattern.StartsWith(Prefix + "/", StringComparison.Ordinal);

    public async ValueTask SubscribeAsync(BayeuxSubscribeContext context, CancellationToken cancellationToken)
    {
        if (context.Pattern != AdminSampler.Channel)
        {
            context.Refuse(BayeuxError.Format(404, context.Pattern, $"the admin page's channel is {AdminSampler.Channel}"));
            return;
        }

        var user = context.Session.User;
        if (user?.Identity?.IsAuthenticated != true)
        {
            context.Refuse(BayeuxError.Format(401, context.Pattern, "sign in as an admin to watch the server's figures"));
            return;
        }

        if (!await AdminAccess.IsAdminAsync(context.HttpContext.RequestServices, user, context.HttpContext))
        {
            context.Refuse(BayeuxError.Format(403, context.Pattern, "only admins may watch the server's figures (Tidings:Admins)"));
            return;
        }

        var history = JsonSerializer.SerializeToUtf8Bytes(new AdminStatsEvent("HISTORY", History: sampler.History()), AdminJson.Default.AdminStatsEvent);
        context.Send(Delivery.CreateRaw(AdminSampler.Channel, history));
        context.Activate();
        sampler.Watch(context.Session);
    }

    public ValueTask PublishAsync(BayeuxServiceCall call, CancellationToken cancellationToken)
    {
        call.Fail(BayeuxError.Format(403, call.Channel, "admin channels are written by the server only"));
        return ValueTask.CompletedTask;
    }
}
