using Tidings.Postgres;
using Tidings.Storage;
using Tidings.Tests.Support;

namespace Tidings.Tests.Storage;

/// <summary>The store contract, unchanged, against PostgreSQL: one database per test on the run's own server.</summary>
public sealed class PostgresStoreContractTests : StoreContract
{
    private readonly Dictionary<string, string> _databases = [];

    protected override async Task<ITidingsStore> CreateStoreAsync(string database, int retainedChanges)
    {
        if (!_databases.TryGetValue(database, out var connectionString))
        {
            _databases[database] = connectionString = await PostgresServer.Instance.CreateDatabaseAsync();
        }

        return new PostgresStore(new PostgresStoreOptions { ConnectionString = connectionString, RetainedChanges = retainedChanges }, TimeProvider.System);
    }
}
