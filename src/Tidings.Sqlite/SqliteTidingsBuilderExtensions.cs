using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Tidings.Storage;

namespace Tidings.Sqlite;

public static class SqliteTidingsBuilderExtensions
{
    /// <summary>
    /// Stores collections in one SQLite file (created on first run), e.g. <c>data/tidings.db</c>. Settings come
    /// from the <c>Tidings:Sqlite</c> configuration section (e.g. <c>--Tidings:Sqlite:RetainedChanges=500</c>),
    /// then <paramref name="configure"/>.
    /// </summary>
    public static TidingsBuilder UseSqlite(this TidingsBuilder builder, string path, Action<SqliteStoreOptions>? configure = null)
    {
        builder.Services.TryAddSingleton<ITidingsStore>(sp =>
        {
            var options = new SqliteStoreOptions { Path = path };
            sp.GetService<IConfiguration>()?.GetSection("Tidings:Sqlite").Bind(options);
            options.Path = path;
            configure?.Invoke(options);
            return new SqliteStore(options, sp.GetRequiredService<TimeProvider>(), sp.GetService<Microsoft.Extensions.Logging.ILogger<SqliteStore>>(),
                sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        return builder;
    }
}
