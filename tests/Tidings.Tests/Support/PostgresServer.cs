using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Tidings.Tests.Support;

/// <summary>
/// A real PostgreSQL server from the machine's Debian package, started once for the test run: its own cluster in a
/// temporary folder (initdb as the postgres user), a free loopback port, fsync on, removed when the run ends.
/// Each test asks for a database of its own. Never a stand-in: without PostgreSQL installed these tests fail.
/// </summary>
internal sealed class PostgresServer : IDisposable
{
    private static readonly Lazy<PostgresServer> Shared = new(StartNew, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string _bin;
    private readonly string _folder;

    private PostgresServer(string bin, string folder, int port)
    {
        _bin = bin;
        _folder = folder;
        Port = port;
    }

    /// <summary>The run's shared server. Tests that stop or restart a server start their own (<see cref="StartNew"/>).</summary>
    public static PostgresServer Instance => Shared.Value;

    public int Port { get; }

    private string DataDirectory => Path.Combine(_folder, "data");

    /// <summary>A connection string for the server's maintenance database.</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "tidings_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name};", connection);
            await command.ExecuteNonQueryAsync();
        }

        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name}";
    }

    /// <summary>Stops the server at once (as a crash would) and starts it again on the same port and data.</summary>
    public void Restart()
    {
        Run(Path.Combine(_bin, "pg_ctl"), $"-D {DataDirectory} -m immediate -w stop");
        StartServer();
    }

    public void Stop() => Run(Path.Combine(_bin, "pg_ctl"), $"-D {DataDirectory} -m immediate -w stop");

    public void StartServer() =>
        Run(Path.Combine(_bin, "pg_ctl"),
            $"-D {DataDirectory} -l {Path.Combine(_folder, "server.log")} -w -t 60 " +
            $"-o \"-p {Port} -c listen_addresses=127.0.0.1 -k {_folder} -c fsync=on -c wal_level=logical -c max_connections=300\" start");

    /// <summary>Starts a server of its own; disposing it stops it and removes its files.</summary>
    public static PostgresServer StartNew()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(Directory.Exists).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin): apt-get install postgresql (test.sh does).");
        }

        var folder = Path.Combine(Path.GetTempPath(), "tidings-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        if (Environment.UserName == "root")
        {
            Process.Start("chown", $"-R postgres {folder}")!.WaitForExit();
        }

        var server = new PostgresServer(bin, folder, FreePort());
        Run(Path.Combine(bin, "initdb"), $"-D {server.DataDirectory} -U postgres --auth=trust --no-sync -E UTF8");
        server.StartServer();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Dispose();
        return server;
    }

    public void Dispose()
    {
        if (!Directory.Exists(_folder))
        {
            return;
        }

        try
        {
            Stop();
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }
        finally
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a PostgreSQL tool (as the postgres user when the tests run as root) and fails loudly if it fails.</summary>
    private static void Run(string tool, string arguments)
    {
        var info = Environment.UserName == "root"
            ? new ProcessStartInfo("runuser", $"-u postgres -- {tool} {arguments}")
            : new ProcessStartInfo(tool, arguments);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(tool)} {arguments} failed: {output.Result}{error.Result}");
        }
    }
}
