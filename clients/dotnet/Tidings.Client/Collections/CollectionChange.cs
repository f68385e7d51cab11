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

    /// <summary>A whole new state: the first load and every reload. <see cref="CollectionChange{T}.Items"/> holds it.</summary>
    Reset,
}

/// <summary>One change of a live collection, as <c>ChangesAsync</c> yields it.</summary>
public sealed record CollectionChange<T>(CollectionChangeKind Kind, string? Id, T? Item, T? Previous, IReadOnlyList<T>? Items)
{
    /// <summary>The ids of <see cref="Items"/>, for a reset.</summary>
    internal string[]? ResetIds { get; init; }
}
