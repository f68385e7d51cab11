using Npgsql;
using NpgsqlTypes;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>Reads and writes inside one transaction of the store (blocking calls: the store bounds how many run at once).</summary>
internal sealed class PostgresAccess(NpgsqlConnection connection, NpgsqlTransaction transaction, string epoch, int retainedChanges,
    TimeProvider time) : IStoreWriter
{
    // Each channel this transaction appended to: the seq its first append took (which locked the channel's row) and
    // the last one handed out. Later appends count on in memory; EndWrite stores the last and trims the log once.
    private readonly Dictionary<string, (long First, long Last)> _seqs = new(StringComparer.Ordinal);

    public string Epoch => epoch;

    /// <summary>
    /// The next seq of <paramref name="path"/>. The first append of a transaction bumps the channel's row, which stays
    /// locked until the transaction ends: the next writer of the channel waits, so seqs are contiguous and in commit
    /// order across every node. A rolled-back write gives its seqs back.
    /// </summary>
    private long NextSeq(string path)
    {
        if (_seqs.TryGetValue(path, out var taken))
        {
            _seqs[path] = taken with { Last = taken.Last + 1 };
            return taken.Last + 1;
        }

        using var bump = Command("""
            INSERT INTO tidings_channels (path, seq) VALUES ($1, 1)
            ON CONFLICT (path) DO UPDATE SET seq = tidings_channels.seq + 1 RETURNING seq;
            """, path);
        var seq = (long)bump.ExecuteScalar()!;
        _seqs[path] = (seq, seq);
        return seq;
    }

    /// <summary>Before the commit: stores each channel's last seq (when it took more than one) and trims its log once.</summary>
    internal void EndWrite()
    {
        foreach (var (path, (first, last)) in _seqs)
        {
            if (last > first)
            {
                using var store = Command("UPDATE tidings_channels SET seq = $2 WHERE path = $1;", path, last);
                store.ExecuteNonQuery();
            }

            if (last > retainedChanges)
            {
                using var trim = Command("DELETE FROM tidings_changes WHERE path = $1 AND seq <= $2;", path, last - retainedChanges);
                trim.ExecuteNonQuery();
            }
        }

        _seqs.Clear();
    }

    public IJobIndex Jobs => new PostgresJobIndex(this);

    public StoredRecord? Get(string path, string id)
    {
        using var command = Command("SELECT id, version, json, rank FROM tidings_records WHERE path = $1 AND id = $2;", path, id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRecord(reader) : null;
    }

    public IReadOnlyList<StoredRecord> List(string path, int limit)
    {
        // rank is COLLATE "C": ordinal, as the keys are made. Records without a position first, then by creation.
        using var command = Command("SELECT id, version, json, rank FROM tidings_records WHERE path = $1 ORDER BY rank NULLS FIRST, pos LIMIT $2;",
            path, limit);
        using var reader = command.ExecuteReader();
        var records = new List<StoredRecord>();
        while (reader.Read())
        {
            records.Add(ReadRecord(reader));
        }

        return records;
    }

    private static StoredRecord ReadRecord(NpgsqlDataReader reader) =>
        new(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));

    public OrderNeighbor? NeighborPosition(string path, string? position, bool after, string? excludeId)
    {
        var comparison = after ? "($2::text IS NULL OR rank > $2)" : "($2::text IS NULL OR rank < $2)";
        using var command = Command($"""
            SELECT id, rank FROM tidings_records WHERE path = $1 AND rank IS NOT NULL AND {comparison} AND id IS DISTINCT FROM $3
            ORDER BY rank {(after ? "ASC" : "DESC")} LIMIT 1;
            """, path, (object?)position ?? DBNull.Value, (object?)excludeId ?? DBNull.Value);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new OrderNeighbor(reader.GetString(0), reader.GetString(1)) : null;
    }

    public void LockOrder(string path)
    {
        // Held until the transaction ends; taken before the channel's counter row, by every order-changing write.
        using var command = Command("SELECT pg_advisory_xact_lock(hashtextextended('tidings_order:' || $1, 0));", path);
        command.ExecuteNonQuery();
    }

    public ChannelPosition GetPosition(string path)
    {
        using var command = Command("""
            SELECT (SELECT seq FROM tidings_channels WHERE path = $1), (SELECT min(seq) FROM tidings_changes WHERE path = $1);
            """, path);
        using var reader = command.ExecuteReader();
        reader.Read();
        var seq = _seqs.TryGetValue(path, out var taken) ? taken.Last : reader.IsDBNull(0) ? 0 : reader.GetInt64(0);
        var oldest = reader.IsDBNull(1) ? seq + 1 : reader.GetInt64(1);
        return new ChannelPosition(seq, oldest);
    }

    public IReadOnlyList<ChangeEntry> ChangesSince(string path, long since, long upTo, int max)
    {
        using var command = Command("""
            SELECT seq, method, body, at, previous, after FROM tidings_changes
            WHERE path = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4;
            """, path, since, upTo, max);
        using var reader = command.ExecuteReader();
        var changes = new List<ChangeEntry>();
        while (reader.Read())
        {
            changes.Add(ReadChange(reader, path, 0));
        }

        return changes;
    }

    public IReadOnlyList<ExportedRecord> ExportPage(string? under, long after, int max)
    {
        using var command = Command("""
            SELECT pos, path, id, version, json, rank FROM tidings_records
            WHERE pos > $1 AND ($2::text IS NULL OR path = $2 OR left(path, length($2) + 1) = $2 || '/')
            ORDER BY pos LIMIT $3;
            """, after, (object?)under ?? DBNull.Value, max);
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
        // min(seq) per channel is a seek on the (path, seq) key, so this costs one step per channel listed.
        using var command = Command("""
            SELECT path, seq, (SELECT min(seq) FROM tidings_changes c WHERE c.path = h.path) FROM tidings_channels h
            ORDER BY seq DESC LIMIT $1;
            """, max);
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
        using var command = Command("SELECT queue, state, count(*) FROM tidings_jobs GROUP BY queue, state ORDER BY queue, state;");
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
        using var command = Command("SELECT NOT EXISTS (SELECT 1 FROM tidings_records) AND NOT EXISTS (SELECT 1 FROM tidings_channels);");
        return (bool)command.ExecuteScalar()!;
    }

    public void Put(string path, StoredRecord record)
    {
        using var command = Command("""
            INSERT INTO tidings_records (path, id, version, json, rank) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (path, id) DO UPDATE SET version = excluded.version, json = excluded.json, rank = excluded.rank;
            """, path, record.Id, record.Version, record.Json, (object?)record.Position ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    public bool Delete(string path, string id)
    {
        using var command = Command("DELETE FROM tidings_records WHERE path = $1 AND id = $2;", path, id);
        return command.ExecuteNonQuery() > 0;
    }

    public ChangeEntry Append(string path, string method, string bodyJson, string? previousJson = null, string? after = null)
    {
        var seq = NextSeq(path);
        var at = time.GetUtcNow();
        using var insert = Command("""
            INSERT INTO tidings_changes (path, seq, method, body, at, previous, after) VALUES ($1, $2, $3, $4, $5, $6, $7);
            """, path, seq, method, bodyJson, at.ToUnixTimeMilliseconds(), (object?)previousJson ?? DBNull.Value, (object?)after ?? DBNull.Value);
        insert.ExecuteNonQuery();
        return new ChangeEntry(path, seq, method, bodyJson, at, previousJson, after);
    }

    /// <summary>A change row read as <c>seq, method, body, at, previous, after</c> starting at column <paramref name="first"/>.</summary>
    internal static ChangeEntry ReadChange(NpgsqlDataReader reader, string path, int first) =>
        new(path, reader.GetInt64(first), reader.GetString(first + 1), reader.GetString(first + 2),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(first + 3)), reader.IsDBNull(first + 4) ? null : reader.GetString(first + 4),
            reader.IsDBNull(first + 5) ? null : reader.GetString(first + 5));

    internal NpgsqlCommand Command(string sql, params object[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var value in parameters)
        {
            command.Parameters.Add(value is DBNull ? new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Text } : new NpgsqlParameter { Value = value });
        }

        return command;
    }
}
