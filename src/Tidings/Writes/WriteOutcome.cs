using Tidings.Storage;

namespace Tidings.Writes;

public enum WriteStatus
{
    Created,

    /// <summary>A create repeated a client-supplied id that already exists: nothing was written or emitted.</summary>
    AlreadyExists,
    Updated,
    Deleted,
    NotFound,

    /// <summary>The caller's expected version (If-Match) is not the record's version.</summary>
    VersionMismatch,

    /// <summary>The body broke the collection's write rules or schema; <see cref="WriteOutcome.Errors"/> says where.</summary>
    Invalid,

    /// <summary>The collection's access rules refuse this caller this write.</summary>
    Forbidden,

    /// <summary>The record changed between the rules' check and the write, again and again: nothing was written.</summary>
    Conflict,
}

/// <summary>The result of a write, shared by REST and socket writes so both answer alike.</summary>
public sealed record WriteOutcome(WriteStatus Status, StoredRecord? Record = null, IReadOnlyDictionary<string, string[]>? Errors = null,
    long? Seq = null)
{
    public bool Succeeded => Status is WriteStatus.Created or WriteStatus.AlreadyExists or WriteStatus.Updated or WriteStatus.Deleted;

    public static WriteOutcome Invalid(string field, string message) =>
        new(WriteStatus.Invalid, Errors: new Dictionary<string, string[]> { [field] = [message] });
}
