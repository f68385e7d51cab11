using Microsoft.Data.Sqlite;
using Tidings.Storage;

namespace Tidings.Sqlite;

public sealed partial class SqliteStore
{
    /// <summary>The job index in the store's file. One writer at a time, so "find" needs no row locks here.</summary>
    private sealed class SqliteJobIndex(SqliteAccess access) : IJobIndex
    {
        private const string Columns = "queue, id, state, priority, run_at, key, lease, lease_until, finished_at";

        public void Put(JobEntry job)
        {
            var command = access.Command($"""
                INSERT INTO jobs ({Columns}) VALUES ($queue, $id, $state, $priority, $runAt, $key, $lease, $leaseUntil, $finishedAt)
                ON CONFLICT (queue, id) DO UPDATE SET state = excluded.state, priority = excluded.priority, run_at = excluded.run_at,
                    key = excluded.key, lease = excluded.lease, lease_until = excluded.lease_until, finished_at = excluded.finished_at;
                """,
                ("$queue", job.Queue), ("$id", job.Id), ("$state", job.State), ("$priority", job.Priority), ("$runAt", job.RunAt),
                ("$key", job.Key), ("$lease", job.Lease), ("$leaseUntil", job.LeaseUntil), ("$finishedAt", job.FinishedAt));
            command.ExecuteNonQuery();
        }

        public JobEntry? Get(string queue, string id) =>
            Query($"SELECT {Columns} FROM jobs WHERE queue = $queue AND id = $id;", ("$queue", queue), ("$id", id)).FirstOrDefault();

        public void Delete(string queue, string id)
        {
            var command = access.Command("DELETE FROM jobs WHERE queue = $queue AND id = $id;", ("$queue", queue), ("$id", id));
            command.ExecuteNonQuery();
        }

        public JobEntry? ActiveByKey(string queue, string key) =>
            Query($"SELECT {Columns} FROM jobs WHERE queue = $queue AND key = $key AND state IN ('queued', 'running') LIMIT 1;",
                ("$queue", queue), ("$key", key)).FirstOrDefault();

        public IReadOnlyList<JobEntry> Due(string queue, long now, int max) =>
            Query($"""
                SELECT {Columns} FROM jobs WHERE queue = $queue AND state = 'queued' AND run_at <= $now
                ORDER BY priority DESC, run_at, id LIMIT $max;
                """, ("$queue", queue), ("$now", now), ("$max", max));

        public IReadOnlyList<JobEntry> LeaseExpired(long now, int max) =>
            Query($"SELECT {Columns} FROM jobs WHERE state = 'running' AND lease_until < $now ORDER BY lease_until LIMIT $max;",
                ("$now", now), ("$max", max));

        public IReadOnlyList<JobEntry> FinishedBefore(string queue, long cutoff, int max) =>
            Query($"SELECT {Columns} FROM jobs WHERE queue = $queue AND finished_at > 0 AND finished_at < $cutoff ORDER BY finished_at LIMIT $max;",
                ("$queue", queue), ("$cutoff", cutoff), ("$max", max));

        public bool TryAdvanceSchedule(string name, long due, long next)
        {
            var command = access.Command("""
                INSERT INTO job_schedules (name, due) VALUES ($name, $next)
                ON CONFLICT (name) DO UPDATE SET due = $next WHERE job_schedules.due = $due;
                """, ("$name", name), ("$due", due), ("$next", next));
            return command.ExecuteNonQuery() > 0;
        }

        public long? ScheduleDue(string name)
        {
            var command = access.Command("SELECT due FROM job_schedules WHERE name = $name;", ("$name", name));
            return command.ExecuteScalar() is long due ? due : null;
        }

        private List<JobEntry> Query(string sql, params (string, object?)[] parameters)
        {
            var command = access.Command(sql, parameters);
            using var reader = command.ExecuteReader();
            var jobs = new List<JobEntry>();
            while (reader.Read())
            {
                jobs.Add(Read(reader));
            }

            return jobs;
        }

        private static JobEntry Read(SqliteDataReader r) =>
            new(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetInt64(4), r.IsDBNull(5) ? null : r.GetString(5),
                r.IsDBNull(6) ? null : r.GetString(6), r.GetInt64(7), r.GetInt64(8));
    }
}
