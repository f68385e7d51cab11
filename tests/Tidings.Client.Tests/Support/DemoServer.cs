using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// The real demo server (samples/Demo) as a child process on a free loopback port, with its own data folder. Restarts
/// keep the data (same epoch, same log) and take a new port; reach it through a <see cref="TcpProxy"/> to keep one address.
/// </summary>
internal sealed class DemoServer : IAsyncDisposable
{
    private readonly string[] _settings;
    private ChildProcess? _process;

    private DemoServer(string[] settings)
    {
        _settings = settings;
        DataDirectory = Path.Combine(Path.GetTempPath(), "tidings-client-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(DataDirectory);
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
    }

    public string DataDirectory { get; }

    public Uri Address { get; private set; } = null!;

    /// <summary>For the tests' own REST calls (the ground truth).</summary>
    public HttpClient Http { get; }

    public static async Task<DemoServer> StartAsync(params string[] settings)
    {
        var server = new DemoServer(settings);
        try
        {
            await server.StartProcessAsync();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    private async Task StartProcessAsync()
    {
        if (!File.Exists(Paths.DemoDll))
        {
            throw new InvalidOperationException($"The demo server is not built at {Paths.DemoDll}: dotnet build samples/Demo.");
        }

        // These tests drive many requests from one address; rate limits are the server's own tests' business.
        string[] arguments =
        [
            Paths.DemoDll, "--urls", "http://127.0.0.1:0", "--data", DataDirectory,
            "--Tidings:RequestsPerSecond=1000000", "--Tidings:RequestBurst=1000000",
            "--Tidings:PublishesPerSecond=1000000", "--Tidings:PublishBurst=1000000",
            "--Tidings:HandshakesPerSecond=1000000", "--Tidings:HandshakeBurst=1000000", "--Bayeux:MaxSessionsPerAddress=1000000",
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
            .. _settings,
        ];
        var (process, address) = await ChildProcess.StartAsync("dotnet", arguments, ChildProcess.AspNetCoreListening());
        _process = process;
        Address = address;
    }

    public string Output => _process?.Output ?? "";

    /// <summary>Stops the process (all sessions are lost) and starts it again on the same data.</summary>
    public async Task RestartAsync()
    {
        if (_process is { } old)
        {
            await old.DisposeAsync();
        }

        await StartProcessAsync();
    }

    /// <summary>Signs in by name (<c>POST /api/session</c>) and returns the bearer token.</summary>
    public async Task<string> SignInAsync(string name)
    {
        using var response = await Http.PostAsJsonAsync(new Uri(Address, "/api/session"), new { name });
        response.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        return (string)body["token"]!;
    }

    /// <summary>The server's list of a collection (<c>GET path</c>), as the given user.</summary>
    public async Task<(JsonArray Items, long Seq)> ListAsync(string path, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Address, path));
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        var body = JsonNode.Parse(text)!;
        return (body["items"]!.AsArray(), (long)body["seq"]!);
    }

    /// <summary>A REST write as <paramref name="token"/>'s user; returns the status and body.</summary>
    public async Task<(int Status, JsonNode? Body)> SendAsync(HttpMethod method, string path, JsonNode? body = null, string? token = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(Address, path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            await process.DisposeAsync();
        }

        Http.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
