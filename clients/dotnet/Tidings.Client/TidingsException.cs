using System.Text.Json.Nodes;

namespace Tidings.Client;

/// <summary>
/// Why a write, a load or a subscription failed. <see cref="Status"/> is the HTTP status, or the code of a Bayeux
/// <c>code:args:message</c> error; 0 means there was no answer at all (offline, connection refused), 408 that no
/// answer came in time. <see cref="Errors"/> maps field names to messages (RFC 9457 problem details'
/// <c>errors</c>, or a Bayeux error's args).
/// </summary>
public sealed class TidingsException : Exception
{
    private static readonly IReadOnlyDictionary<string, string[]> NoErrors = new Dictionary<string, string[]>();

    public TidingsException()
        : this("Tidings request failed", 0)
    {
    }

    public TidingsException(string message)
        : this(message, 0)
    {
    }

    public TidingsException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = NoErrors;
    }

    public TidingsException(string message, int status, IReadOnlyDictionary<string, string[]>? errors = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Status = status;
        Errors = errors ?? NoErrors;
    }

    /// <summary>HTTP status or Bayeux error code; 0 when there was no answer.</summary>
    public int Status { get; }

    /// <summary>Per-field messages, e.g. <c>title: ["'title' is required"]</c>.</summary>
    public IReadOnlyDictionary<string, string[]> Errors { get; }

    /// <summary>What was being done: <c>create</c>, <c>update</c>, <c>delete</c>, <c>load</c>, <c>subscribe</c>, <c>publish</c>.</summary>
    public string? Operation { get; init; }

    /// <summary>The record's id, for writes.</summary>
    public string? RecordId { get; init; }

    /// <summary>The problem details body the server sent, if any.</summary>
    public JsonObject? Problem { get; init; }

    /// <summary>True when the request never got an answer: worth retrying.</summary>
    public bool IsNetworkError => Status == 0;

    /// <summary>
    /// Parses a Bayeux error <c>code:arg1,arg2:message</c>. Anything else becomes status 500 with the text as message.
    /// </summary>
    public static TidingsException FromBayeuxError(string? error, string? operation = null, string? recordId = null)
    {
        var text = error ?? string.Empty;
        var first = text.IndexOf(':', StringComparison.Ordinal);
        var second = first < 0 ? -1 : text.IndexOf(':', first + 1);
        if (first <= 0 || second < 0 || !int.TryParse(text.AsSpan(0, first), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var code))
        {
            return new TidingsException(text.Length == 0 ? "refused" : text, 500) { Operation = operation, RecordId = recordId };
        }

        var message = text[(second + 1)..];
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var field in text[(first + 1)..second].Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            errors[field] = [message];
        }

        return new TidingsException(message, code, errors) { Operation = operation, RecordId = recordId };
    }
}
