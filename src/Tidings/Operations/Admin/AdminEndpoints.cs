using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Bayeux.Server;
using Tidings.Http;
using Tidings.Identity;

namespace Tidings.Operations.Admin;

/// <summary>
/// The operators' admin page and its JSON: <c>GET /tidings/admin</c> (the page, with its script and style beside it),
/// <c>GET /tidings/admin/stats</c>, <c>GET /tidings/admin/sessions</c> and
/// <c>POST /tidings/admin/sessions/{id}/disconnect</c>. Admins only: 401 signed out, 403 for everyone else.
/// </summary>
public static class AdminEndpointRouteBuilderExtensions
{
    /// <summary>The most sessions <c>GET /tidings/admin/sessions</c> lists (its <c>count</c> is of all of them).</summary>
    public const int MaxListedSessions = 500;

    /// <summary>
    /// Maps the admin page at <c>/tidings/admin</c>: live figures over the app's own Bayeux (charts of the last minutes),
    /// a session inspector that can disconnect a session, and the same figures as JSON. Call beside <c>MapTidings()</c>.
    /// </summary>
    public static void MapTidingsAdmin(this IEndpointRouteBuilder endpoints)
    {
        var services = endpoints.ServiceProvider;
        var sampler = services.GetService<AdminSampler>()
            ?? throw new InvalidOperationException("Unable to find the Tidings services. Call 'builder.Services.AddTidings()' first.");
        services.GetRequiredService<BayeuxServer>().AddChannelHandler(new AdminChannels(sampler));

        var page = Asset("admin.html").Replace("{{bayeux}}", services.GetRequiredService<TidingsOptions>().BayeuxPath, StringComparison.Ordinal);
        endpoints.MapGet("/tidings/admin", context => ServeAsync(context, page, "text/html; charset=utf-8")).ExcludeFromDescription();
        var script = Asset("admin.js");
        endpoints.MapGet("/tidings/admin/admin.js", context => ServeAsync(context, script, "text/javascript; charset=utf-8")).ExcludeFromDescription();
        var style = Asset("admin.css");
        endpoints.MapGet("/tidings/admin/admin.css", context => ServeAsync(context, style, "text/css; charset=utf-8")).ExcludeFromDescription();
        endpoints.MapGet("/tidings/admin/stats", StatsAsync).ExcludeFromDescription();
        endpoints.MapGet("/tidings/admin/sessions", SessionsAsync).ExcludeFromDescription();
        endpoints.MapPost("/tidings/admin/sessions/{id}/disconnect", DisconnectAsync).ExcludeFromDescription();
    }

    private static async Task ServeAsync(HttpContext context, string text, string contentType)
    {
        if (!await AdminAccess.RequireAsync(context))
        {
            return;
        }

        context.Response.ContentType = contentType;
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(text, context.RequestAborted);
    }

    private static async Task StatsAsync(HttpContext context)
    {
        if (!await AdminAccess.RequireAsync(context))
        {
            return;
        }

        var stats = await context.RequestServices.GetRequiredService<AdminSampler>().CurrentAsync(context.RequestAborted);
        context.Response.Headers.CacheControl = "no-store";
        await Results.Json(stats, AdminJson.Default.AdminStats).ExecuteAsync(context);
    }

    private static async Task SessionsAsync(HttpContext context)
    {
        if (!await AdminAccess.RequireAsync(context))
        {
            return;
        }

        var bayeux = context.RequestServices.GetRequiredService<BayeuxServer>();
        var now = bayeux.Time.GetTimestamp();
        var sessions = bayeux.Sessions.ToList(); // a moment's copy: the listing must not chase a changing table
        var listed = sessions.OrderBy(s => s.StartedAt).Take(MaxListedSessions).Select(s => new SessionInfo(
            s.Id,
            s.User?.Identity?.IsAuthenticated == true ? s.User.Identity.Name : null,
            s.HasSocket ? "websocket" : "long-polling",
            s.RemoteAddress.ToString(),
            s.Subscriptions,
            s.QueuedBytes,
            Math.Round(bayeux.Time.GetElapsedTime(s.StartedAt, now).TotalSeconds, 1))).ToList();
        context.Response.Headers.CacheControl = "no-store";
        await Results.Json(new SessionList(sessions.Count, listed), AdminJson.Default.SessionList).ExecuteAsync(context);
    }

    private static async Task DisconnectAsync(HttpContext context, string id)
    {
        if (!await AdminAccess.RequireAsync(context)
            || await RequestChecks.RefuseCrossSiteAsync(context, context.RequestServices.GetRequiredService<OriginPolicy>()))
        {
            return;
        }

        var bayeux = context.RequestServices.GetRequiredService<BayeuxServer>();
        if (!bayeux.TryGetSession(id, out var session))
        {
            await Problems.Write(context, StatusCodes.Status404NotFound, "No such session", "No live session has this id on this node.");
            return;
        }

        // Evicted, not Disconnected (which tells a client to stop): its held connect is answered with "handshake again",
        // and any later request with its id gets 401 unknown client, so a stock client comes back as a new session.
        bayeux.CloseSession(session, SessionCloseReason.Evicted);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private static string Asset(string name)
    {
        using var stream = typeof(AdminEndpointRouteBuilderExtensions).Assembly.GetManifestResourceStream("Tidings.Admin." + name)
            ?? throw new InvalidOperationException($"The admin page's {name} is missing from the Tidings assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
