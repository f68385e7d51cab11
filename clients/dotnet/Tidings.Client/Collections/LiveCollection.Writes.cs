using System.Globalization;
using System.Text.Json.Nodes;

namespace Tidings.Client.Collections;

public sealed partial class LiveCollection<T>
{
    /// <summary>
    /// Creates a record. It shows in <see cref="Items"/> at once under a client UUID (or its own <c>id</c>); the task
    /// completes with the server's record, or fails with a <see cref="TidingsException"/> (and the record goes away
    /// again) when the server refuses it or no answer comes within <c>WriteTimeout</c> (408). Unanswered requests are
    /// sent again: a repeated create with the same id creates nothing. Null members and server fields are not sent.
    /// </summary>
    public Task<T> CreateAsync(T item, CancellationToken cancellationToken = default)
    {
        var json = _mapper.Write(item);
        var id = RecordJson.Id(json) ?? Guid.NewGuid().ToString();
        var body = RecordJson.WriteBody(json, keepId: false);
        body["id"] = id;
        return WriteAsync(id, new PendingWrite(WriteKind.Create, body), "create", token => Writes == WriteChannel.Socket
            ? SocketWriteAsync("POST", (JsonObject)body.DeepClone(), null, "create", id, token)
            : _client.SendJsonAsync(HttpMethod.Post, Path, body.DeepClone(), null, "create", id, token), cancellationToken);
    }

    /// <summary>
    /// Changes a record with a JSON merge patch (<c>null</c> removes a field); shown at once, rolled back if refused.
    /// With <paramref name="expectedVersion"/> the server refuses (412) when the record changed meanwhile.
    /// </summary>
    public Task<T> UpdateAsync(string id, JsonObject patch, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject();
        foreach (var (name, value) in patch)
        {
            if (Array.IndexOf(RecordJson.ServerFields, name) < 0)
            {
                body[name] = value?.DeepClone();
            }
        }

        return WriteAsync(id, new PendingWrite(WriteKind.Update, body), "update", token => Writes == WriteChannel.Socket
            ? SocketWriteAsync("PATCH", WithId(body, id), expectedVersion, "update", id, token)
            : _client.SendJsonAsync(HttpMethod.Patch, RecordPath(id), body.DeepClone(), expectedVersion, "update", id, token), cancellationToken);
    }

    /// <summary>Replaces a record's writable fields with <paramref name="item"/>'s (PUT); shown at once, rolled back if refused.</summary>
    public Task<T> ReplaceAsync(string id, T item, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        var body = RecordJson.WriteBody(_mapper.Write(item), keepId: false);
        return WriteAsync(id, new PendingWrite(WriteKind.Update, body, replace: true), "update", token => Writes == WriteChannel.Socket
            ? SocketWriteAsync("PUT", WithId(body, id), expectedVersion, "update", id, token)
            : _client.SendJsonAsync(HttpMethod.Put, RecordPath(id), body.DeepClone(), expectedVersion, "update", id, token), cancellationToken);
    }

    /// <summary>Deletes a record; it disappears at once and comes back if the server refuses. Already gone (404) counts as deleted.</summary>
    public async Task DeleteAsync(string id, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        await WriteAsync(id, new PendingWrite(WriteKind.Delete, null), "delete", async token =>
        {
            try
            {
                if (Writes == WriteChannel.Socket)
                {
                    await SocketWriteAsync("DELETE", new JsonObject { ["id"] = id }, expectedVersion, "delete", id, token);
                }
                else
                {
                    await _client.SendJsonAsync(HttpMethod.Delete, RecordPath(id), null, expectedVersion, "delete", id, token);
                }
            }
            catch (TidingsException ex) when (ex.Status == 404)
            {
            }

            return Deleted;
        }, cancellationToken);
    }

    private string RecordPath(string id) => $"{Path}/{Uri.EscapeDataString(id)}";

    private static JsonObject WithId(JsonObject body, string id)
    {
        var copy = (JsonObject)body.DeepClone();
        copy["id"] = id;
        return copy;
    }

    /// <summary>A write as a Bayeux publish; the reply's <c>ext.tidings.record</c> is the outcome.</summary>
    private async Task<JsonObject?> SocketWriteAsync(string method, JsonObject body, long? expectedVersion, string operation, string id,
        CancellationToken cancellationToken)
    {
        var data = new JsonObject { ["method"] = method, ["body"] = body };
        if (expectedVersion is { } version)
        {
            data["version"] = version;
        }

        try
        {
            var reply = await _client.Bayeux.PublishAsync(Path, data, cancellationToken);
            return reply["ext"]?["tidings"]?["record"] as JsonObject;
        }
        catch (TidingsException ex) when (ex.Operation == "publish")
        {
            throw new TidingsException($"{operation} {Path} ({id}): {ex.Message}", ex.Status, ex.Errors, ex)
            {
                Operation = operation,
                RecordId = id,
            };
        }
    }

    private async Task<T> WriteAsync(string id, PendingWrite write, string operation, Func<CancellationToken, Task<JsonObject?>> send,
        CancellationToken cancellationToken)
    {
        Mutate(() =>
        {
            if (!_pending.TryGetValue(id, out var writes))
            {
                _pending[id] = writes = [];
            }

            writes.Add(write);
            Refresh(id);
        });

        var timeout = _client.Options.WriteTimeout;
        using var deadline = new CancellationTokenSource(timeout, _client.Options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    var result = await send(linked.Token);
                    JsonObject? record = null;
                    Mutate(() =>
                    {
                        if (ReferenceEquals(result, Deleted))
                        {
                            _confirmed.Remove(id);
                            Tomb(id);
                        }
                        else if (result is not null)
                        {
                            ApplyReply(result);
                        }

                        RemovePending(id, write);
                        record = _confirmed.GetValueOrDefault(id) ?? result;
                    });
                    return record is null || ReferenceEquals(record, Deleted) ? default! : _mapper.Read(record);
                }
                catch (TidingsException ex) when (ex.Status is 0 or 429 && !linked.IsCancellationRequested)
                {
                    // No answer, or "slow down": send again (creates are idempotent by their id).
                    var delay = TimeSpan.FromMilliseconds(Math.Min(250 * (attempt + 1), 2000));
                    await Task.Delay(delay, _client.Options.TimeProvider, linked.Token);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException && deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw Fail(id, write, new TidingsException(
                $"{operation} {Path} ({id}): no answer within {timeout.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s (WriteTimeout)", 408, null, ex)
            {
                Operation = operation,
                RecordId = id,
            });
        }
        catch (TidingsException ex)
        {
            throw Fail(id, write, ex);
        }
        catch (OperationCanceledException)
        {
            Mutate(() => RemovePending(id, write));
            throw;
        }
    }

    private TidingsException Fail(string id, PendingWrite write, TidingsException error)
    {
        Mutate(() =>
        {
            RemovePending(id, write);
            Report(error);
        });
        return error;
    }

    private void RemovePending(string id, PendingWrite write)
    {
        if (!_pending.TryGetValue(id, out var writes))
        {
            return;
        }

        writes.Remove(write);
        if (writes.Count == 0)
        {
            _pending.Remove(id);
        }

        Refresh(id);
    }

    /// <summary>A write's answer: taken when newer than what is held (by version), unless the stream already deleted it.</summary>
    private void ApplyReply(JsonObject record)
    {
        if (RecordJson.Id(record) is not { } id || _tombstones.Contains(id))
        {
            return;
        }

        if (_confirmed.TryGetValue(id, out var held) && !RecordJson.Newer(record, held))
        {
            return;
        }

        _confirmed[id] = record;
    }
}
