using Microsoft.Extensions.Logging;

namespace Tidings.Bayeux.Server;

internal static partial class BayeuxLog
{
    [LoggerMessage(1, LogLevel.Debug, "Session {ClientId} handshaken over {ConnectionType}.")]
    public static partial void SessionOpened(ILogger logger, string clientId, string connectionType);

    [LoggerMessage(2, LogLevel.Debug, "Session {ClientId} closed: {Reason}.")]
    public static partial void SessionClosed(ILogger logger, string clientId, SessionCloseReason reason);

    [LoggerMessage(3, LogLevel.Warning, "Session {ClientId} exceeded its outbound queue of {Limit} bytes and was closed (Bayeux:MaxQueuedBytes).")]
    public static partial void QueueOverflow(ILogger logger, string clientId, int limit);

    [LoggerMessage(4, LogLevel.Debug, "Rejected a Bayeux request: {Reason}.")]
    public static partial void RequestRejected(ILogger logger, string reason);

    [LoggerMessage(5, LogLevel.Error, "A service handler for {Channel} failed.")]
    public static partial void ServiceHandlerFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(6, LogLevel.Error, "A server-side subscriber of {Channel} failed.")]
    public static partial void LocalSubscriberFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(7, LogLevel.Information, "Refused a WebSocket from origin {Origin} (Bayeux:AllowedOrigins).")]
    public static partial void OriginRefused(ILogger logger, string? origin);

    [LoggerMessage(8, LogLevel.Debug, "WebSocket closed: {Reason}.")]
    public static partial void SocketClosed(ILogger logger, string reason);

    [LoggerMessage(9, LogLevel.Error, "Completing a held connect for {ClientId} failed.")]
    public static partial void ConnectCompletionFailed(ILogger logger, string clientId, Exception exception);

    [LoggerMessage(11, LogLevel.Error, "A WebSocket connection failed.")]
    public static partial void SocketFailed(ILogger logger, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "The expired-session sweep failed.")]
    public static partial void SweepFailed(ILogger logger, Exception exception);
}
