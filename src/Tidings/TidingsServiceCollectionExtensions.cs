using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Tidings.Bayeux;
using Tidings.Bayeux.Server;
using Tidings.Changes;
using Tidings.Collections;
using Tidings.Http;
using Tidings.Identity;
using Tidings.Jobs;
using Tidings.Storage;
using Tidings.Writes;

namespace Tidings;

public static class TidingsServiceCollectionExtensions
{
    /// <summary>
    /// Registers Tidings (and its Bayeux server). Declare collections on the returned builder and choose a
    /// store (<c>.UseSqlite(path)</c>). Defaults use <c>TryAdd</c>; <paramref name="configure"/> runs last.
    /// Calling it again returns a builder over the same collections (and applies <paramref name="configure"/> too).
    /// </summary>
    public static TidingsBuilder AddTidings(this IServiceCollection services, Action<TidingsOptions>? configure = null)
    {
        var bayeux = services.AddBayeux();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        // One registry per app: a second call must add to it, not declare collections nobody would ever serve.
        if (services.FirstOrDefault(d => d.ServiceType == typeof(CollectionRegistry))?.ImplementationInstance is CollectionRegistry existing)
        {
            var existingQueues = (QueueRegistry)services.First(d => d.ServiceType == typeof(QueueRegistry)).ImplementationInstance!;
            return new TidingsBuilder(services, existing, existingQueues, bayeux);
        }

        services.AddOptions<TidingsOptions>().BindConfiguration(TidingsOptions.SectionName);
        var registry = new CollectionRegistry();
        services.AddSingleton(registry);
        var queues = new QueueRegistry();
        services.AddSingleton(queues);
        services.TryAddSingleton<JobService>();
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<TidingsOptions>>().Value);
        services.TryAddSingleton(sp => new CollectionWriter(sp.GetRequiredService<ITidingsStore>(), sp.GetRequiredService<TimeProvider>(), registry,
            sp.GetService<IAuthorizationService>()));

        // The change stream: the store's source (replaceable, e.g. by a test that reorders it), one feed, one publisher.
        services.TryAddSingleton(sp => sp.GetRequiredService<ITidingsStore>().Changes);
        services.TryAddSingleton<ChangeFeed>();
        services.TryAddSingleton<ChangePublisher>();
        services.TryAddSingleton<CatchUpSubscriptions>();
        services.TryAddSingleton<SocketWrites>();
        services.TryAddSingleton<CollectionChannels>();
        services.TryAddSingleton<Tidings.Presence.PresenceTracker>();
        services.TryAddSingleton<Tidings.Presence.PresenceChannels>();
        services.TryAddSingleton<OriginPolicy>();
        services.TryAddSingleton<Tidings.Operations.Admin.AdminSampler>(); // idle until someone watches (MapTidingsAdmin)
        services.AddHostedService<TidingsStartup>();
        services.AddHostedService<JobRunner>(); // after the store is open
        bayeux.AddExtension<BayeuxHandshakeLimitExtension>();
        bayeux.AddExtension<BayeuxRateLimitExtension>();
        AddRestRateLimit(services);
        return new TidingsBuilder(services, registry, queues, bayeux);
    }

    /// <summary>The name of the REST rate-limit policy every collection endpoint requires.</summary>
    public const string RateLimitPolicy = "tidings";

    // Per user when signed in, per client address otherwise; 429 problem+json beyond it.
    private static void AddRestRateLimit(IServiceCollection services) =>
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.OnRejected = (context, _) => new ValueTask(Problems.Write(context.HttpContext, StatusCodes.Status429TooManyRequests,
                "Too many requests", "Slow down and retry shortly (Tidings:RequestsPerSecond)."));
            limiter.AddPolicy(RateLimitPolicy, http =>
            {
                var options = http.RequestServices.GetRequiredService<TidingsOptions>();
                var key = http.User.Identity?.IsAuthenticated == true
                    ? "user:" + http.User.Identity.Name
                    : "ip:" + http.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.RequestBurst,
                    TokensPerPeriod = options.RequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
        });
}

