using System.Buffers.Text;
using System.Diagnostics;
using System.Text;

namespace Tidings.Bench;

/// <summary>
/// Publishes at a target rate (changeable while running) from a dedicated thread, round-robin over its
/// connections; each payload carries its send timestamp: <c>{"t":TICKS,"p":"xxxx…"}</c>. A publisher that
/// falls behind (the server stopped reading) shows up as <see cref="Published"/> lagging the target.
/// </summary>
public sealed class Publisher : IDisposable
{
    private const int PaddingBytes = 100;
    private static readonly byte[] Padding = Encoding.ASCII.GetBytes(new string('x', PaddingBytes));

    private readonly Connection[] _connections;
    private readonly byte[][] _channels;
    private readonly Protocol _protocol;
    private readonly Thread _thread;
    private volatile bool _stopping;
    private double _rate;
    private long _published;

    public Publisher(Connection[] connections, string[] channels, Protocol protocol)
    {
        _connections = connections;
        _channels = [.. channels.Select(Encoding.UTF8.GetBytes)];
        _protocol = protocol;
        _thread = new Thread(Run) { IsBackground = true, Name = "publisher" };
        _thread.Start();
    }

    /// <summary>Messages per second, spread over the channels round-robin.</summary>
    public double Rate
    {
        get => Volatile.Read(ref _rate);
        set => Volatile.Write(ref _rate, value);
    }

    public long Published => Interlocked.Read(ref _published);

    private void Run()
    {
        var buffer = new byte[1024];
        var last = Stopwatch.GetTimestamp();
        double due = 0;
        long n = 0;
        while (!_stopping)
        {
            var now = Stopwatch.GetTimestamp();
            due += Rate * (now - last) / Stopwatch.Frequency;
            last = now;
            // Never build up more than 50 ms of backlog: a stalled publisher does not burst afterwards.
            due = Math.Min(due, Math.Max(1, Rate / 20));
            while (due >= 1 && !_stopping)
            {
                var connection = _connections[n % _connections.Length];
                var channel = _channels[n % _channels.Length];
                var length = Format(buffer, channel, connection, Stopwatch.GetTimestamp());
                connection.SendText(buffer.AsSpan(0, length));
                Interlocked.Increment(ref _published);
                n++;
                due -= 1;
            }

            Thread.Sleep(1);
        }
    }

    private int Format(byte[] buffer, byte[] channel, Connection connection, long timestamp)
    {
        var span = buffer.AsSpan();
        var n = 0;
        Append(span, ref n, "[{\"channel\":\""u8);
        Append(span, ref n, channel);
        if (_protocol == Protocol.Bayeux)
        {
            Append(span, ref n, "\",\"clientId\":\""u8);
            Append(span, ref n, connection.ClientIdUtf8);
            Append(span, ref n, "\",\"id\":\"p"u8);
            Utf8Formatter.TryFormat(connection.NextId(), span[n..], out var idLength);
            n += idLength;
        }

        Append(span, ref n, "\",\"data\":{\"t\":"u8);
        Utf8Formatter.TryFormat(timestamp, span[n..], out var written);
        n += written;
        Append(span, ref n, ",\"p\":\""u8);
        Append(span, ref n, Padding);
        Append(span, ref n, "\"}}]"u8);
        return n;
    }

    private static void Append(Span<byte> span, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(span[n..]);
        n += bytes.Length;
    }

    public void Dispose()
    {
        _stopping = true;
        _thread.Join();
    }
}
