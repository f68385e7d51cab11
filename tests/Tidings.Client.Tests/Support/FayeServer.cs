using System.Text.RegularExpressions;

namespace Tidings.Client.Tests.Support;

/// <summary>Faye's own Node server (bench/faye-server.js) as a child process on a free loopback port.</summary>
internal static partial class FayeServer
{
    public static async Task<(ChildProcess Process, Uri Address)> StartAsync()
    {
        var root = Paths.RepoRoot;
        var modules = Path.Combine(root, "tests", "interop", "node_modules");
        if (!Directory.Exists(Path.Combine(modules, "faye")))
        {
            throw new InvalidOperationException($"faye is not installed under {modules}: run `cd tests/interop && npm ci` (test.sh does).");
        }

        Environment.SetEnvironmentVariable("NODE_PATH", modules);
        var (process, bayeux) = await ChildProcess.StartAsync("node", [Path.Combine(root, "bench", "faye-server.js"), "0"], Listening());
        return (process, new Uri(bayeux.GetLeftPart(UriPartial.Authority)));
    }

    [GeneratedRegex(@"faye listening on (?<url>http://\S+)")]
    private static partial Regex Listening();
}