/// <summary>Declares collections and picks the store.</summary>
public sealed class TidingsBuilder
{
    private readonly CollectionRegistry _registry;
    private readonly QueueRegistry _queues;

    internal TidingsBuilder(IServiceCollection services, CollectionRegistry registry, QueueRegistry queues, BayeuxBuilder bayeux)
    {
        Services = services;
        _registry = registry;
        _queues = queues;
        Bayeux = bayeux;
    }

    public IServiceCollection Services { get; }
    public BayeuxBuilder Bayeux { get; }

    /// <summary>
    /// Signs users in: a cookie (for browsers) or a bearer token (<c>Authorization</c>, or <c>ext.token</c> in a Bayeux
    /// handshake) issued by <see cref="TidingsTokens"/>. Settings come from <c>Tidings:Identity</c>.
    /// </summary>
    public TidingsBuilder AddIdentity(Action<TidingsIdentityOptions>? configure = null)
    {
        Services.AddOptions<TidingsIdentityOptions>().BindConfiguration(TidingsIdentityOptions.SectionName);
        if (configure is not null)
        {
            Services.Configure(configure);
        }

        Services.TryAddSingleton<TidingsTokens>();
        Services.AddAuthentication(TidingsIdentityOptions.PolicyScheme)
            .AddPolicyScheme(TidingsIdentityOptions.PolicyScheme, "Cookie or bearer token", policy =>
                policy.ForwardDefaultSelector = http => http.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                    ? TidingsIdentityOptions.BearerScheme
                    : TidingsIdentityOptions.CookieScheme)
            .AddCookie(TidingsIdentityOptions.CookieScheme, cookie =>
            {
                cookie.Cookie.Name = "tidings";
                cookie.Cookie.HttpOnly = true;
                cookie.Cookie.SameSite = SameSiteMode.Lax;
                cookie.SlidingExpiration = true;
                cookie.Events.OnRedirectToLogin = c =>
                {
                    c.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    return Task.CompletedTask;
                };
            })
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(TidingsIdentityOptions.BearerScheme, null);
        Bayeux.AddExtension<BayeuxIdentityExtension>();
        return this;
    }

    /// <summary>
    /// Declares a durable job queue. Its jobs are live records at <c>/api/queues/{name}/jobs</c> (every state change an
    /// event); REST enqueues, cancels, re-drives and lets external workers claim and finish them; an in-process worker
    /// (<c>.Worker&lt;TWorker, TPayload&gt;()</c>) runs them here.
    /// </summary>
    public TidingsBuilder AddQueue(string name, Action<QueueBuilder> configure)
    {
        var builder = new QueueBuilder(name);
        configure(builder);
        var queue = builder.Build();
        _queues.Add(queue);
        _registry.Add(QueueBuilder.JobsCollection(queue));
        if (queue.WorkerType is { } worker)
        {
            Services.TryAddScoped(worker);
        }

        return this;
    }

    /// <summary>Declares a collection at <paramref name="routeTemplate"/>, e.g. <c>/api/flows/{flow}/messages</c>.</summary>
    public TidingsBuilder AddCollection(string routeTemplate, Action<CollectionBuilder> configure)
    {
        var builder = new CollectionBuilder(routeTemplate);
        configure(builder);
        _registry.Add(builder.Build());
        return this;
    }
}

/// <summary>
/// Opens the store and starts publishing its changes before the server takes requests; connects collection
/// channels to Bayeux. On the way out, stops the publisher, then closes the store.
/// </summary>
internal sealed class TidingsStartup(ITidingsStore store, ChangePublisher publisher, CollectionChannels channels, BayeuxServer bayeux,
    Tidings.Presence.PresenceTracker presence, Tidings.Presence.PresenceChannels presenceChannels)
    : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        bayeux.AddChannelHandler(channels);
        bayeux.AddChannelHandler(presenceChannels);
        presence.Start();
        await store.InitializeAsync(cancellationToken);
        publisher.Start();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await publisher.StopAsync();
        await store.DisposeAsync();
    }
}
