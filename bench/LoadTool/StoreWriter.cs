using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tidings.Bench;

/// <summary>One record written in the store scenario: when it was sent, when the write was answered, who got its event.</summary>
public sealed class StoreWrite(long sent, bool measured)
{
    private int _count;
    private long _last;
    private long _repliedAt;
    private int _ok;

    /// <summary>The send timestamp (Stopwatch ticks); it is also the record's marker field, so events find their write.</summary>
    public long Sent { get; } = sent;

    /// <summary>Sent inside a step's measured window (warm-up writes are tracked only to count deliveries).</summary>
    public bool Measured { get; } = measured;

    public long RepliedAt => Interlocked.Read(ref _repliedAt);

    public bool Ok => Volatile.Read(ref _ok) == 1;

    /// <summary>Subscribers that received the event.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>When the last of them did.</summary>
    public long Last => Interlocked.Read(ref _last);

    public void Replied(long now, bool ok)
    {
        Volatile.Write(ref _ok, ok ? 1 : 0);
        Interlocked.Exchange(ref _repliedAt, now);
    }

    public void Arrived(long now)
    {
        Interlocked.Increment(ref _count);
        long seen;
        while (now > (seen = Interlocked.Read(ref _last)) && Interlocked.CompareExchange(ref _last, now, seen) != seen)
        {
        }
    }
}

/// <summary>
/// The writes of the current step, by send timestamp; cleared between steps so it stays bounded (at most one step's
/// writes). Counters run across steps: callers take differences.
/// </summary>
public sealed class WriteLog
{
    private readonly ConcurrentDictionary<long, StoreWrite> _writes = new();
    private long _lastStamp;
    private long _answered;
    private long _committed;

    /// <summary>Write replies of any kind (a write no longer in flight).</summary>
    public long Answered => Interlocked.Read(ref _answered);

    /// <summary>Successful write replies: changes the store committed.</summary>
    public long Committed => Interlocked.Read(ref _committed);

    /// <summary>A new write stamped now. Stamps are unique (two writers in the same tick get consecutive ones), so an event maps to one write.</summary>
    public StoreWrite Add(bool measured)
    {
        long stamp;
        long last;
        do
        {
            last = Interlocked.Read(ref _lastStamp);
            stamp = Math.Max(Stopwatch.GetTimestamp(), last + 1);
        }
        while (Interlocked.CompareExchange(ref _lastStamp, stamp, last) != last);

        var write = new StoreWrite(stamp, measured);
        _writes[stamp] = write;
        return write;
    }

    /// <summary>A write's reply. A reply to a write of an earlier step still counts as answered.</summary>
    public void Replied(long stamp, long now, bool ok)
    {
        Interlocked.Increment(ref _answered);
        if (ok)
        {
            Interlocked.Increment(ref _committed);
        }

        if (_writes.TryGetValue(stamp, out var write))
        {
            write.Replied(now, ok);
        }
    }

    /// <summary>A subscriber received the event of the write stamped <paramref name="sent"/> (events of earlier steps are ignored).</summary>
    public void Arrived(long sent, long now)
    {
        if (_writes.TryGetValue(sent, out var write))
        {
            write.Arrived(now);
        }
    }

    public List<StoreWrite> Measured() => [.. _writes.Values.Where(w => w.Measured)];

    public void Clear() => _writes.Clear();
}

/// <summary>
/// Writes records at a target rate (changeable while running) from one pacing thread, like <see cref="Publisher"/>.
/// Open loop: a write is sent when it is due, not when the previous one is answered, so a slow server shows as
/// latency rather than as a lower rate. At most one second of writes (100 at least) may be unanswered; beyond that a
/// due write is skipped and counted, which keeps a stalled server from growing the backlog without bound.
/// </summary>
public abstract class StoreWriter : IDisposable
{
    // Records carry ~100 bytes like the fan-out payloads: "<stamp> xxxx…".
    private static readonly string Padding = new('x', 80);

