namespace Tidings.Postgres;

public sealed class PostgresStoreOptions
{
    public const int DefaultRetainedChanges = 10_000;
    public static readonly TimeSpan DefaultRetainedAge = TimeSpan.FromDays(7);
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>An Npgsql connection string. Without its own <c>Timeout</c>, connecting gives up after 3 s (then 503).</summary>
    public required string ConnectionString { get; set; }

    /// <summary>Change-log entries kept per channel; older ones are trimmed and catch-up from before them gives 410.</summary>
    public int RetainedChanges { get; set; } = DefaultRetainedChanges;

    /// <summary>How long change-log entries are kept, whatever their count.</summary>
    public TimeSpan RetainedAge { get; set; } = DefaultRetainedAge;

    /// <summary>
    /// How often an idle node looks for changes committed by the other nodes (its own commits wake it at once).
    /// Under load it looks again as soon as a look found something.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = DefaultPollInterval;

    /// <summary>
    /// How often a node writes its presence changes and heartbeat and reads the other nodes' presence: the most a JOIN or
    /// LEAVE on another node takes to be seen here.
    /// </summary>
    public TimeSpan PresenceInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A node whose heartbeat is older than this counts as gone: its users leave (its rows are then deleted).</summary>
    public TimeSpan NodeExpiry { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Writes one node runs at once (each holds a pooled connection and a thread while it runs; more wait their turn).</summary>
    public int MaxConcurrentWrites { get; set; } = Math.Max(4, 4 * Environment.ProcessorCount);

    /// <summary>Reads one node runs at once (each holds a pooled connection and a thread while it runs; more wait their turn).</summary>
    public int MaxConcurrentReads { get; set; } = Math.Max(4, 2 * Environment.ProcessorCount);
}
