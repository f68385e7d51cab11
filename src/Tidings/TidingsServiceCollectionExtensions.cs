using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Tidings.Bayeux;
using Tidings.Bayeux.Server;
using Tidings.Changes;
using Tidings.Collections;
using Tidings.Storage;
using Tidings.Writes;

namespace Tidings;

public static class TidingsServiceCollectionExtensions
{
    /// <summary>
    /// Registers Tidings (and its Bayeux server). Declare collections on the returned builder and choose a
    /// store (<c>.UseSqlite(path)</c>). Defaults use <c>TryAdd</c>; <paramref name="configure"/> runs last.
    /// </summary>
    public static TidingsBuilder AddTidings(this IServiceCollection services, Action<TidingsOptions>? configure = null)
    {
        var bayeux = services.AddBayeux();
        services.AddOptions<TidingsOptions>().BindConfiguration(TidingsOptions.SectionName);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        var registry = new CollectionRegistry();
        services.TryAddSingleton(registry);
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<TidingsOptions>>().Value);
        services.TryAddSingleton(sp => new CollectionWriter(sp.GetRequiredService<ITidingsStore>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<ChangeFeed>();
        services.AddHostedService<TidingsStartup>();
        return new TidingsBuilder(services, registry, bayeux);
    }
}

/// <summary>Declares collections and picks the store.</summary>
public sealed class TidingsBuilder
{
    private readonly CollectionRegistry _registry;

    internal TidingsBuilder(IServiceCollection services, CollectionRegistry registry, BayeuxBuilder bayeux)
    {
        Services = services;
        _registry = registry;
        Bayeux = bayeux;
    }

    public IServiceCollection Services { get; }
    public BayeuxBuilder Bayeux { get; }

    /// <summary>Declares a collection at <paramref name="routeTemplate"/>, e.g. <c>/api/flows/{flow}/messages</c>.</summary>
    public TidingsBuilder AddCollection(string routeTemplate, Action<CollectionBuilder> configure)
    {
        var builder = new CollectionBuilder(routeTemplate);
        configure(builder);
        _registry.Add(builder.Build());
        return this;
    }
}

/// <summary>Opens the store before the server takes requests and connects the change feed to Bayeux.</summary>
internal sealed class TidingsStartup(ITidingsStore store, ChangeFeed feed, BayeuxServer bayeux) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        bayeux.AddChannelHandler(feed);
        await store.InitializeAsync(feed, cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await store.DisposeAsync();
}
