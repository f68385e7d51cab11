using System.Reflection;

namespace Tidings.Client.Tests.Support;

internal static class Paths
{
    private static string Metadata(string key) =>
        typeof(Paths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == key).Value!;

    /// <summary>The demo server's binary (TIDINGS_DEMO_DLL overrides, as for the Node suites).</summary>
    public static string DemoDll =>
        Environment.GetEnvironmentVariable("TIDINGS_DEMO_DLL") is { Length: > 0 } set ? set : Path.GetFullPath(Metadata("DemoDll"));

    public static string RepoRoot => Path.GetFullPath(Metadata("RepoRoot"));
}
