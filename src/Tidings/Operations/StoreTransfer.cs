using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Collections;
using Tidings.Storage;

namespace Tidings.Operations;

/// <summary>
/// Whole-store export and import as JSON lines: a header line, then one line per record —
/// <c>{"path": "/api/todos", "id": "…", "version": 3, "position": null, "record": {…}}</c> — in the store's creation
/// order, so an import lists every collection in the order the source did. Records are the whole state: the change log
/// is not carried; an imported store starts every channel at seq 0 under its own epoch, so clients of the source reload.
/// </summary>
/// <remarks>
/// The jobs of queues are not exported (their claim state lives beside the records and a copied job would run again).
/// An import goes only into an empty store (no record, no channel ever written) and is checked whole before anything is
/// written, so a bad file changes nothing.
/// </remarks>
public sealed class StoreTransfer(ITidingsStore store, CollectionRegistry registry, TimeProvider time)
{
    /// <summary>Records read per store transaction while exporting, and written per transaction while importing.</summary>
    public const int PageSize = 500;

    /// <summary>The longest line an import accepts (a record is at most <c>Tidings:MaxBodyBytes</c> when written over REST).</summary>
    public const int MaxLineBytes = 4 * 1024 * 1024;

    private const string Format = "tidings-export";

    /// <summary>Writes the export to <paramref name="output"/> page by page (never the whole store in memory).</summary>
    /// <param name="under">Only this collection path and the paths below it (e.g. <c>/api/flows</c>); null for all.</param>
    /// <returns>How many records it wrote.</returns>
    public async Task<long> ExportAsync(Stream output, string? under, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(64 * 1024);
        var epoch = await store.ReadAsync(r => r.Epoch, cancellationToken);
        using (var header = new Utf8JsonWriter(buffer))
        {
            header.WriteStartObject();
            header.WriteString("format", Format);
            header.WriteNumber("version", 1);
            header.WriteString("epoch", epoch);
            header.WriteString("at", time.GetUtcNow());
            if (under is not null)
            {
                header.WriteString("path", under);
            }

            header.WriteEndObject();
        }

        buffer.Write("\n"u8);
        long after = 0, count = 0;
        while (true)
        {
            var from = after;
            var page = await store.ReadAsync(r => r.ExportPage(under, from, PageSize), cancellationToken);
            foreach (var exported in page)
            {
                after = exported.Order;
                if (registry.Resolve(exported.Path)?.Collection.Queue is not null)
                {
                    continue; // jobs are not exported (see remarks)
                }

                using (var line = new Utf8JsonWriter(buffer))
                {
                    line.WriteStartObject();
                    line.WriteString("path", exported.Path);
                    line.WriteString("id", exported.Record.Id);
                    line.WriteNumber("version", exported.Record.Version);
                    line.WriteString("position", exported.Record.Position);
                    line.WritePropertyName("record");
                    line.WriteRawValue(exported.Record.Json, skipInputValidation: true);
                    line.WriteEndObject();
                }

                buffer.Write("\n"u8);
                count++;
            }

            await output.WriteAsync(buffer.WrittenMemory, cancellationToken);
            await output.FlushAsync(cancellationToken);
            buffer.Clear();
            if (page.Count < PageSize)
            {
                return count;
            }
        }
    }

    /// <summary>
    /// Checks the whole export at <paramref name="open"/> (opened twice: once to check, once to load), then loads it into
    /// this store, which must be empty.
    /// </summary>
    public async Task<ImportResult> ImportAsync(Func<Stream> open, CancellationToken cancellationToken)
    {
        if (!await store.ReadAsync(r => r.IsEmpty(), cancellationToken))
        {
            return ImportResult.NotEmpty;
        }

        long records = 0;
        await using (var check = open())
        {
            var problem = await ReadAsync(check, _ => records++, cancellationToken);
            if (problem is not null)
            {
                return ImportResult.Invalid(problem);
            }
        }

        var batch = new List<(string Path, StoredRecord Record)>(PageSize);
        var first = true;
        string? stopped;
        await using (var load = open())
        {
            stopped = await ReadAsync(load, batch.Add, cancellationToken, flush: async () =>
            {
                var rows = batch.ToArray();
                batch.Clear();
                var checkEmpty = first; // the first transaction checks again: someone may have written since the check above
                first = false;
                return await store.WriteAsync(w =>
                {
                    if (checkEmpty && !w.IsEmpty())
                    {
                        return false;
                    }

                    foreach (var (path, record) in rows)
                    {
                        w.Put(path, record);
                    }

                    return true;
                }, cancellationToken);
            });
        }

        return stopped is null ? ImportResult.Done(records) : ImportResult.NotEmpty;
    }

