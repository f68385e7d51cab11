using Npgsql;
using NpgsqlTypes;
using Tidings.Storage;

namespace Tidings.Postgres;

/// <summary>The job index in PostgreSQL. "Find" locks what it returns and skips rows other nodes hold (SKIP LOCKED).</summary>
internal sealed class PostgresJobIndex(PostgresAccess access) : IJobIndex
{
    private const string Columns = "queue, id, state, priority, run_at, key, lease, lease_until, finished_at";

    public void Put(JobEntry job)
    {
        using var command = access.Command($"""
            INSERT INTO tidings_jobs ({Columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (queue, id) DO UPDATE SET state = excluded.state, priority = excluded.priority, run_at = excluded.run_at,
                key = excluded.key, lease = excluded.lease, lease_until = excluded.lease_until, finished_at = excluded.finished_at;
            """, job.Queue, job.Id, job.State, job.Priority, job.RunAt, Text(job.Key), Text(job.Lease), job.LeaseUntil, job.FinishedAt);
        command.ExecuteNonQuery();
    }

    public JobEntry? Get(string queue, string id) =>
        Query($"SELECT {Columns} FROM tidings_jobs WHERE queue = $1 AND id = $2 FOR UPDATE;", queue, id).FirstOrDefault();

    public void Delete(string queue, string id)
    {
        using var command = access.Command("DELETE FROM tidings_jobs WHERE queue = $1 AND id = $2;", queue, id);
        command.ExecuteNonQuery();
    }

    public JobEntry? ActiveByKey(string queue, string key) =>
        Query($"SELECT {Columns} FROM tidings_jobs WHERE queue = $1 AND key = $2 AND state IN ('queued', 'running') LIMIT 1 FOR UPDATE;",
            queue, key).FirstOrDefault();

    public IReadOnlyList<JobEntry> Due(string queue, long now, int max) =>
        Query($"""
            SELECT {Columns} FROM tidings_jobs WHERE queue = $1 AND state = 'queued' AND run_at <= $2
            ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED;
            """, queue, now, max);

    public IReadOnlyList<JobEntry> LeaseExpired(long now, int max) =>
        Query($"SELECT {Columns} FROM tidings_jobs WHERE state = 'running' AND lease_until < $1 ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED;",
            now, max);

    public IReadOnlyList<JobEntry> FinishedBefore(string queue, long cutoff, int max) =>
        Query($"""
            SELECT {Columns} FROM tidings_jobs WHERE queue = $1 AND finished_at > 0 AND finished_at < $2
            ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED;
            """, queue, cutoff, max);

    public bool TryAdvanceSchedule(string name, long due, long next)
    {
        using var command = access.Command("""
            INSERT INTO tidings_job_schedules (name, due) VALUES ($1, $3)
            ON CONFLICT (name) DO UPDATE SET due = $3 WHERE tidings_job_schedules.due = $2;
            """, name, due, next);
        return command.ExecuteNonQuery() > 0;
    }

    public long? ScheduleDue(string name)
    {
        using var command = access.Command("SELECT due FROM tidings_job_schedules WHERE name = $1;", name);
        return command.ExecuteScalar() is long due ? due : null;
    }

    private static object Text(string? value) => (object?)value ?? DBNull.Value;

    private List<JobEntry> Query(string sql, params object[] parameters)
    {
        using var command = access.Command(sql, parameters);
        using var reader = command.ExecuteReader();
        var jobs = new List<JobEntry>();
        while (reader.Read())
        {
            jobs.Add(new JobEntry(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetInt64(7),
                reader.GetInt64(8)));
        }

        return jobs;
    }
}
