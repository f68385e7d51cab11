using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tidings.Bayeux.Server;
using Tidings.Bayeux.Transports;

namespace Tidings.Bayeux;

public static class BayeuxEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves Bayeux at <paramref name="pattern"/> and every path below it (CometD's long-polling posts to
    /// <c>/bayeux/handshake</c>, <c>/bayeux/connect</c>, …).
    /// </summary>
    public static IEndpointConventionBuilder MapBayeux(this IEndpointRouteBuilder endpoints, string pattern = "/bayeux")
    {
        var server = endpoints.ServiceProvider.GetService<BayeuxServer>()
            ?? throw new InvalidOperationException(
                "Unable to find the Bayeux services. Call 'builder.Services.AddBayeux()' (or AddTidings()) before mapping the endpoint.");

        if (endpoints is IApplicationBuilder app)
        {
            // WebSocket upgrades need the middleware ahead of endpoint execution; keep-alive is set per accept.
            app.UseWebSockets();
        }

        // Answer held connects and close sockets as soon as the host starts stopping; otherwise shutdown waits
        // for every open long-poll and WebSocket request to time out.
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(server.Shutdown);

        var handler = new BayeuxHttpHandler(server);
        var group = endpoints.MapGroup(pattern);
        string[] methods = [HttpMethods.Get, HttpMethods.Post, HttpMethods.Options];
        group.MapMethods("/", methods, handler.HandleAsync);
        group.MapMethods("/{**path}", methods, handler.HandleAsync);
        return group;
    }
}
