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
    public Task<T> CreateAsync(T item, CancellationToken cancellationToken = default) => CreateAsync(item, null, cancellationToken);

    /// <summary>
    /// Creates a record in a sorted collection at <paramref name="place"/> (null: at the end). It shows there at once;
    /// the server's position replaces the one this client made up when the reply or the event arrives. Otherwise as
    /// <see cref="CreateAsync(T, CancellationToken)"/>.
    /// </summary>
    public Task<T> CreateAsync(T item, Placement? place, CancellationToken cancellationToken = default)
    {
        var json = _mapper.Write(item);
        var id = RecordJson.Id(json) ?? Guid.NewGuid().ToString();
        var body = RecordJson.WriteBody(json, keepId: false);
        body["id"] = id;
        bool sorted;
        lock (_gate)
        {
            sorted = _sorted;
        }

        if (sorted)
        {
            body.Remove("position"); // the server's, made from the placement
        }

        // Shown at once where it will go (the end unless placed).
        var shown = (JsonObject)body.DeepClone();
        if (sorted && LocalPosition(id, place ?? Placement.End) is { } position)
        {
            shown["position"] = position;
        }

        var path = place is null ? Path : $"{Path}?{place.ToQuery()}";
        return WriteAsync(id, new PendingWrite(WriteKind.Create, shown), "create", token => Writes == WriteChannel.Socket
            ? SocketWriteAsync("POST", (JsonObject)body.DeepClone(), null, "create", id, token, place)
            : _client.SendJsonAsync(HttpMethod.Post, path, body.DeepClone(), null, "create", id, token), cancellationToken);
    }

    /// <summary>
    /// Moves a record of a sorted collection (REST <c>POST path/{id}/move</c>, or the socket's MOVE): before or after
    /// another record, or to the start or the end. It moves in <see cref="Items"/> at once (a Replace, then a Move
    /// notification); the task completes with the server's record, or fails — and the record goes back — when the server
    /// refuses (404: an unknown record or anchor, or a collection that is not sorted; 403: not allowed).
    /// </summary>
    public Task<T> MoveAsync(string id, Placement place, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(place);
        var local = new JsonObject();
        if (LocalPosition(id, place) is { } position)
        {
            local["position"] = position;
        }

        return WriteAsync(id, new PendingWrite(WriteKind.Update, local), "move", token => Writes == WriteChannel.Socket
            ? SocketWriteAsync("MOVE", new JsonObject { ["id"] = id }, null, "move", id, token, place)
            : _client.SendJsonAsync(HttpMethod.Post, RecordPath(id) + "/move", place.ToJson(), null, "move", id, token), cancellationToken);
    }

    /// <summary>
    /// A position key for <paramref name="id"/> placed as asked among what is shown now; null when the collection is not
    /// sorted, the anchor is not shown, or the neighbours have no keys to go between (the server's key then shows it).
    /// </summary>
    private string? LocalPosition(string id, Placement place)
    {
        lock (_gate)
        {
            if (!_sorted)
            {
                return null;
            }

            var order = ShownIds();
            order.Remove(id);
            int at;
            if (place.AnchorId is { } anchor)
            {
                var index = order.IndexOf(anchor);
                if (index < 0)
                {
                    return null;
                }

                at = place.Key == "before" ? index : index + 1;
            }
            else
            {
                at = place.Value == "start" ? 0 : order.Count;
            }

            var before = at > 0 ? PositionOf(_shown[order[at - 1]]) : null;
            var after = at < order.Count ? PositionOf(_shown[order[at]]) : null;
            if ((at > 0 && before is null) || (at < order.Count && after is null))
            {
                return null;
            }

            return PositionKeys.Between(before, after);
        }
    }

    /// <summary>
    /// Changes a record with a JSON merge patch (<c>null</c> removes a field); shown at once, rolled back if refused.
    /// With <paramref name="expectedVersion"/> the server refuses (412) when the record changed meanwhile.
    /// </summary>
    public Task<T> UpdateAsync(string id, JsonObject patch, long? expectedVersion = null, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject();
        var sorted = IsSorted;
        foreach (var (name, value) in patch)
        {
            // In a sorted collection the position is the server's, changed only by MoveAsync.
            if (Array.IndexOf(RecordJson.ServerFields, name) < 0 && !(sorted && name == "position"))
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
        CancellationToken cancellationToken, Placement? place = null)
    {
        var data = new JsonObject { ["method"] = method, ["body"] = body };
        if (place is not null)
        {
            data[place.Key] = place.Value; // a sorted collection's POST and MOVE take before|after|to beside the body
        }

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
