using Microsoft.Extensions.Logging;

namespace Tidings.Client.Bayeux;

internal static partial class BayeuxClientLog
{
    [LoggerMessage(1, LogLevel.Debug, "Handshaken as {ClientId} over {ConnectionType} (ack extension: {Ack}).")]
    public static partial void Handshaken(ILogger logger, string clientId, string connectionType, bool ack);

    [LoggerMessage(2, LogLevel.Warning, "Handshake refused: {Error}.")]
    public static partial void HandshakeRefused(ILogger logger, string? error);

    [LoggerMessage(3, LogLevel.Debug, "Bayeux link failed ({Reason}); retrying in {Delay}.")]
    public static partial void LinkFailed(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(4, LogLevel.Information, "The server no longer knows session {ClientId}; handshaking again.")]
    public static partial void SessionLost(ILogger logger, string? clientId);

    [LoggerMessage(5, LogLevel.Debug, "WebSocket unavailable ({Reason}); using long-polling.")]
    public static partial void WebSocketUnavailable(ILogger logger, string reason);

    [LoggerMessage(6, LogLevel.Warning, "Dropped bad input from the server: {What}.")]
    public static partial void BadInput(ILogger logger, string what);

    [LoggerMessage(7, LogLevel.Error, "A handler of channel {Channel} failed.")]
    public static partial void HandlerFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(8, LogLevel.Warning, "Re-subscribing to {Channel} failed: {Error}.")]
    public static partial void ResubscribeFailed(ILogger logger, string channel, string error);

    [LoggerMessage(9, LogLevel.Information, "The server asked not to reconnect; the client stops.")]
    public static partial void ReconnectNone(ILogger logger);
}
