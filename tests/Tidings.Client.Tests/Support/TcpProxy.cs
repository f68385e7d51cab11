using System.Net;
using System.Net.Sockets;

namespace Tidings.Client.Tests.Support;

/// <summary>
/// Forwards a loopback port to a target port, to simulate network loss: <see cref="Cut"/> drops every open connection;
/// <see cref="Down"/> cuts and refuses new ones until <see cref="Up"/>. The target can change (a restarted server on a
/// new port) while the clients keep one address.
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<(TcpClient Client, TcpClient Upstream)> _pairs = [];
    private readonly Task _accepting;
    private volatile bool _refusing;

    public TcpProxy(Uri target)
    {
        Target = target;
        _listener.Start();
        Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
        _accepting = AcceptLoopAsync();
    }

    public Uri Address { get; }

    public Uri Target { get; set; }

    public int Connections
    {
        get
        {
            lock (_gate)
            {
                return _pairs.Count;
            }
        }
    }

    /// <summary>How many connections have been cut so far.</summary>
    public int Cuts { get; private set; }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (_refusing)
            {
                Reset(client);
                continue;
            }

            _ = PairAsync(client);
        }
    }

    private async Task PairAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(Target.Host, Target.Port, _stop.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Reset(client);
            upstream.Dispose();
            return;
        }

        var pair = (client, upstream);
        lock (_gate)
        {
            _pairs.Add(pair);
        }

        try
        {
            var a = PumpAsync(client.GetStream(), upstream.GetStream());
            var b = PumpAsync(upstream.GetStream(), client.GetStream());
            await Task.WhenAny(a, b);
        }
        finally
        {
            Close(pair);
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private void Close((TcpClient Client, TcpClient Upstream) pair)
    {
        lock (_gate)
        {
            if (!_pairs.Remove(pair))
            {
                return; // closed already
            }
        }

        // A reset, as a dropped network looks to the peers (no orderly close).
        Reset(pair.Client);
        Reset(pair.Upstream);
    }

    private static void Reset(TcpClient socket)
    {
        try
        {
            socket.Client.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or NullReferenceException)
        {
        }

        socket.Dispose();
    }

    /// <summary>Drops every open connection.</summary>
    public void Cut()
    {
        (TcpClient, TcpClient)[] open;
        lock (_gate)
        {
            open = [.. _pairs];
            Cuts += open.Length;
        }

        foreach (var pair in open)
        {
            Close(pair);
        }
    }

    public void Down()
    {
        _refusing = true;
        Cut();
    }

    public void Up() => _refusing = false;

    public async ValueTask DisposeAsync()
    {
        Down();
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}
