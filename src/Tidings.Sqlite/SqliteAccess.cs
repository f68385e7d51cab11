using Microsoft.Data.Sqlite;
using Tidings.Storage;

namespace Tidings.Sqlite;

public sealed partial class SqliteStore
{
    /// <summary>Reads and writes inside one transaction of the store, with the connection's prepared statements.</summary>
    private sealed class SqliteAccess(SqliteStatements statements, SqliteTransaction transaction, SqliteStore store) : IStoreWriter
    {
        // The channels' counters as the current write moved them: each channel's row is read at its first append and
        // written back once when the write ends (EndWrite), not bumped once per change — a write that enqueues or
        // finishes a hundred jobs appends a hundred changes to one channel.
        private readonly Dictionary<string, long> _seqs = new(StringComparer.Ordinal);

        /// <summary>The changes the current write appended.</summary>
        public List<ChangeEntry> Appended { get; } = [];

        /// <summary>Before each write of a group (the writer loop): nothing appended yet.</summary>
        public void BeginWrite()
        {
            Appended.Clear();
            _seqs.Clear();
        }

        /// <summary>After a write's work, inside its savepoint: stores the channel counters it moved.</summary>
        public void EndWrite()
        {
            foreach (var (path, seq) in _seqs)
            {
                var command = Command("""
                    INSERT INTO channels (path, seq) VALUES ($path, $seq) ON CONFLICT (path) DO UPDATE SET seq = excluded.seq;
                    """);
                command.Parameters.AddWithValue("$path", path);
                command.Parameters.AddWithValue("$seq", seq);
                command.ExecuteNonQuery();
            }

            _seqs.Clear();
        }

        private long NextSeq(string path)
        {
            if (!_seqs.TryGetValue(path, out var seq))
            {
                var command = Command("SELECT seq FROM channels WHERE path = $path;");
                command.Parameters.AddWithValue("$path", path);
                seq = command.ExecuteScalar() is long stored ? stored : 0;
            }

            _seqs[path] = ++seq;
            return seq;
        }

        public string Epoch => store._epoch;

        public IJobIndex Jobs => new SqliteJobIndex(this);

        public StoredRecord? Get(string path, string id)
        {
            var command = Command("SELECT id, version, json, rank FROM records WHERE path = $path AND id = $id;");
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$id", id);
            using var reader = command.ExecuteReader();
            return reader.Read() ? ReadRecord(reader) : null;
        }

        public IReadOnlyList<StoredRecord> List(string path, int limit)
        {
            // NULLs sort first in SQLite: records without a position (every record of an unsorted collection) by creation.
            var command = Command("SELECT id, version, json, rank FROM records WHERE path = $path ORDER BY rank, pos LIMIT $limit;");
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$limit", limit);
            using var reader = command.ExecuteReader();
            var records = new List<StoredRecord>();
            while (reader.Read())
            {
                records.Add(ReadRecord(reader));
            }

            return records;
        }

        private static StoredRecord ReadRecord(SqliteDataReader reader) =>
            new(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));

        public OrderNeighbor? NeighborPosition(string path, string? position, bool after, string? excludeId)
        {
            var comparison = position is null ? "" : after ? "AND rank > $position" : "AND rank < $position";
            var command = Command($"""
                SELECT id, rank FROM records WHERE path = $path AND rank IS NOT NULL {comparison} AND id IS NOT $exclude
                ORDER BY rank {(after ? "ASC" : "DESC")} LIMIT 1;
                """);
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$position", (object?)position ?? DBNull.Value);
            command.Parameters.AddWithValue("$exclude", (object?)excludeId ?? DBNull.Value);
            using var reader = command.ExecuteReader();
            return reader.Read() ? new OrderNeighbor(reader.GetString(0), reader.GetString(1)) : null;
        }

        public void LockOrder(string path)
        {
            // One writer loop: writes are serialized already.
        }

        public ChannelPosition GetPosition(string path)
        {
            var command = Command("""
                SELECT (SELECT seq FROM channels WHERE path = $path),
                       (SELECT MIN(seq) FROM changes WHERE path = $path);
                """);
            command.Parameters.AddWithValue("$path", path);
            using var reader = command.ExecuteReader();
            reader.Read();
            var seq = _seqs.TryGetValue(path, out var moved) ? moved : reader.IsDBNull(0) ? 0 : reader.GetInt64(0);
            var oldest = reader.IsDBNull(1) ? seq + 1 : reader.GetInt64(1);
            return new ChannelPosition(seq, oldest);
        }

