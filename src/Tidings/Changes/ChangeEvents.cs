using System.Buffers;
using System.Text.Json;
using Tidings.Storage;

namespace Tidings.Changes;

/// <summary>
/// The event payloads on a collection's channel: <c>{"method","body","seq"}</c> for changes, and the two
/// control messages <c>SNAPSHOT</c> (initial state) and <c>RESET</c> (cannot replay; reload).
/// </summary>
public static class ChangeEvents
{
    public const string Snapshot = "SNAPSHOT";
    public const string Reset = "RESET";
    public const string SkipMethod = "SKIP";

    /// <summary>A change event; the stored record JSON is copied in as it is, not re-serialized.</summary>
    public static byte[] Change(ChangeEntry change) => Write(writer =>
    {
        writer.WriteString("method", change.Method);
        writer.WritePropertyName("body");
        writer.WriteRawValue(change.BodyJson, skipInputValidation: true);
        if (change.Method == ChangeMethods.Move)
        {
            // The id the record now follows; null at the start. The body's position is what to sort by.
            writer.WriteString("after", change.After);
        }

        writer.WriteNumber("seq", change.Seq);
    });

    /// <summary>The initial state; <paramref name="truncated"/> marks one cut at <c>Tidings:MaxSnapshotItems</c>.</summary>
    /// <param name="sorted">The collection is sorted: items come in its order, and clients sort by <c>position</c>.</param>
    public static byte[] SnapshotOf(IReadOnlyList<StoredRecord> items, long seq, string epoch, bool truncated = false, bool sorted = false) => Write(writer =>
    {
        writer.WriteString("method", Snapshot);
        writer.WriteStartArray("items");
        foreach (var item in items)
        {
            writer.WriteRawValue(item.Json, skipInputValidation: true);
        }

        writer.WriteEndArray();
        writer.WriteNumber("seq", seq);
        writer.WriteString("epoch", epoch);
        if (truncated)
        {
            writer.WriteBoolean("truncated", true);
        }

        if (sorted)
        {
            writer.WriteBoolean("sorted", true);
        }
    });

    /// <summary>A change this subscriber may not see: only its seq, so the sequence stays contiguous.</summary>
    public static byte[] Skip(long seq) => Write(writer =>
    {
        writer.WriteString("method", SkipMethod);
        writer.WriteNumber("seq", seq);
    });

    /// <summary>The record left this subscriber's view: delivered as a delete that carries only its id.</summary>
    public static byte[] Removal(long seq, string id) => Write(writer =>
    {
        writer.WriteString("method", "DELETE");
        writer.WriteStartObject("body");
        writer.WriteString("id", id);
        writer.WriteEndObject();
        writer.WriteNumber("seq", seq);
    });

    public static byte[] ResetTo(long seq, string epoch) => Write(writer =>
    {
        writer.WriteString("method", Reset);
        writer.WriteNumber("seq", seq);
        writer.WriteString("epoch", epoch);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
