using System.Diagnostics.Metrics;

namespace Tidings.Bayeux.Server;

/// <summary>
/// The server's instruments on the <c>Tidings.Bayeux</c> meter (System.Diagnostics.Metrics: dotnet-counters,
/// OpenTelemetry). Counts are added once per publish, never per recipient, so the fan-out path stays as it was.
/// </summary>
internal sealed class BayeuxMetrics : IDisposable
{
    public const string MeterName = "Tidings.Bayeux";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _published;
    private readonly Counter<long> _delivered;
    private readonly Counter<long> _closed;

    public BayeuxMetrics(IMeterFactory? factory, Func<int> sessions, Func<int> webSockets)
    {
        _ownsMeter = factory is null;
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableUpDownCounter("tidings.bayeux.sessions", () => sessions(), "{session}", "Handshaken Bayeux sessions.");
        _meter.CreateObservableUpDownCounter("tidings.bayeux.websockets", () => webSockets(), "{connection}", "Open Bayeux WebSockets.");
        _published = _meter.CreateCounter<long>("tidings.bayeux.messages.published", "{message}", "Messages published, by clients and by server code.");
        _delivered = _meter.CreateCounter<long>("tidings.bayeux.messages.delivered", "{message}", "Deliveries handed to subscribers (one per recipient).");
        _closed = _meter.CreateCounter<long>("tidings.bayeux.sessions.closed", "{session}", "Sessions ended, by reason.");
    }

    public void Published(int recipients)
    {
        _published.Add(1);
        if (recipients > 0)
        {
            _delivered.Add(recipients);
        }
    }

    public void Closed(SessionCloseReason reason) =>
        _closed.Add(1, new KeyValuePair<string, object?>("reason", ReasonTag(reason)));

    private static string ReasonTag(SessionCloseReason reason) => reason switch
    {
        SessionCloseReason.Disconnected => "disconnected",
        SessionCloseReason.Expired => "expired",
        SessionCloseReason.QueueOverflow => "queue_overflow",
        SessionCloseReason.ServerShutdown => "server_shutdown",
        SessionCloseReason.Abandoned => "abandoned",
        SessionCloseReason.Evicted => "evicted",
        _ => "other",
    };

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
