using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Bayeux.Server;
using Tidings.Sqlite;
using Tidings.Tests.Support;
using static Tidings.Tests.Support.TidingsApp;

namespace Tidings.Tests.Observability;

/// <summary>
/// The server's System.Diagnostics.Metrics instruments move with what happens: sessions, publishes,
/// deliveries, session ends by reason, and grouped commits. Only this app's meters are listened to (meters
/// from its own IMeterFactory), so tests running in parallel do not disturb the counts.
/// </summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private TidingsApp _app = null!;
    private MeterListener _listener = null!;
    private readonly ConcurrentQueue<(string Name, double Value, string? Reason)> _measurements = new();

    public async Task InitializeAsync()
    {
        _app = await TidingsApp.StartAsync();
        var factory = _app.Services.GetRequiredService<IMeterFactory>();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory)
                    && instrument.Meter.Name is "Tidings.Bayeux" or SqliteStore.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    public async Task DisposeAsync()
    {
        _listener.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task Sessions_publishes_deliveries_closes_and_commits_are_measured()
    {
        Assert.Equal(0, ObservedSessions());

        var first = new BayeuxClient(_app.Http);
        var second = new BayeuxClient(_app.Http);
        await first.HandshakeAsync();
        await second.HandshakeAsync();
        BayeuxClient.Succeeded(await first.SubscribeAsync(Todos));
        BayeuxClient.Succeeded(await second.SubscribeAsync(Todos));
        Assert.Equal(2, ObservedSessions());

        await _app.CreateAsync(Todos, """{"title":"measured"}""");
        await first.NextAsync();
        await second.NextAsync();
        Assert.Equal(1, Sum("tidings.bayeux.messages.published"));
        Assert.Equal(2, Sum("tidings.bayeux.messages.delivered"));
        Assert.Contains(_measurements, m => m.Name == "tidings.store.commit.writes" && m.Value == 1);
        Assert.Contains(_measurements, m => m.Name == "tidings.store.commit.duration" && m.Value > 0);

        await first.DisconnectAsync();
        Assert.Equal(1, _measurements.Count(m => m.Name == "tidings.bayeux.sessions.closed" && m.Reason == "disconnected"));
        Assert.Equal(1, ObservedSessions());
    }

    private double Sum(string name) => _measurements.Where(m => m.Name == name).Sum(m => m.Value);

    /// <summary>Reads the sessions gauge (and forgets the measurements recorded so far).</summary>
    private double ObservedSessions()
    {
        _measurements.Clear();
        _listener.RecordObservableInstruments();
        var value = _measurements.Single(m => m.Name == "tidings.bayeux.sessions").Value;
        _measurements.Clear();
        return value;
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? reason = null;
        foreach (var tag in tags)
        {
            if (tag.Key == "reason")
            {
                reason = tag.Value as string;
            }
        }

        _measurements.Enqueue((instrument.Name, value, reason));
    }
}
