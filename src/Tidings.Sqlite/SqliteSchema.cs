using Microsoft.Data.Sqlite;

namespace Tidings.Sqlite;

/// <summary>The database layout. One file holds records, per-channel sequences and the change log.</summary>
internal static class SqliteSchema
{
    // FULL sync: a commit is on disk before any writer is told it succeeded (a 2xx means durable).
    public const string Pragmas = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = FULL;
        PRAGMA foreign_keys = ON;
        PRAGMA busy_timeout = 5000;
        """;

    public const string Create = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS records (
            pos     INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order for listings
            path    TEXT NOT NULL,
            id      TEXT NOT NULL,
            version INTEGER NOT NULL,
            json    TEXT NOT NULL,
            rank    TEXT,                               -- position key in a sorted collection (see Migrate)
            UNIQUE (path, id)
        );
        CREATE TABLE IF NOT EXISTS channels (
            path TEXT PRIMARY KEY,
            seq  INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS changes (
            path   TEXT NOT NULL,
            seq    INTEGER NOT NULL,
            method TEXT NOT NULL,
            body   TEXT NOT NULL,
            at     INTEGER NOT NULL,  -- unix milliseconds
            previous TEXT,            -- the record before an update (authorization of removals)
            after  TEXT,              -- MOVE: the id the record now follows (see Migrate)
            PRIMARY KEY (path, seq)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS changes_at ON changes (at);
        CREATE TABLE IF NOT EXISTS jobs (
            queue       TEXT NOT NULL,
            id          TEXT NOT NULL,
            state       TEXT NOT NULL,
            priority    INTEGER NOT NULL,
            run_at      INTEGER NOT NULL,   -- unix milliseconds
            key         TEXT,
            lease       TEXT,
            lease_until INTEGER NOT NULL,
            finished_at INTEGER NOT NULL,
            PRIMARY KEY (queue, id)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS jobs_due ON jobs (queue, state, priority DESC, run_at);
        CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (state, lease_until);
        CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at) WHERE finished_at > 0;
        CREATE INDEX IF NOT EXISTS jobs_key ON jobs (queue, key) WHERE key IS NOT NULL;
        CREATE TABLE IF NOT EXISTS job_schedules (name TEXT PRIMARY KEY, due INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_path ON records (path, pos);
        """;

    /// <summary>
    /// Brings a database file made by an earlier version up to this layout; idempotent (CREATE TABLE IF NOT EXISTS leaves
    /// an existing table as it was, so a column added later is added here when it is missing).
    /// </summary>
    public static void Migrate(SqliteConnection connection)
    {
        AddColumnIfMissing(connection, "records", "rank", "TEXT");
        AddColumnIfMissing(connection, "changes", "after", "TEXT");
        SqliteStore.Execute(connection, "CREATE INDEX IF NOT EXISTS records_rank ON records (path, rank, pos);");
    }

    private static void AddColumnIfMissing(SqliteConnection connection, string table, string column, string type)
    {
        using var check = connection.CreateCommand();
        check.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = '{column}';";
        if ((long)check.ExecuteScalar()! == 0)
        {
            SqliteStore.Execute(connection, $"ALTER TABLE {table} ADD COLUMN {column} {type};");
        }
    }

    /// <summary>Reads the log's epoch, creating it with the database: a new file is a new log.</summary>
    public static string EnsureEpoch(SqliteConnection connection)
    {
        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', $epoch);";
        insert.Parameters.AddWithValue("$epoch", Guid.NewGuid().ToString("N"));
        insert.ExecuteNonQuery();
        using var select = connection.CreateCommand();
        select.CommandText = "SELECT value FROM meta WHERE key = 'epoch';";
        return (string)select.ExecuteScalar()!;
    }
}
