using System.Text.Json;
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
        endpoints.MapGet(PresenceTracker.ChannelPrefix, (HttpContext context) =>
        {
            var tracker = context.RequestServices.GetRequiredService<PresenceTracker>();
            var channel = context.Request.Query["channel"].ToString();
            if (channel.Length == 0 || !channel.StartsWith('/'))
            {
                return Problems.Write(context, StatusCodes.Status400BadRequest, "Bad request",
                    "Name the collection channel: ?channel=/api/flows/main/messages");
            }

            if (tracker.Resolve(PresenceTracker.ChannelPrefix + channel) is not { } target)
            {
                return Problems.NotFound(context);
            }

            if (!target.Collection.Access.List.Allows(new AccessContext(context.User, target.RouteValues)))
            {
                return Problems.Refused(context);
            }

            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(JsonSerializer.Serialize(tracker.Snapshot(channel), PresenceJson.Default.PresenceSnapshot));
        });
}
