using System.Globalization;
using System.Text.Json.Nodes;
using Tidings.Client.Bayeux;

namespace Tidings.Client.Collections;

public sealed partial class LiveCollection<T>
{
    // Guarded by _gate: the load/catch-up round.
    private bool _loading;
    private bool _reloadWanted;
    private bool _catchUpWanted;

    private ValueTask OnMessageAsync(BayeuxMessage message, CancellationToken cancellationToken)
    {
        if (message.Data is not JsonObject data)
        {
            ReportBadInput("an event that is not an object");
            return ValueTask.CompletedTask;
        }

        Mutate(() => Receive(data));
        return ValueTask.CompletedTask;
    }

    private void ReportBadInput(string what)
    {
        var error = new TidingsException($"{Path}: dropped {what}", 502) { Operation = "event" };
        _client.ReportBadInput(error.Message);
        Mutate(() => Report(error));
    }

    /// <summary>One message on the channel. Under the lock.</summary>
    private void Receive(JsonObject data)
    {
        if (_closed)
        {
            return;
        }

        var method = RecordJson.String(data["method"]);
        switch (method)
        {
            case "SNAPSHOT":
                if (data["items"] is not JsonArray items || RecordJson.Long(data["seq"]) is not { } snapshotSeq
                    || RecordJson.String(data["epoch"]) is not { } snapshotEpoch)
                {
                    Report(new TidingsException($"{Path}: dropped a SNAPSHOT without items, seq or epoch", 502) { Operation = "event" });
                    return;
                }

                if (data["sorted"] is JsonValue sortedValue && sortedValue.TryGetValue<bool>(out var sorted) && sorted)
                {
                    _sorted = true;
                }

                ResetTo(items, snapshotSeq, snapshotEpoch, data["truncated"] is JsonValue t && t.TryGetValue<bool>(out var cut) && cut);
                return;
            case "RESET":
            {
                // The subscription is live from data.seq on, but the server could not replay up to there.
                var epoch = RecordJson.String(data["epoch"]);
                if (_seq is { } current && epoch == _epoch)
                {
                    // Same history: what we hold is right; fetch only what lies between (a 410 makes it a reload).
                    if (RecordJson.Long(data["seq"]) is { } resetSeq && resetSeq > current)
                    {
                        RequestCatchUp();
                    }

                    return;
                }

                _held.Clear(); // events held from before belong to the old history
                Invalidate(epoch);
                return;
            }

            default:
                if (RecordJson.Long(data["seq"]) is not { } seq)
                {
                    Report(new TidingsException($"{Path}: dropped an event without seq (method {method ?? "none"})", 502) { Operation = "event" });
                    return;
                }

                if (method is not ("POST" or "PUT" or "PATCH" or "DELETE" or "MOVE" or "SKIP"))
                {
                    // Unknown to this client: it still holds a place in the sequence, so it counts as a SKIP.
                    Report(new TidingsException($"{Path}: event {seq} has unknown method '{method}'; skipped", 502) { Operation = "event" });
                }

                if (_seq is { } applied && seq <= applied)
                {
                    return; // a duplicate
                }

                _held[seq] = data;
                Drain();
                return;
        }
    }

    /// <summary>Applies held events while they continue <c>seq</c>; catches up on a gap, or reloads past <see cref="MaxHeld"/>.</summary>
    private void Drain()
    {
        if (_seq is not null)
        {
            while (_held.Remove(_seq.Value + 1, out var next))
            {
                Apply(next);
            }

            while (_held.Count > 0 && _held.First().Key <= _seq.Value)
            {
                _held.Remove(_held.First().Key);
            }
        }

        if (_held.Count > MaxHeld)
        {
            // Too far behind (catch-up keeps failing, or a reload takes long): holding more would only grow. A reload's
            // snapshot covers them; any still missing after it show up as a gap again.
            _held.Clear();
            if (_seq is not null)
            {
                Invalidate(null);
            }

            return;
        }

        if (_seq is not null && _held.Count > 0)
        {
            RequestCatchUp();
        }
    }

    /// <summary>Tests: told every seq applied from the stream or a catch-up, in order.</summary>
    internal Action<long>? Applied { get; set; }

    private void Apply(JsonObject change)
    {
        _seq = RecordJson.Long(change["seq"]);
        Applied?.Invoke(_seq!.Value);
        var method = RecordJson.String(change["method"]);
        // MOVE (a sorted collection): the body is the record after the move, with its new position — applied like a PUT.
        if (method is not ("POST" or "PUT" or "PATCH" or "DELETE" or "MOVE"))
        {
            return; // SKIP: a change this user may not see; it only keeps seq contiguous
        }

        if (change["body"] is not JsonObject body || RecordJson.Id(body) is not { } id)
        {
            return;
        }

        if (method == "DELETE")
        {
            _confirmed.Remove(id);
            Tomb(id);
        }
        else
        {
            // A reply may have brought a newer version already; the stream never moves a record back.
            if (!_confirmed.TryGetValue(id, out var held) || !RecordJson.Newer(held, body))
            {
                _confirmed[id] = body;
            }

            _tombstones.Remove(id);
            MarkCreatesSeen(id);
        }

        Refresh(id);
    }

    private void MarkCreatesSeen(string id)
    {
        if (_pending.TryGetValue(id, out var writes))
        {
            foreach (var write in writes)
            {
                if (write.Kind == WriteKind.Create)
                {
                    write.Seen = true;
                }
            }
        }
    }

