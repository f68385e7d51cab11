using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Tidings.Bayeux.Server;

namespace Tidings.Bayeux;

public static class BayeuxServiceCollectionExtensions
{
    /// <summary>
    /// Registers the Bayeux server. Defaults are registered with <c>TryAdd</c> so an application can
    /// replace them (a fake <see cref="TimeProvider"/> in tests, say); <paramref name="configure"/> runs last.
    /// </summary>
    public static BayeuxBuilder AddBayeux(this IServiceCollection services, Action<BayeuxOptions>? configure = null)
    {
        services.AddOptions<BayeuxOptions>().BindConfiguration(BayeuxOptions.SectionName);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<BayeuxServer>();
        return new BayeuxBuilder(services);
    }
}

/// <summary>Further Bayeux configuration: extensions and service-channel handlers.</summary>
public sealed class BayeuxBuilder(IServiceCollection services)
{
    public IServiceCollection Services { get; } = services;

    /// <summary>Adds an extension; extensions run in the order they are added.</summary>
    public BayeuxBuilder AddExtension<TExtension>() where TExtension : class, IBayeuxExtension
    {
        Services.AddSingleton<IBayeuxExtension, TExtension>();
        return this;
    }

    public BayeuxBuilder AddExtension(IBayeuxExtension extension)
    {
        Services.AddSingleton(extension);
        return this;
    }
}
