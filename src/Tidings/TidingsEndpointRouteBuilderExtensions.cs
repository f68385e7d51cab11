using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Bayeux;
using Tidings.Collections;
using Tidings.Http;
using Tidings.Storage;

namespace Tidings;

public static class TidingsEndpointRouteBuilderExtensions
{
    /// <summary>Maps every declared collection's REST endpoints and the Bayeux endpoint their events go out on.</summary>
    public static IEndpointConventionBuilder MapTidings(this IEndpointRouteBuilder endpoints)
    {
        var services = endpoints.ServiceProvider;
        var registry = services.GetService<CollectionRegistry>()
            ?? throw new InvalidOperationException("Unable to find the Tidings services. Call 'builder.Services.AddTidings()' first.");
        if (services.GetService<ITidingsStore>() is null)
        {
            throw new InvalidOperationException(
                "No Tidings store is registered. Call '.UseSqlite(path)' on the builder that AddTidings() returns.");
        }

        // Every collection endpoint requires the "tidings" rate-limit policy, which only the rate-limiting middleware
        // enforces. MapTidings adds it when it can; where it cannot, RequireRateLimiting would silently do nothing.
        if (endpoints is IApplicationBuilder app)
        {
            app.UseRateLimiter();

            // A store that cannot be reached is a 503 the client may retry, not a 500.
            app.Use(async (context, next) =>
            {
                try
                {
                    await next(context);
                }
                catch (StoreUnavailableException) when (!context.Response.HasStarted)
                {
                    context.Response.Clear();
                    context.Response.Headers.RetryAfter = "2";
                    await Problems.Write(context, StatusCodes.Status503ServiceUnavailable, "Store unavailable",
                        "The database cannot be reached right now; nothing was changed. Try again shortly.");
                }
            });
        }
        else
        {
            throw new InvalidOperationException(
                "Call MapTidings on the WebApplication (app.MapTidings()): its endpoints rely on the rate-limiting middleware " +
                "it adds there, which it cannot add from a route group.");
        }

        EnsurePoliciesExist(services, registry);
        foreach (var collection in registry.Collections)
        {
            CollectionEndpoints.Map(endpoints, collection);
        }

        if (services.GetRequiredService<Jobs.QueueRegistry>().Queues.Count > 0)
        {
            Jobs.JobEndpoints.Map(endpoints);
        }

        var options = services.GetRequiredService<TidingsOptions>();
        Tidings.Presence.PresenceEndpoints.Map(endpoints);
        endpoints.MapGet(options.SchemaPath, () => Results.Json(SchemaExport.Describe(registry)));
        return endpoints.MapBayeux(options.BayeuxPath);
    }

    /// <summary>
    /// A rule naming a policy the app never registered would fail every request it guards (ASP.NET Core throws):
    /// say so at start-up instead, naming the collection or queue and the policy.
    /// </summary>
    private static void EnsurePoliciesExist(IServiceProvider services, CollectionRegistry registry)
    {
        var rules = registry.Collections.SelectMany(c => new[] { c.Access.List, c.Access.Read, c.Access.Create, c.Access.Update, c.Access.Delete }
                .Select(rule => (Where: $"Collection '{c.Route.Template}'", Rule: rule)))
            .Concat(services.GetRequiredService<Jobs.QueueRegistry>().Queues.SelectMany(q =>
                new[] { q.Access.List, q.Access.Read, q.Access.Enqueue, q.Access.Cancel, q.Access.Work }.Select(rule => (Where: $"Queue '{q.Name}'", Rule: rule))));
        foreach (var (where, rule) in rules.Where(r => r.Rule.UsesPolicies))
        {
            // Tidings does not register authorization itself (that would add its middleware to every app): whoever uses policies has.
            if (services.GetService<IAuthorizationService>() is null || services.GetService<IAuthorizationPolicyProvider>() is not { } provider)
            {
                throw new InvalidOperationException(
                    $"{where}: the access rule '{rule.Description}' uses ASP.NET Core authorization, which is not registered. " +
                    "Call builder.Services.AddAuthorization(...) and add the policies it names.");
            }

            foreach (var name in rule.Policies.Select(p => p.PolicyName).OfType<string>())
            {
                // The default provider answers synchronously; a custom one is asked once here, at start-up.
                if (provider.GetPolicyAsync(name).GetAwaiter().GetResult() is null)
                {
                    throw new InvalidOperationException(
                        $"{where}: the access rule '{rule.Description}' names the authorization policy '{name}', which is not registered. " +
                        $"Add it with builder.Services.AddAuthorization(o => o.AddPolicy(\"{name}\", p => ...)).");
                }
            }
        }
    }
}
