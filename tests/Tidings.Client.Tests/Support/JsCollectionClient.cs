using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// The JS client (clients/js on the real Node faye client) with one live collection open, as a child process
/// (js/live-collection.mjs): it writes at random until <see cref="StopWritingAsync"/>, and reports its state on
/// request. Stopped by its PID on dispose (killed if it does not end in time); the script also ends itself at its
/// time limit and when its stdin closes.
/// </summary>
internal sealed partial class JsCollectionClient : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly ChildProcess _process;
    private readonly SemaphoreSlim _asking = new(1, 1);
    private TaskCompletionSource<JsonObject>? _answer;
    private string? _answerKey;
    private int _applied;

    private JsCollectionClient(ChildProcess process)
    {
        _process = process;
        process.Line += OnLine;
    }

    public int Pid => _process.Pid;

    /// <summary>Events the collection has applied so far (as last reported).</summary>
    public int Applied => Volatile.Read(ref _applied);

    public string Output => _process.Output;

    public static async Task<JsCollectionClient> StartAsync(Uri server, string path, int seed, TimeSpan limit)
    {
        var root = Paths.RepoRoot;
        if (!Directory.Exists(Path.Combine(root, "tests", "browser", "node_modules", "faye")))
        {
            throw new InvalidOperationException("faye is not installed under tests/browser/node_modules: run `cd tests/browser && npm ci` (test.sh does).");
        }

        var script = Path.Combine(root, "tests", "Tidings.Client.Tests", "js", "live-collection.mjs");
        string[] arguments =
        [
            script, "--url", server.GetLeftPart(UriPartial.Authority), "--path", path,
            "--seed", seed.ToString(CultureInfo.InvariantCulture),
            "--limit", ((int)limit.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        ];
        var (process, _) = await ChildProcess.StartAsync("node", arguments, Ready(), patience: Patience, stdin: true);
        return new JsCollectionClient(process);
    }

    private void OnLine(string line)
    {
        if (line.StartsWith("progress ", StringComparison.Ordinal))
        {
            Volatile.Write(ref _applied, int.Parse(line.AsSpan(9), CultureInfo.InvariantCulture));
            return;
        }

        if (!line.StartsWith('{') || _answerKey is not { } key)
        {
            return;
        }

        try
        {
            if (JsonNode.Parse(line) is JsonObject reply && reply[key] is JsonObject answer)
            {
                _answer?.TrySetResult(answer);
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // Not an answer (it stays in Output).
        }
    }

    /// <summary>Sends <paramref name="command"/> and returns the <paramref name="key"/> object of its one-line JSON answer.</summary>
    private async Task<JsonObject> AskAsync(string command, string key)
    {
        await _asking.WaitAsync();
        try
        {
            _answer = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
            _answerKey = key;
            await _process.SendLineAsync(command);
            try
            {
                return await _answer.Task.WaitAsync(Patience);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"the JS client did not answer '{command}' within {Patience.TotalSeconds} s:\n{Output}");
            }
        }
        finally
        {
            _answerKey = null;
            _asking.Release();
        }
    }

    /// <summary>Stops the random writes and waits for those under way to settle; returns the write counts.</summary>
    public Task<JsonObject> StopWritingAsync() => AskAsync("stop", "stopped");

    /// <summary>
    /// The collection now: <c>items</c>, <c>pending</c> (ids), <c>seq</c>, <c>applied</c>, <c>problems</c> (an event applied
    /// twice, a list kept from the events that differs from the items) and unexpected write <c>errors</c>.
    /// </summary>
    public Task<JsonObject> StateAsync() => AskAsync("state", "state");

    public async ValueTask DisposeAsync()
    {
        _process.Line -= OnLine;
        try
        {
            await _process.SendLineAsync("exit");
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            // It has ended already.
        }

        // Then by its PID: SIGTERM, killed if it still runs after a grace period.
        await _process.DisposeAsync();
        _asking.Dispose();
    }

    [GeneratedRegex(@"js live collection ready: (?<url>http://\S+)")]
    private static partial Regex Ready();
}
