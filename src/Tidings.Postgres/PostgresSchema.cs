using Npgsql;

namespace Tidings.Postgres;

/// <summary>
/// The database layout, versioned. Every node migrates at start-up under one advisory lock, so nodes that start
/// together apply each step once.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>Taken for the length of the migrating transaction; any bigint unique to Tidings.</summary>
    private const long MigrationLock = 0x7469_6469_6e67_7301;

    /// <summary>Each step runs once, in order; never edit a step that has shipped, add one.</summary>
    private static readonly string[] Steps =
    [
        """
        CREATE TABLE tidings_meta (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE tidings_records (
            pos     bigserial NOT NULL,          -- creation order for listings
            path    text NOT NULL,
            id      text NOT NULL,
            version bigint NOT NULL,
            json    text NOT NULL,
            PRIMARY KEY (path, id)
        );
        CREATE INDEX tidings_records_path ON tidings_records (path, pos);
        -- One row per channel: its last seq. Taking the next one locks the row until commit, so a channel's seqs
        -- are contiguous and in commit order whichever node wrote them.
        CREATE TABLE tidings_channels (path text PRIMARY KEY, seq bigint NOT NULL);
        CREATE TABLE tidings_changes (
            path     text NOT NULL,
            seq      bigint NOT NULL,
            method   text NOT NULL,
            body     text NOT NULL,
            at       bigint NOT NULL,                              -- unix milliseconds
            previous text,                                         -- the record before an update
            xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),   -- the writing transaction: how nodes tail the log
            PRIMARY KEY (path, seq)
        );
        CREATE INDEX tidings_changes_xid ON tidings_changes (xid);
        CREATE INDEX tidings_changes_at ON tidings_changes (at);
        INSERT INTO tidings_meta (key, value) VALUES ('epoch', replace(gen_random_uuid()::text, '-', ''));
        """,
        // Writes from outside: another program inserts, replaces or deletes a record in SQL, sequenced, logged and
        // published like a REST write. The database is trusted: no schema check, no access rule.
        """
        CREATE FUNCTION tidings_write(p_path text, p_method text, p_id text, p_fields jsonb DEFAULT '{}'::jsonb)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_now     timestamptz := clock_timestamp();
            v_current tidings_records%ROWTYPE;
            v_json    jsonb;
            v_seq     bigint;
        BEGIN
            IF p_method NOT IN ('POST', 'PUT', 'DELETE') THEN
                RAISE EXCEPTION 'tidings_write: method must be POST, PUT or DELETE, not %', p_method USING ERRCODE = '22023';
            END IF;
            SELECT * INTO v_current FROM tidings_records WHERE path = p_path AND id = p_id FOR UPDATE;
            IF p_method = 'POST' AND FOUND THEN
                RAISE EXCEPTION 'tidings_write: % already has a record %', p_path, p_id USING ERRCODE = '23505';
            ELSIF p_method <> 'POST' AND NOT FOUND THEN
                RAISE EXCEPTION 'tidings_write: % has no record %', p_path, p_id USING ERRCODE = 'P0002';
            END IF;
            INSERT INTO tidings_channels (path, seq) VALUES (p_path, 1)
                ON CONFLICT (path) DO UPDATE SET seq = tidings_channels.seq + 1 RETURNING seq INTO v_seq;
            IF p_method = 'DELETE' THEN
                DELETE FROM tidings_records WHERE path = p_path AND id = p_id;
                INSERT INTO tidings_changes (path, seq, method, body, at)
                    VALUES (p_path, v_seq, 'DELETE', v_current.json, (extract(epoch FROM v_now) * 1000)::bigint);
                RETURN v_seq;
            END IF;
            v_json := (p_fields - 'id' - 'version' - 'createdAt' - 'updatedAt')
                || jsonb_build_object('id', p_id,
                       'version', CASE WHEN p_method = 'POST' THEN 1 ELSE v_current.version + 1 END,
                       'createdAt', CASE WHEN p_method = 'POST' THEN to_jsonb(v_now) ELSE (v_current.json::jsonb -> 'createdAt') END,
                       'updatedAt', to_jsonb(v_now));
            INSERT INTO tidings_records (path, id, version, json) VALUES (p_path, p_id, (v_json ->> 'version')::bigint, v_json::text)
                ON CONFLICT (path, id) DO UPDATE SET version = excluded.version, json = excluded.json;
            INSERT INTO tidings_changes (path, seq, method, body, at, previous)
                VALUES (p_path, v_seq, p_method, v_json::text, (extract(epoch FROM v_now) * 1000)::bigint,
                        CASE WHEN p_method = 'PUT' THEN v_current.json END);
            RETURN v_seq;
        END $$;
        """,
        // Plain Bayeux publishes on their way between nodes: kept a minute, tailed like the change log.
        """
        CREATE TABLE tidings_messages (
            xid     xid8 NOT NULL DEFAULT pg_current_xact_id(),
            node    text NOT NULL,
            channel text NOT NULL,
            data    text NOT NULL,
            at      bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
        );
        CREATE INDEX tidings_messages_xid ON tidings_messages (xid);
        CREATE INDEX tidings_messages_at ON tidings_messages (at);
        """,
        // The job index beside each job's record; claims lock rows FOR UPDATE SKIP LOCKED, so nodes never take one twice.
        """
        CREATE TABLE tidings_jobs (
            queue       text NOT NULL,
            id          text NOT NULL,
            state       text NOT NULL,
            priority    int NOT NULL,
            run_at      bigint NOT NULL,
            key         text,
            lease       text,
            lease_until bigint NOT NULL,
            finished_at bigint NOT NULL,
            PRIMARY KEY (queue, id)
        );
        CREATE INDEX tidings_jobs_due ON tidings_jobs (queue, priority DESC, run_at) WHERE state = 'queued';
        CREATE INDEX tidings_jobs_lease ON tidings_jobs (lease_until) WHERE state = 'running';
        CREATE INDEX tidings_jobs_finished ON tidings_jobs (finished_at) WHERE finished_at > 0;
        CREATE UNIQUE INDEX tidings_jobs_key ON tidings_jobs (queue, key) WHERE key IS NOT NULL AND state IN ('queued', 'running');
        CREATE TABLE tidings_job_schedules (name text PRIMARY KEY, due bigint NOT NULL);
        """,
        // Sorted collections: a position key beside each record (ordinal collation, as the keys are made), a MOVE's
        // "after" in the log, and tidings_write keeping positions (a PUT keeps the record's; a POST to a sorted collection
        // goes at the end).
        """
        ALTER TABLE tidings_records ADD COLUMN rank text COLLATE "C";
        CREATE INDEX tidings_records_rank ON tidings_records (path, rank, pos);
        ALTER TABLE tidings_changes ADD COLUMN after text;
        CREATE OR REPLACE FUNCTION tidings_write(p_path text, p_method text, p_id text, p_fields jsonb DEFAULT '{}'::jsonb)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            v_now     timestamptz := clock_timestamp();
            v_current tidings_records%ROWTYPE;
            v_json    jsonb;
            v_seq     bigint;
            v_last    text;
            v_rank    text;
            v_digit   int;
            c_digits  constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
        BEGIN
            IF p_method NOT IN ('POST', 'PUT', 'DELETE') THEN
                RAISE EXCEPTION 'tidings_write: method must be POST, PUT or DELETE, not %', p_method USING ERRCODE = '22023';
            END IF;
            IF p_method = 'POST' THEN
                -- The order lock, as the server takes it (before the channel's row): a create in a sorted collection
                -- (one whose records have positions) goes at the end, with a key after the last one.
                PERFORM pg_advisory_xact_lock(hashtextextended('tidings_order:' || p_path, 0));
            END IF;
            SELECT * INTO v_current FROM tidings_records WHERE path = p_path AND id = p_id FOR UPDATE;
            IF p_method = 'POST' AND FOUND THEN
                RAISE EXCEPTION 'tidings_write: % already has a record %', p_path, p_id USING ERRCODE = '23505';
            ELSIF p_method <> 'POST' AND NOT FOUND THEN
                RAISE EXCEPTION 'tidings_write: % has no record %', p_path, p_id USING ERRCODE = 'P0002';
            END IF;
            IF p_method = 'POST' THEN
                SELECT rank INTO v_last FROM tidings_records WHERE path = p_path AND rank IS NOT NULL ORDER BY rank DESC LIMIT 1;
                IF v_last IS NOT NULL THEN
                    FOR i IN 1 .. length(v_last) LOOP
                        v_digit := strpos(c_digits, substr(v_last, i, 1)) - 1;
                        IF v_digit < 61 THEN
                            v_rank := substr(v_last, 1, i - 1) || substr(c_digits, v_digit + 2, 1);
                            EXIT;
                        END IF;
                    END LOOP;
                    v_rank := coalesce(v_rank, v_last || 'V');
                END IF;
            ELSE
                v_rank := v_current.rank;
            END IF;
            INSERT INTO tidings_channels (path, seq) VALUES (p_path, 1)
                ON CONFLICT (path) DO UPDATE SET seq = tidings_channels.seq + 1 RETURNING seq INTO v_seq;
            IF p_method = 'DELETE' THEN
                DELETE FROM tidings_records WHERE path = p_path AND id = p_id;
                INSERT INTO tidings_changes (path, seq, method, body, at)
                    VALUES (p_path, v_seq, 'DELETE', v_current.json, (extract(epoch FROM v_now) * 1000)::bigint);
                RETURN v_seq;
            END IF;
            -- In a sorted collection "position" is the server's; elsewhere it is an ordinary field.
            v_json := (CASE WHEN v_rank IS NOT NULL THEN p_fields - 'position' ELSE p_fields END - 'id' - 'version' - 'createdAt' - 'updatedAt')
                || jsonb_build_object('id', p_id,
                       'version', CASE WHEN p_method = 'POST' THEN 1 ELSE v_current.version + 1 END,
                       'createdAt', CASE WHEN p_method = 'POST' THEN to_jsonb(v_now) ELSE (v_current.json::jsonb -> 'createdAt') END,
                       'updatedAt', to_jsonb(v_now))
                || CASE WHEN v_rank IS NOT NULL THEN jsonb_build_object('position', v_rank) ELSE '{}'::jsonb END;
            INSERT INTO tidings_records (path, id, version, json, rank) VALUES (p_path, p_id, (v_json ->> 'version')::bigint, v_json::text, v_rank)
                ON CONFLICT (path, id) DO UPDATE SET version = excluded.version, json = excluded.json;
            INSERT INTO tidings_changes (path, seq, method, body, at, previous)
                VALUES (p_path, v_seq, p_method, v_json::text, (extract(epoch FROM v_now) * 1000)::bigint,
                        CASE WHEN p_method = 'PUT' THEN v_current.json END);
            RETURN v_seq;
        END $$;
        """,
        // Presence across nodes: each node's sessions per (channel, user) ('' = signed out), and each node's heartbeat;
        // rows of a node that stopped heartbeating are ignored, then deleted (PostgresPresence).
        """
        CREATE TABLE tidings_presence (
            node      text NOT NULL,
            channel   text NOT NULL,
            user_name text NOT NULL,
            sessions  int NOT NULL,
            PRIMARY KEY (node, channel, user_name)
        );
        CREATE TABLE tidings_nodes (node text PRIMARY KEY, seen_at bigint NOT NULL);
        """,
    ];

    /// <summary>Creates or upgrades the schema; returns the log's epoch.</summary>
    public static async Task<string> MigrateAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLock});", cancellationToken);
        await Execute(connection, transaction, "CREATE TABLE IF NOT EXISTS tidings_schema (version int NOT NULL);", cancellationToken);
        await using (var read = new NpgsqlCommand("SELECT max(version) FROM tidings_schema;", connection, transaction))
        {
            var current = await read.ExecuteScalarAsync(cancellationToken) is int v ? v : 0;
            if (current > Steps.Length)
            {
                throw new InvalidOperationException(
                    $"The database's Tidings schema is at version {current}, newer than this build knows ({Steps.Length}). Upgrade Tidings.");
            }

            for (var step = current; step < Steps.Length; step++)
            {
                await Execute(connection, transaction, Steps[step], cancellationToken);
                await Execute(connection, transaction, $"INSERT INTO tidings_schema (version) VALUES ({step + 1});", cancellationToken);
            }
        }

        await using var epoch = new NpgsqlCommand("SELECT value FROM tidings_meta WHERE key = 'epoch';", connection, transaction);
        var result = (string)(await epoch.ExecuteScalarAsync(cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