    /// <summary>A whole state (snapshot, reload); one older than what is held is ignored.</summary>
    private void ResetTo(JsonArray items, long seq, string epoch, bool truncated)
    {
        if (_seq is { } current && epoch == _epoch && seq < current)
        {
            return;
        }

        _seq = seq;
        _epoch = epoch;
        _truncated = truncated;
        _confirmed = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (item is JsonObject record && RecordJson.Id(record) is { } id)
            {
                _confirmed[id] = record;
            }
        }

        foreach (var id in _pending.Keys)
        {
            if (_confirmed.ContainsKey(id))
            {
                MarkCreatesSeen(id);
            }
        }

        _shown.Clear();
        foreach (var id in _confirmed.Keys.Concat(_pending.Keys))
        {
            if (!_shown.ContainsKey(id) && Visible(id) is { } record)
            {
                _shown[id] = record;
            }
        }

        _loaded = true;
        Emit(ResetChange());
        Drain();
    }

    /// <summary>Forgets the position (keeping what is shown) and reloads from a snapshot.</summary>
    private void Invalidate(string? epoch)
    {
        _seq = null;
        if (epoch is not null)
        {
            _epoch = epoch;
        }

        _reloadWanted = true;
        StartRound();
    }

    /// <summary>
    /// Fetches what this copy is missing (<c>GET ?since=seq&amp;epoch</c>; a 410 or another epoch turns it into a reload).
    /// Harmless when nothing is missing. Called on gaps and whenever the link comes back.
    /// </summary>
    internal void CatchUp() => Mutate(RequestCatchUp);

    /// <summary><see cref="CatchUp"/> under the lock.</summary>
    private void RequestCatchUp()
    {
        if (_closed || !_loaded)
        {
            return;
        }

        _catchUpWanted = true;
        StartRound();
    }

    /// <summary>Reloads the whole collection with <c>GET path</c>; the stream goes on, and the snapshot replaces the state.</summary>
    public void Reload() => Mutate(() => Invalidate(null));

    private void StartRound()
    {
        if (_loading || _closed || !(_reloadWanted || _catchUpWanted))
        {
            return;
        }

        _loading = true;
        _ = Task.Run(RoundAsync);
    }

    private async Task RoundAsync()
    {
        try
        {
            while (true)
            {
                bool reload;
                long since = 0;
                string? epoch = null;
                lock (_gate)
                {
                    if (_closed || !(_reloadWanted || _catchUpWanted))
                    {
                        _loading = false;
                        return;
                    }

                    reload = _reloadWanted || _seq is null;
                    _catchUpWanted = false;
                    if (reload)
                    {
                        _reloadWanted = false;
                    }
                    else
                    {
                        since = _seq!.Value;
                        epoch = _epoch;
                    }
                }

                if (reload)
                {
                    var body = await _client.SendJsonAsync(HttpMethod.Get, Path, null, null, "load", null, CancellationToken.None);
                    if (body?["items"] is not JsonArray items || RecordJson.Long(body["seq"]) is not { } seq || RecordJson.String(body["epoch"]) is not { } bodyEpoch)
                    {
                        throw new TidingsException($"GET {Path}: the answer has no items, seq or epoch", 502) { Operation = "load" };
                    }

                    Mutate(() =>
                    {
                        // Events that arrived meanwhile are held; ResetTo drops those the snapshot covers.
                        if (body["sorted"] is JsonValue sortedValue && sortedValue.TryGetValue<bool>(out var sorted) && sorted)
                        {
                            _sorted = true;
                        }

                        if (_seq is null || seq >= _seq || bodyEpoch != _epoch)
                        {
                            _seq = null;
                            ResetTo(items, seq, bodyEpoch, body["truncated"] is JsonValue t && t.TryGetValue<bool>(out var cut) && cut);
                        }
                    });
                    continue;
                }

                JsonObject? reply;
                try
                {
                    reply = await _client.SendJsonAsync(HttpMethod.Get,
                        $"{Path}?since={since.ToString(CultureInfo.InvariantCulture)}&epoch={Uri.EscapeDataString(epoch ?? "")}",
                        null, null, "load", null, CancellationToken.None);
                }
                catch (TidingsException ex) when (ex.Status == 410)
                {
                    Mutate(() => _reloadWanted = true);
                    continue;
                }

                Mutate(() =>
                {
                    if (RecordJson.String(reply?["epoch"]) != _epoch)
                    {
                        _reloadWanted = true;
                        return;
                    }

                    if (_seq is null)
                    {
                        return; // a RESET arrived meanwhile
                    }

                    if (reply?["changes"] is JsonArray changes)
                    {
                        foreach (var change in changes)
                        {
                            if (change is JsonObject c && RecordJson.Long(c["seq"]) is { } s && s > _seq)
                            {
                                _held[s] = c;
                            }
                        }
                    }

                    Drain();

                    // Drain asks for another round while events past a gap are held; if this round made no progress,
                    // the held events cannot be reached from here: reload.
                    if (_held.Count > 0 && _seq == since)
                    {
                        _reloadWanted = true;
                    }
                });
            }
        }
        catch (Exception ex)
        {
            // Offline shows as the client's state; only real refusals are worth an error.
            if (ex is TidingsException { Status: not 0 } refused)
            {
                Mutate(() => Report(refused));
            }

            lock (_gate)
            {
                if (_seq is null)
                {
                    _reloadWanted = true;
                }
                else
                {
                    _catchUpWanted = true;
                }
            }

            var delay = _client.Options.MinReconnectDelay > TimeSpan.FromMilliseconds(500) ? _client.Options.MinReconnectDelay : TimeSpan.FromMilliseconds(500);
            await Task.Delay(delay, _client.Options.TimeProvider).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            Mutate(() =>
            {
                _loading = false;
                StartRound();
            });
        }
    }
}
