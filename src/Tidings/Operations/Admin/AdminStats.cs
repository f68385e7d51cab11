using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tidings.Operations.Admin;

/// <summary>
/// One sample of what the admin page shows, as <c>GET /tidings/admin/stats</c> returns it and the sampler publishes it on
/// <c>/tidings/admin/stats</c>. Rates are per second over the last sampling interval; null before the sampler has run a full
/// interval (it runs only while someone watches: see <see cref="AdminSampler"/>).
/// </summary>
internal sealed record AdminStats(
    string? Node,
    DateTimeOffset At,
    SessionFigures Sessions,
    int Subscriptions,
    int Channels,
    double? PublishesPerSecond,
    double? DeliveriesPerSecond,
    long QueuedBytes,
    StoreFigures Store,
    IReadOnlyList<ChangeLogFigures> ChangeLogs,
    IReadOnlyList<JobQueueFigures> Jobs);

/// <param name="WebSocket">Sessions a WebSocket carries now.</param>
/// <param name="LongPolling">The others: long-polling, or between two connects.</param>
/// <param name="Closed">Sessions that ended during the last interval (null before a full interval was sampled).</param>
internal sealed record SessionFigures(int Total, int WebSocket, int LongPolling, long? Closed);

/// <param name="CommitsPerSecond">Grouped commits (null where the store does not measure them, e.g. PostgreSQL).</param>
/// <param name="CommitMilliseconds">Mean time of a commit over the interval, fsync included.</param>
/// <param name="WritesPerCommit">Mean writes grouped into one commit over the interval.</param>
/// <param name="TailLagMilliseconds">Several nodes: how long since this node's change tail last caught up.</param>
internal sealed record StoreFigures(
    double? CommitsPerSecond,
    double? CommitMilliseconds,
    double? WritesPerCommit,
    int? QueuedWrites,
    int? WriteCapacity,
    int? QueuedChangeBatches,
    int? ChangeBufferCapacity,
    double? TailLagMilliseconds);

/// <summary>A channel's change log: last seq, oldest seq still logged, entries logged.</summary>
internal sealed record ChangeLogFigures(string Path, long Seq, long OldestSeq, long Entries);

internal sealed record JobQueueFigures(string Queue, long Queued, long Running, long Failed, long Dead, long Succeeded, long Cancelled);

/// <summary>A live session as the inspector lists it.</summary>
internal sealed record SessionInfo(
    string Id,
    string? User,
    string Transport,
    string Address,
    IReadOnlyCollection<string> Subscriptions,
    long QueuedBytes,
    double AgeSeconds);

internal sealed record SessionList(int Count, IReadOnlyList<SessionInfo> Sessions);

/// <summary>What the stats channel carries: first, to a new subscriber alone, the kept history; then one sample a second.</summary>
internal sealed record AdminStatsEvent(string Method, AdminStats? Sample = null, IReadOnlyList<AdminStats>? History = null);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AdminStats))]
[JsonSerializable(typeof(SessionList))]
[JsonSerializable(typeof(AdminStatsEvent))]
internal sealed partial class AdminJson : JsonSerializerContext;
