using System.Diagnostics;

namespace Tidings.Bench;

/// <summary>
/// CPU time and resident memory from /proc: the servers' (summed over their pids: one per node), the database
/// server's (its main process and its children: PostgreSQL runs one process per connection), and our own.
/// </summary>
public readonly record struct ProcessSample(long Timestamp, double CpuSeconds, long RssKb, double DatabaseCpuSeconds, double OwnCpuSeconds)
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    public static ProcessSample Read(Target target)
    {
        double cpu = 0;
        long rss = 0;
        foreach (var pid in target.Pids)
        {
            if (Stat(pid) is { } stat)
            {
                cpu += stat.CpuSeconds;
                rss += Rss(pid);
            }
        }

        return new ProcessSample(Stopwatch.GetTimestamp(), cpu, rss, DatabaseCpu(target.DatabasePid), Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds);
    }

    /// <summary>The servers' CPU between two samples, in % of one core (200% = both cores of this machine), all nodes together.</summary>
    public static double CpuPercent(ProcessSample from, ProcessSample to) =>
        100 * (to.CpuSeconds - from.CpuSeconds) / Seconds(from, to);

    /// <summary>The database server's CPU between two samples, in % of one core (0 without one). A backend that exited in between is not counted.</summary>
    public static double DatabaseCpuPercent(ProcessSample from, ProcessSample to) =>
        Math.Max(0, 100 * (to.DatabaseCpuSeconds - from.DatabaseCpuSeconds) / Seconds(from, to));

    /// <summary>This load tool's CPU between two samples, in % of one core.</summary>
    public static double OwnCpuPercent(ProcessSample from, ProcessSample to) =>
        100 * (to.OwnCpuSeconds - from.OwnCpuSeconds) / Seconds(from, to);

    public static double Seconds(ProcessSample from, ProcessSample to) =>
        (double)(to.Timestamp - from.Timestamp) / Stopwatch.Frequency;

    /// <summary>CPU seconds of <paramref name="pid"/> and its direct children (none when <paramref name="pid"/> is 0).</summary>
    private static double DatabaseCpu(int pid)
    {
        if (pid <= 0)
        {
            return 0;
        }

        double cpu = 0;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var candidate) && Stat(candidate) is { } stat && (candidate == pid || stat.ParentPid == pid))
            {
                cpu += stat.CpuSeconds;
            }
        }

        return cpu;
    }

    private static (double CpuSeconds, int ParentPid)? Stat(int pid)
    {
        try
        {
            // Fields after the command name (which may hold spaces): state is field 3, ppid 4, utime 14, stime 15.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return ((long.Parse(fields[11]) + long.Parse(fields[12])) / ClockTicksPerSecond, int.Parse(fields[1]));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The process is gone: it counts for nothing.
            return null;
        }
    }

    private static long Rss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim());
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }

        return 0;
    }
}
