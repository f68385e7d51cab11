using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tidings.Observability;

/// <summary>
/// The traces Tidings makes, on the <c>Tidings</c> <see cref="ActivitySource"/> (add it to an OpenTelemetry tracer with
/// <c>AddSource(TidingsTracing.SourceName)</c>). A write is one trace: <c>tidings.write</c> (child of the request's span when
/// ASP.NET Core's <c>Microsoft.AspNetCore</c> source is listened to too) → <c>tidings.commit</c> (the store transaction) →
/// <c>tidings.publish</c> (the fan-out of each change it committed, tagged with its <c>tidings.deliveries</c>).
/// </summary>
/// <remarks>Nothing is made while nobody listens: <see cref="ActivitySource.StartActivity(string, ActivityKind)"/> returns null.</remarks>
public static class TidingsTracing
{
    public const string SourceName = "Tidings";

    /// <summary>Span names.</summary>
    public const string Write = "tidings.write";
    public const string Commit = "tidings.commit";
    public const string Publish = "tidings.publish";

    /// <summary>Tag names.</summary>
    public const string PathTag = "tidings.path";
    public const string MethodTag = "tidings.method";
    public const string SeqTag = "tidings.seq";
    public const string WritesTag = "tidings.writes";
    public const string DeliveriesTag = "tidings.deliveries";
    public const string StatusTag = "tidings.status";

    internal static readonly ActivitySource Source = new(SourceName, typeof(TidingsTracing).Assembly.GetName().Version?.ToString());
}

/// <summary>
/// Carries a commit's trace context from the writer to the publisher, which runs later, on another loop (the change feed),
/// keyed by channel and seq. An entry is added inside the write transaction — before the commit, so before the feed can
/// see the change — and taken when the change is published.
/// </summary>
/// <remarks>
/// Bounded: beyond <see cref="Capacity"/> entries a write is not linked (its publish starts a trace of its own). Only
/// writes that are traced add entries, so while nobody listens this stays empty and costs one read per publish. A change
/// committed by another node (or in SQL) has no entry here: its publish is a trace of its own.
/// </remarks>
internal sealed class ChangeTraces
{
    internal const int Capacity = 10_000;

    // One per store (so per app, however many apps a process hosts), without a constructor parameter in the writer or feed.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, ChangeTraces> PerStore = new();

    /// <summary>The map shared by the writer and the feed of <paramref name="store"/>.</summary>
    public static ChangeTraces For(Storage.ITidingsStore store) => PerStore.GetValue(store, static _ => new ChangeTraces());

    private readonly ConcurrentDictionary<(string Path, long Seq), ActivityContext> _contexts = new();
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Remember(string path, long seq, ActivityContext context)
    {
        if (Volatile.Read(ref _count) >= Capacity)
        {
            return;
        }

        // A rolled-back write gives its seq back: the next write of the channel takes the same key and replaces it.
        if (_contexts.TryAdd((path, seq), context))
        {
            Interlocked.Increment(ref _count);
        }
        else
        {
            _contexts[(path, seq)] = context;
        }
    }

    public ActivityContext Take(string path, long seq)
    {
        if (Volatile.Read(ref _count) == 0 || !_contexts.TryRemove((path, seq), out var context))
        {
            return default;
        }

        Interlocked.Decrement(ref _count);
        return context;
    }
}
