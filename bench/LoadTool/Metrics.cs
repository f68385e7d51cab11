using System.Diagnostics;

namespace Tidings.Bench;

/// <summary>
/// What every connection reports into. Latencies go to the current measurement window's recorder (none
/// between windows), into a histogram per thread, so receive loops on different cores share no counter.
/// </summary>
public sealed class Metrics
{
    private long _socketsClosed;
    private long _connectReplies;
    private long _errors;
    private string? _firstError;
    private volatile Recorder? _current;

    public Metrics(byte[] marker)
    {
        Marker = marker;
    }

    /// <summary>What precedes the send timestamp in a payload (<c>"t":</c>, or <c>"title":"</c> for REST-created records).</summary>
    public byte[] Marker { get; }

    /// <summary>Optional per-sample hook (end-to-end scenario: when did the last subscriber get each event).</summary>
    public Action<long, long>? OnSample { get; set; }

    public long Errors => Interlocked.Read(ref _errors);

    public long SocketsClosed => Interlocked.Read(ref _socketsClosed);

    public long ConnectReplies => Interlocked.Read(ref _connectReplies);

    public void SocketClosed() => Interlocked.Increment(ref _socketsClosed);

    public void ConnectReplied() => Interlocked.Increment(ref _connectReplies);

    public string? FirstError => _firstError;

    public void Error(string message)
    {
        if (Interlocked.Increment(ref _errors) == 1)
        {
            _firstError = message;
        }
    }

    public Recorder Begin()
    {
        var recorder = new Recorder();
        _current = recorder;
        return recorder;
    }

    public void End() => _current = null;

    public void Record(long sent, long now)
    {
        _current?.Record(now - sent);
        OnSample?.Invoke(sent, now);
    }
}

/// <summary>One measurement window: a histogram per receiving thread, merged when the window closes.</summary>
public sealed class Recorder
{
    [ThreadStatic]
    private static Recorder? t_owner;

    [ThreadStatic]
    private static Histogram? t_histogram;

    private readonly List<Histogram> _histograms = [];

    public void Record(long elapsedTicks)
    {
        if (!ReferenceEquals(t_owner, this))
        {
            var histogram = new Histogram();
            lock (_histograms)
            {
                _histograms.Add(histogram);
            }

            t_histogram = histogram;
            t_owner = this;
        }

        t_histogram!.Record(elapsedTicks);
    }

    /// <summary>All threads' samples so far (a thread still recording may be a few samples ahead).</summary>
    public Histogram Merge()
    {
        var merged = new Histogram();
        lock (_histograms)
        {
            foreach (var histogram in _histograms)
            {
                merged.Add(histogram);
            }
        }

        return merged;
    }
}

/// <summary>Log-linear histogram of microseconds: 64 sub-buckets per power of two (under 1.6% error).</summary>
public sealed class Histogram
{
    private const int SubBits = 6;
    private readonly long[] _counts = new long[64 << SubBits];

    public long Count { get; private set; }

    public long MaxMicros { get; private set; }

    public void Record(long elapsedTicks)
    {
        var micros = Math.Max(0, elapsedTicks * 1_000_000 / Stopwatch.Frequency);
        _counts[Index(micros)]++;
        Count++;
        if (micros > MaxMicros)
        {
            MaxMicros = micros;
        }
    }

    public void RecordMicros(long micros) => Record(micros * Stopwatch.Frequency / 1_000_000);

    public void Add(Histogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        MaxMicros = Math.Max(MaxMicros, other.MaxMicros);
    }

    /// <summary>The value (ms) at or below which <paramref name="percentile"/>% of samples fall.</summary>
    public double PercentileMs(double percentile)
    {
        if (Count == 0)
        {
            return double.NaN;
        }

        var rank = (long)Math.Ceiling(percentile / 100 * Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(UpperMicros(i), MaxMicros) / 1000.0;
            }
        }

        return MaxMicros / 1000.0;
    }

    private static int Index(long micros)
    {
        if (micros < (1 << SubBits))
        {
            return (int)micros;
        }

        // Keep the leading 1 + SubBits bits: [64,128) << shift.
        var shift = 63 - (int)long.LeadingZeroCount(micros) - SubBits;
        return ((shift + 1) << SubBits) + (int)(micros >> shift) - (1 << SubBits);
    }

    private static long UpperMicros(int index)
    {
        if (index < (1 << SubBits))
        {
            return index;
        }

        var shift = (index >> SubBits) - 1;
        var top = (index & ((1 << SubBits) - 1)) + (1 << SubBits);
        return ((long)(top + 1) << shift) - 1;
    }
}