    /// <summary>Reads every line; returns the first problem ("line 7: …") or null. <paramref name="flush"/> runs every
    /// <see cref="PageSize"/> records and at the end; it returns false to stop.</summary>
    private async Task<string?> ReadAsync(Stream input, Action<(string, StoredRecord)> each, CancellationToken cancellationToken,
        Func<Task<bool>>? flush = null)
    {
        var reader = PipeReader.Create(input);
        var lineNumber = 0;
        var pending = 0;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken);
                var buffer = result.Buffer;
                while (TryTakeLine(ref buffer, result.IsCompleted, out var line))
                {
                    lineNumber++;
                    var text = Encoding.UTF8.GetString(line).Trim();
                    if (text.Length == 0)
                    {
                        continue;
                    }

                    if (lineNumber == 1)
                    {
                        if (Header(text) is { } wrong)
                        {
                            return $"line 1: {wrong}";
                        }

                        continue;
                    }

                    if (Entry(text, out var entry) is { } problem)
                    {
                        return $"line {lineNumber}: {problem}";
                    }

                    each(entry);
                    if (flush is not null && ++pending == PageSize)
                    {
                        pending = 0;
                        if (!await flush())
                        {
                            return "the store is no longer empty";
                        }
                    }
                }

                if (buffer.Length > MaxLineBytes)
                {
                    return $"line {lineNumber + 1}: longer than {MaxLineBytes} bytes";
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            if (lineNumber == 0)
            {
                return "the file is empty (an export starts with its header line)";
            }

            if (flush is not null && pending > 0 && !await flush())
            {
                return "the store is no longer empty";
            }

            return null;
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    private static bool TryTakeLine(ref ReadOnlySequence<byte> buffer, bool completed, out byte[] line)
    {
        if (buffer.PositionOf((byte)'\n') is { } end)
        {
            line = buffer.Slice(0, end).ToArray();
            buffer = buffer.Slice(buffer.GetPosition(1, end));
            return true;
        }

        if (completed && buffer.Length > 0 && buffer.Length <= MaxLineBytes)
        {
            line = buffer.ToArray();
            buffer = buffer.Slice(buffer.End);
            return true;
        }

        line = [];
        return false;
    }

    private static string? Header(string text)
    {
        try
        {
            return JsonNode.Parse(text) is JsonObject header && header["format"]?.GetValue<string>() == Format
                ? null
                : $"not a Tidings export (the header line must say \"format\": \"{Format}\")";
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return "not a Tidings export (the first line is not its JSON header)";
        }
    }

    private string? Entry(string text, out (string Path, StoredRecord Record) entry)
    {
        entry = default;
        JsonObject line;
        try
        {
            line = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException ex)
        {
            return $"not JSON ({ex.Message})";
        }

        try
        {
            var path = line["path"]?.GetValue<string>();
            var id = line["id"]?.GetValue<string>();
            var version = line["version"]?.GetValue<long>() ?? 0;
            var position = line["position"]?.GetValue<string>();
            if (path is null || registry.Resolve(path) is not { } target || target.Collection.Queue is not null)
            {
                return $"'{path}' is not a collection this app declares";
            }

            if (line["record"] is not JsonObject record || string.IsNullOrEmpty(id) || record["id"]?.GetValue<string>() != id || version < 1
                || record["version"]?.GetValue<long>() != version)
            {
                return "a record needs an id and a version (at least 1) that match its 'record'";
            }

            if (position is not null && !target.Collection.IsSorted)
            {
                return $"'{path}' is not sorted: its records have no position";
            }

            // The record's own text, as exported (re-serializing would change escapes, e.g. '+' in dates).
            using var document = JsonDocument.Parse(text);
            entry = (path, new StoredRecord(id, version, document.RootElement.GetProperty("record").GetRawText(), position));
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException)
        {
            return $"a field has the wrong type ({ex.Message})";
        }
    }
}

/// <summary>What an import did: loaded <see cref="Records"/>, or refused (the store is not empty, or the file is bad).</summary>
public sealed record ImportResult(bool Loaded, long Records, string? Problem, bool StoreNotEmpty)
{
    internal static readonly ImportResult NotEmpty = new(false, 0, "The store is not empty: import into a new store.", true);

    internal static ImportResult Invalid(string problem) => new(false, 0, problem, false);

    internal static ImportResult Done(long records) => new(true, records, null, false);
}