        public IReadOnlyList<ChangeEntry> ChangesSince(string path, long since, long upTo, int max)
        {
            var command = Command("""
                SELECT seq, method, body, at, previous, after FROM changes
                WHERE path = $path AND seq > $since AND seq <= $upTo ORDER BY seq LIMIT $max;
                """);
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$since", since);
            command.Parameters.AddWithValue("$upTo", upTo);
            command.Parameters.AddWithValue("$max", max);
            using var reader = command.ExecuteReader();
            var changes = new List<ChangeEntry>();
            while (reader.Read())
            {
                changes.Add(new ChangeEntry(path, reader.GetInt64(0), reader.GetString(1), reader.GetString(2),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)), reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5)));
            }

            return changes;
        }

        public IReadOnlyList<ExportedRecord> ExportPage(string? under, long after, int max)
        {
            using var command = Command("""
                SELECT pos, path, id, version, json, rank FROM records
                WHERE pos > $after AND ($under IS NULL OR path = $under OR substr(path, 1, length($under) + 1) = $under || '/')
                ORDER BY pos LIMIT $max;
                """);
            command.Parameters.AddWithValue("$after", after);
            command.Parameters.AddWithValue("$under", (object?)under ?? DBNull.Value);
            command.Parameters.AddWithValue("$max", max);
            using var reader = command.ExecuteReader();
            var page = new List<ExportedRecord>();
            while (reader.Read())
            {
                page.Add(new ExportedRecord(reader.GetInt64(0), reader.GetString(1),
                    new StoredRecord(reader.GetString(2), reader.GetInt64(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5))));
            }

            return page;
        }

        public IReadOnlyList<ChannelLog> ChannelLogs(int max)
        {
            // MIN(seq) per channel is a seek on the (path, seq) key, so this costs one step per channel listed.
            var command = Command("""
                SELECT path, seq, (SELECT MIN(seq) FROM changes WHERE changes.path = channels.path) FROM channels
                ORDER BY seq DESC LIMIT $max;
                """);
            command.Parameters.AddWithValue("$max", max);
            using var reader = command.ExecuteReader();
            var logs = new List<ChannelLog>();
            while (reader.Read())
            {
                var seq = reader.GetInt64(1);
                logs.Add(new ChannelLog(reader.GetString(0), seq, reader.IsDBNull(2) ? seq + 1 : reader.GetInt64(2)));
            }

            return logs;
        }

        public IReadOnlyList<JobStateCount> JobCounts()
        {
            var command = Command("SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state ORDER BY queue, state;");
            using var reader = command.ExecuteReader();
            var counts = new List<JobStateCount>();
            while (reader.Read())
            {
                counts.Add(new JobStateCount(reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
            }

            return counts;
        }

        public bool IsEmpty()
        {
            using var command = Command("SELECT NOT EXISTS (SELECT 1 FROM records) AND NOT EXISTS (SELECT 1 FROM channels);");
            return (long)command.ExecuteScalar()! == 1;
        }

        public void Put(string path, StoredRecord record)
        {
            var command = Command("""
                INSERT INTO records (path, id, version, json, rank) VALUES ($path, $id, $version, $json, $rank)
                ON CONFLICT (path, id) DO UPDATE SET version = excluded.version, json = excluded.json, rank = excluded.rank;
                """);
            command.Parameters.AddWithValue("$rank", (object?)record.Position ?? DBNull.Value);
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$id", record.Id);
            command.Parameters.AddWithValue("$version", record.Version);
            command.Parameters.AddWithValue("$json", record.Json);
            command.ExecuteNonQuery();
        }

        public bool Delete(string path, string id)
        {
            var command = Command("DELETE FROM records WHERE path = $path AND id = $id;");
            command.Parameters.AddWithValue("$path", path);
            command.Parameters.AddWithValue("$id", id);
            return command.ExecuteNonQuery() > 0;
        }

        public ChangeEntry Append(string path, string method, string bodyJson, string? previousJson = null, string? after = null)
        {
            var seq = NextSeq(path);
            store._changes.NoteAppended(path, seq);
            var at = store._time.GetUtcNow();

            var insert = Command("INSERT INTO changes (path, seq, method, body, at, previous, after) VALUES ($path, $seq, $method, $body, $at, $previous, $after);");
            insert.Parameters.AddWithValue("$after", (object?)after ?? DBNull.Value);
            insert.Parameters.AddWithValue("$previous", (object?)previousJson ?? DBNull.Value);
            insert.Parameters.AddWithValue("$path", path);
            insert.Parameters.AddWithValue("$seq", seq);
            insert.Parameters.AddWithValue("$method", method);
            insert.Parameters.AddWithValue("$body", bodyJson);
            insert.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
            insert.ExecuteNonQuery();

            var entry = new ChangeEntry(path, seq, method, bodyJson, at, previousJson, after);
            Appended.Add(entry);
            return entry;
        }

        /// <summary>Trims a channel's log to the newest <see cref="SqliteStoreOptions.RetainedChanges"/> entries up to <paramref name="seq"/>
        /// (once per channel per commit, not per append).</summary>
        public void TrimChanges(string path, long seq)
        {
            var retained = store._options.RetainedChanges;
            if (seq > retained)
            {
                var trim = Command("DELETE FROM changes WHERE path = $path AND seq <= $cutoff;");
                trim.Parameters.AddWithValue("$path", path);
                trim.Parameters.AddWithValue("$cutoff", seq - retained);
                trim.ExecuteNonQuery();
            }
        }

        internal SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
        {
            var command = Command(sql);
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            return command;
        }

        /// <summary>A prepared statement, owned by the connection's cache: callers do not dispose it.</summary>
        private SqliteCommand Command(string sql) => statements.Get(sql, transaction);
    }
}
