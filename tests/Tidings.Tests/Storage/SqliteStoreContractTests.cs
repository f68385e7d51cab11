using Tidings.Sqlite;
using Tidings.Storage;
using Tidings.Tests.Support;

namespace Tidings.Tests.Storage;

/// <summary>The store contract against the embedded SQLite store, one temp folder per test.</summary>
public sealed class SqliteStoreContractTests : StoreContract
{
    private readonly TempDirectory _folder = new();

    protected override Task<ITidingsStore> CreateStoreAsync(string database, int retainedChanges) =>
        Task.FromResult<ITidingsStore>(new SqliteStore(
            new SqliteStoreOptions { Path = _folder.File(database + ".db"), RetainedChanges = retainedChanges },
            TimeProvider.System));

    protected override Task DeleteDatabasesAsync()
    {
        _folder.Dispose();
        return Task.CompletedTask;
    }
}
