using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Tidings.Client;

public static class TidingsClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="TidingsClient"/> (a singleton, disposed with the container) for <paramref name="server"/>.
    /// The app's <see cref="ILoggerFactory"/> is used unless <paramref name="configure"/> sets another.
    /// </summary>
    public static IServiceCollection AddTidingsClient(this IServiceCollection services, Uri server, Action<TidingsClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(server);
        services.TryAddSingleton(provider =>
        {
            var options = new TidingsClientOptions { LoggerFactory = provider.GetService<ILoggerFactory>() };
            configure?.Invoke(options);
            return new TidingsClient(server, options);
        });
        return services;
    }

    /// <summary>Registers a <see cref="TidingsClient"/> whose address and options come from <paramref name="configure"/> and the container.</summary>
    public static IServiceCollection AddTidingsClient(this IServiceCollection services, Func<IServiceProvider, (Uri Server, TidingsClientOptions Options)> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.TryAddSingleton(provider =>
        {
            var (server, options) = configure(provider);
            options.LoggerFactory ??= provider.GetService<ILoggerFactory>();
            return new TidingsClient(server, options);
        });
        return services;
    }
}
