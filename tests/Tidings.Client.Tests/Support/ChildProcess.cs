using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// A server started as a child process: waits for the line that names its address, keeps the last of its output for
/// failure messages, and is stopped by its own PID (killed with its children when it does not stop in time).
/// </summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, Regex listening)
    {
        _process = process;
        void OnLine(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(e.Data);
                if (_output.Length > 16_000)
                {
                    _output.Remove(0, _output.Length - 8_000);
                }
            }

            Line?.Invoke(e.Data);
            if (listening.Match(e.Data) is { Success: true } match)
            {
                _listening.TrySetResult(new Uri(match.Groups["url"].Value));
            }
        }

        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException("the process exited before it listened:\n" + Output));
    }

    public int Pid => _process.Id;

    /// <summary>Each line the process writes (stdout or stderr), as it comes.</summary>
    public event Action<string>? Line;

    /// <summary>Writes one line to the process's standard input (started with <c>stdin: true</c>).</summary>
    public async Task SendLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<(ChildProcess Process, Uri Address)> StartAsync(string fileName, IEnumerable<string> arguments, Regex listening,
        string? workingDirectory = null, TimeSpan? patience = null, bool stdin = false)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = stdin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        var child = new ChildProcess(process, listening);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var address = await child._listening.Task.WaitAsync(patience ?? TimeSpan.FromSeconds(30));
            return (child, address);
        }
        catch
        {
            await child.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the process: SIGTERM-like close first, then a kill after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (_process.HasExited)
        {
            return;
        }

        try
        {
            // Process.Kill sends SIGKILL; ask politely first so the server ends sessions as it would in production.
            using var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await term!.WaitForExitAsync();
            await _process.WaitForExitAsync().WaitAsync(grace ?? TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Kill();
        }
    }

    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(3));
        _process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (?<url>http://\S+)")]
    public static partial Regex AspNetCoreListening();
}
