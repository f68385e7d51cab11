using System.Diagnostics;

namespace Tidings.Bench;

/// <summary>CPU time and resident memory of a process, from /proc (the server's, by pid, and our own).</summary>
public readonly record struct ProcessSample(long Timestamp, double CpuSeconds, long RssKb, double OwnCpuSeconds)
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    public static ProcessSample Read(int pid)
    {
        double cpu = 0;
        long rss = 0;
        try
        {
            // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            cpu = (long.Parse(fields[11]) + long.Parse(fields[12])) / ClockTicksPerSecond;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim());
                }
            }
        }
        catch (IOException)
        {
            // The server is gone: the caller sees zeros.
        }

        return new ProcessSample(Stopwatch.GetTimestamp(), cpu, rss, Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds);
    }

    /// <summary>Server CPU between two samples, in % of one core (200% = both cores of this machine).</summary>
    public static double CpuPercent(ProcessSample from, ProcessSample to) =>
        100 * (to.CpuSeconds - from.CpuSeconds) / Seconds(from, to);

    /// <summary>This load tool's CPU between two samples, in % of one core.</summary>
    public static double OwnCpuPercent(ProcessSample from, ProcessSample to) =>
        100 * (to.OwnCpuSeconds - from.OwnCpuSeconds) / Seconds(from, to);

    public static double Seconds(ProcessSample from, ProcessSample to) =>
        (double)(to.Timestamp - from.Timestamp) / Stopwatch.Frequency;
}
