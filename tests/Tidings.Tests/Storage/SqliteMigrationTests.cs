using Microsoft.Data.Sqlite;
using Tidings.Sqlite;
using Tidings.Storage;
using Tidings.Tests.Support;

namespace Tidings.Tests.Storage;

/// <summary>A database file made before sorted collections opens, gains their columns once, and keeps its data.</summary>
public sealed class SqliteMigrationTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_file_without_the_position_columns_is_migrated_once_and_keeps_its_records_and_log()
    {
        var path = _folder.File("old.db");
        using (var connection = new SqliteConnection($"Data Source={path}"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            // The layout as it shipped before sorted collections (records without rank, changes without after).
            command.CommandText = """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE records (pos INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, id TEXT NOT NULL,
                    version INTEGER NOT NULL, json TEXT NOT NULL, UNIQUE (path, id));
                CREATE TABLE channels (path TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE changes (path TEXT NOT NULL, seq INTEGER NOT NULL, method TEXT NOT NULL, body TEXT NOT NULL,
                    at INTEGER NOT NULL, previous TEXT, PRIMARY KEY (path, seq)) WITHOUT ROWID;
                INSERT INTO meta VALUES ('epoch', 'old-epoch');
                INSERT INTO records (path, id, version, json) VALUES ('/api/todos', 'r1', 1, '{"id":"r1","version":1}');
                INSERT INTO channels VALUES ('/api/todos', 1);
                INSERT INTO changes VALUES ('/api/todos', 1, 'POST', '{"id":"r1","version":1}', CAST(strftime('%s', 'now') AS INTEGER) * 1000, NULL);
                """;
            command.ExecuteNonQuery();
        }

        SqliteConnection.ClearAllPools();
        for (var open = 0; open < 2; open++) // the second start finds the columns there and changes nothing
        {
            var store = new SqliteStore(new SqliteStoreOptions { Path = path }, TimeProvider.System);
            try
            {
                await store.InitializeAsync(CancellationToken.None);
                var (records, changes, epoch) = await store.ReadAsync(r => (r.List("/api/todos", 10), r.ChangesSince("/api/todos", 0, 1, 10), r.Epoch),
                    CancellationToken.None);
                Assert.Equal("old-epoch", epoch);
                Assert.Equal(open == 0 ? ["r1"] : ["r1", "p0"], records.Select(r => r.Id)); // no position: first
                Assert.Null(records[0].Position);
                Assert.Null(Assert.Single(changes).After);

                await store.WriteAsync(w =>
                {
                    w.Put("/api/todos", new StoredRecord($"p{open}", 1, $$"""{"id":"p{{open}}"}""", "V"));
                    return w.Append("/api/todos", ChangeMethods.Move, $$"""{"id":"p{{open}}"}""", null, "r1");
                }, CancellationToken.None);
                Assert.Equal("p0", (await store.ReadAsync(r => r.NeighborPosition("/api/todos", null, after: true, null), CancellationToken.None))!.Id);
            }
            finally
            {
                await store.DisposeAsync();
            }
        }
    }
}
