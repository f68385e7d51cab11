using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Tidings.Storage;

namespace Tidings.Postgres;

public static class PostgresTidingsBuilderExtensions
{
    /// <summary>
    /// Stores collections in PostgreSQL (13 or later), so several Tidings nodes can share one database. The schema is
    /// created or migrated at start-up. Settings come from the <c>Tidings:Postgres</c> configuration section
    /// (e.g. <c>--Tidings:Postgres:PollInterval=00:00:00.050</c>), then <paramref name="configure"/>. Plain Bayeux
    /// publishes reach the subscribers of every node; name each node (<c>Bayeux:NodeId</c>) to route long-polling.
    /// </summary>
    public static TidingsBuilder UsePostgres(this TidingsBuilder builder, string connectionString, Action<PostgresStoreOptions>? configure = null)
    {
        builder.Services.TryAddSingleton<ITidingsStore>(sp =>
        {
            var options = new PostgresStoreOptions { ConnectionString = connectionString };
            sp.GetService<IConfiguration>()?.GetSection("Tidings:Postgres").Bind(options);
            options.ConnectionString = connectionString;
            configure?.Invoke(options);
            return new PostgresStore(options, sp.GetRequiredService<TimeProvider>(), sp.GetService<Microsoft.Extensions.Logging.ILogger<PostgresStore>>());
        });

        // Plain Bayeux publishes cross the nodes through the same database (started after the store is open).
        builder.Services.TryAddSingleton<PostgresBroker>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresBroker>());

        // Presence is shared through the database too: each node's counts and heartbeat (started after the store).
        builder.Services.TryAddSingleton<PostgresPresence>();
        builder.Services.AddSingleton<Tidings.Presence.IPresenceShare>(sp => sp.GetRequiredService<PostgresPresence>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresPresence>());
        return builder;
    }
}
