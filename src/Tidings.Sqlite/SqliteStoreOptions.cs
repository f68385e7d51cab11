namespace Tidings.Sqlite;

public sealed class SqliteStoreOptions
{
    public const int DefaultMaxBatch = 256;
    public const int DefaultQueueCapacity = 10_000;
    public const int DefaultRetainedChanges = 10_000;
    public const int DefaultChangeBufferCapacity = 1_024;
    public static readonly TimeSpan DefaultRetainedAge = TimeSpan.FromDays(7);

    /// <summary>The database file. Created, with its folder, on first run.</summary>
    public required string Path { get; set; }

    /// <summary>The most writes grouped into one commit (one fsync) under load.</summary>
    public int MaxBatch { get; set; } = DefaultMaxBatch;

    /// <summary>Writes waiting for the writer; further writers wait for room (back-pressure, bounded memory).</summary>
    public int QueueCapacity { get; set; } = DefaultQueueCapacity;

    /// <summary>
    /// Committed batches waiting for the change feed. When it is this far behind, the writer waits for it
    /// (each batch holds up to <see cref="MaxBatch"/> changes).
    /// </summary>
    public int ChangeBufferCapacity { get; set; } = DefaultChangeBufferCapacity;

    /// <summary>Change-log entries kept per channel; older ones are trimmed and catch-up from before them gives 410.</summary>
    public int RetainedChanges { get; set; } = DefaultRetainedChanges;

    /// <summary>How long change-log entries are kept, whatever their count.</summary>
    public TimeSpan RetainedAge { get; set; } = DefaultRetainedAge;
}
