using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Tidings.Storage;

namespace Tidings.Sqlite;

public static class SqliteTidingsBuilderExtensions
{
    /// <summary>Stores collections in one SQLite file (created on first run), e.g. <c>data/tidings.db</c>.</summary>
    public static TidingsBuilder UseSqlite(this TidingsBuilder builder, string path, Action<SqliteStoreOptions>? configure = null)
    {
        builder.Services.TryAddSingleton<ITidingsStore>(sp =>
        {
            var options = new SqliteStoreOptions { Path = path };
            configure?.Invoke(options);
            return new SqliteStore(options, sp.GetRequiredService<TimeProvider>(), sp.GetService<Microsoft.Extensions.Logging.ILogger<SqliteStore>>());
        });
        return builder;
    }
}
