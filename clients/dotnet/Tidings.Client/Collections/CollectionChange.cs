namespace Tidings.Client.Collections;

/// <summary>What happened to a live collection's visible items.</summary>
public enum CollectionChangeKind
{
    /// <summary>A record appeared (a remote create, or this client's optimistic one).</summary>
    Added,

    /// <summary>A record's fields changed.</summary>
    Changed,

    /// <summary>A record went away (deleted, rolled back, or no longer visible to this user).</summary>
    Removed,

    /// <summary>
    /// A record's place in a sorted collection changed — a move (this client's optimistic one, or the server's) — and
    /// with it its <c>position</c>; <see cref="CollectionChange{T}.Item"/> and <see cref="CollectionChange{T}.Previous"/>
    /// are the record after and before.
    /// </summary>
    Moved,

    /// <summary>A whole new state: the first load and every reload. <see cref="CollectionChange{T}.Items"/> holds it.</summary>
    Reset,
}

/// <summary>One change of a live collection, as <c>ChangesAsync</c> yields it.</summary>
public sealed record CollectionChange<T>(CollectionChangeKind Kind, string? Id, T? Item, T? Previous, IReadOnlyList<T>? Items)
{
    /// <summary>The ids of <see cref="Items"/>, for a reset.</summary>
    internal string[]? ResetIds { get; init; }

    /// <summary>The <c>position</c> of <see cref="Items"/>, for a reset of a sorted collection.</summary>
    internal string?[]? ResetPositions { get; init; }

    /// <summary>The record's <c>position</c> (sorted collections), for an add, change or move: where the view places it.</summary>
    internal string? Position { get; init; }
}