    private readonly Thread _thread;
    private volatile bool _stopping;
    private double _rate;
    private long _sent;
    private long _skipped;
    private volatile bool _measuring;

    protected StoreWriter(WriteLog log, string field)
    {
        Log = log;
        Field = field;
        _thread = new Thread(Run) { IsBackground = true, Name = "store-writer" };
    }

    protected WriteLog Log { get; }

    /// <summary>The record field that carries the send timestamp (the scan marker on the subscriber side).</summary>
    protected string Field { get; }

    /// <summary>Writes per second; 0 pauses.</summary>
    public double Rate
    {
        get => Volatile.Read(ref _rate);
        set => Volatile.Write(ref _rate, value);
    }

    /// <summary>Whether writes sent now belong to the measured window.</summary>
    public bool Measuring
    {
        get => _measuring;
        set => _measuring = value;
    }

    public long Sent => Interlocked.Read(ref _sent);

    public long Skipped => Interlocked.Read(ref _skipped);

    public void Start() => _thread.Start();

    /// <summary>The record's JSON: <c>{"field":"STAMP xxxx…"}</c>.</summary>
    protected string RecordJson(long stamp) => $"{{\"{Field}\":\"{stamp} {Padding}\"}}";

    /// <summary>Sends one write; its reply must end in <see cref="WriteLog.Replied"/>. Called on the pacing thread.</summary>
    protected abstract void Send(StoreWrite write, long n);

