using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Http;

namespace Tidings.Presence;

/// <summary><c>GET /tidings/presence?channel=/api/flows/main/messages</c>: who watches a collection now, for those who may list it.</summary>
internal static class PresenceEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet(PresenceTracker.ChannelPrefix, async (HttpContext context) =>
        {
            var tracker = context.RequestServices.GetRequiredService<PresenceTracker>();
            var channel = context.Request.Query["channel"].ToString();
            if (channel.Length == 0 || !channel.StartsWith('/'))
            {
                await Problems.Write(context, StatusCodes.Status400BadRequest, "Bad request",
                    "Name the collection channel: ?channel=/api/flows/main/messages");
                return;
            }

            if (tracker.Resolve(PresenceTracker.ChannelPrefix + channel) is not { } target)
            {
                await Problems.NotFound(context);
                return;
            }

            var asked = new AccessContext(context.User, target.RouteValues) { Path = target.Path, Operation = TidingsOperations.List };
            if (!await target.Collection.Access.List.AllowsAsync(asked, context.RequestServices.GetService<IAuthorizationService>()))
            {
                await Problems.Refused(context);
                return;
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(tracker.Snapshot(channel), PresenceJson.Default.PresenceSnapshot));
        });
}