    private void Run()
    {
        var last = Stopwatch.GetTimestamp();
        double due = 0;
        long n = 0;
        while (!_stopping)
        {
            var rate = Rate;
            var now = Stopwatch.GetTimestamp();
            due += rate * (now - last) / Stopwatch.Frequency;
            last = now;
            // Never build up more than 50 ms of backlog: a stalled writer does not burst afterwards.
            due = Math.Min(due, Math.Max(1, rate / 20));
            while (due >= 1 && !_stopping)
            {
                due -= 1;
                if (Sent - Log.Answered >= Math.Max(100, rate))
                {
                    Interlocked.Increment(ref _skipped);
                    continue;
                }

                Send(Log.Add(_measuring), n++);
                Interlocked.Increment(ref _sent);
            }

            Thread.Sleep(1);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        if (_thread.IsAlive)
        {
            // Bounded: a socket write blocked on a server that stopped reading must not hold the load tool; the
            // thread is a background thread and ends with the process.
            _thread.Join(TimeSpan.FromSeconds(5));
        }

        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// REST writes: <c>POST collection</c> over a few HTTP/1.1 keep-alive connections, signed in with a bearer token when
/// given. With several endpoints (nodes), write n goes to endpoint n mod count, and the connections are split between them.
/// </summary>
public sealed class RestStoreWriter : StoreWriter
{
    private readonly HttpClient[] _http;
    private readonly string _collection;
    private readonly string?[] _userTokens;
    private readonly Metrics _metrics;

    public RestStoreWriter(WriteLog log, string field, IPEndPoint[] endpoints, string collection, int connections, string?[] userTokens, Metrics metrics)
        : base(log, field)
    {
        var perEndpoint = Math.Max(1, (connections + endpoints.Length - 1) / endpoints.Length);
        _http = [.. endpoints.Select(endpoint => HttpClients.Create(endpoint, perEndpoint))];
        _collection = collection;
        _userTokens = userTokens;
        _metrics = metrics;
    }

    protected override void Send(StoreWrite write, long n) => _ = PostAsync(_http[n % _http.Length], write, _userTokens[n % _userTokens.Length]);

    private async Task PostAsync(HttpClient http, StoreWrite write, string? userToken)
    {
        var ok = false;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _collection)
            {
                Content = new StringContent(RecordJson(write.Sent), Encoding.UTF8, "application/json"),
            };
            if (userToken is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", userToken);
            }

            using var response = await http.SendAsync(request);
            ok = response.StatusCode == HttpStatusCode.Created;
            if (!ok)
            {
                var body = await response.Content.ReadAsStringAsync();
                _metrics.Error($"POST {_collection}: {(int)response.StatusCode} {body[..Math.Min(body.Length, 200)]}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or ObjectDisposedException)
        {
            _metrics.Error($"POST {_collection}: {ex.Message}");
        }

        Log.Replied(write.Sent, Stopwatch.GetTimestamp(), ok);
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var http in _http)
        {
            http.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// Socket writes: a Bayeux publish of <c>{"method":"POST","body":{…}}</c> on the collection's channel, round-robin
/// over a few writer sessions. The message id carries the stamp (<c>"w123…"</c>), so the publish reply names its write.
/// With sessions on several nodes, write n goes to node n mod count (then round-robin over that node's sessions), so
/// the nodes share the writes evenly whether or not the session count divides by the node count.
/// </summary>
public sealed class SocketStoreWriter(WriteLog log, string field, string collection) : StoreWriter(log, field)
{
    private readonly byte[] _channel = Encoding.UTF8.GetBytes(collection);
    private readonly byte[] _buffer = new byte[1024];
    private Connection[][] _byNode = [];

    /// <summary>The writer sessions, grouped by node; called before <see cref="StoreWriter.Start"/>.</summary>
    public void Use(Connection[] sessions) => _byNode = [.. sessions.GroupBy(c => c.EndPoint).Select(node => node.ToArray())];

    protected override void Send(StoreWrite write, long n)
    {
        var node = _byNode[n % _byNode.Length];
        var connection = node[n / _byNode.Length % node.Length];
        var span = _buffer.AsSpan();
        var length = 0;
        Append(span, ref length, "[{\"channel\":\""u8);
        Append(span, ref length, _channel);
        Append(span, ref length, "\",\"clientId\":\""u8);
        Append(span, ref length, connection.ClientIdUtf8);
        Append(span, ref length, "\",\"id\":\"w"u8);
        Utf8Formatter.TryFormat(write.Sent, span[length..], out var written);
        length += written;
        Append(span, ref length, "\",\"data\":{\"method\":\"POST\",\"body\":"u8);
        Append(span, ref length, Encoding.UTF8.GetBytes(RecordJson(write.Sent)));
        Append(span, ref length, "}}]"u8);
        connection.SendText(span[..length]);
    }

    /// <summary>Handles a writer session's frames: each publish reply answers the write its id names.</summary>
    public void OnReply(ReadOnlySpan<byte> payload, Metrics metrics)
    {
        var now = Stopwatch.GetTimestamp();
        var reader = new Utf8JsonReader(payload);
        using var document = JsonDocument.ParseValue(ref reader);
        foreach (var message in document.RootElement.EnumerateArray())
        {
            if (!message.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String
                || id.GetString() is not ['w', .. var digits] || !long.TryParse(digits, out var stamp))
            {
                continue;
            }

            var ok = message.TryGetProperty("successful", out var successful) && successful.ValueKind == JsonValueKind.True;
            if (!ok)
            {
                var error = message.TryGetProperty("error", out var e) ? e.ToString() : message.GetRawText();
                metrics.Error($"publish {Encoding.UTF8.GetString(_channel)}: {error[..Math.Min(error.Length, 200)]}");
            }

            Log.Replied(stamp, now, ok);
        }
    }

    private static void Append(Span<byte> span, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(span[n..]);
        n += bytes.Length;
    }
}

/// <summary>HTTP/1.1 clients for the store scenario: keep-alive, a bounded pool, no cookies (sign-in is by bearer token).</summary>
public static class HttpClients
{
    public static HttpClient Create(IPEndPoint endpoint, int connections) =>
        new(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            // The demo's sign-in also sets a cookie; a cookie-authenticated write without an Origin would be refused as cross-site.
            UseCookies = false,
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(5),
        })
        {
            BaseAddress = new Uri($"http://{endpoint}"),
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(10),
        };
}
