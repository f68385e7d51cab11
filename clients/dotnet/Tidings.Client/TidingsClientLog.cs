using Microsoft.Extensions.Logging;

namespace Tidings.Client;

internal static partial class TidingsClientLog
{
    [LoggerMessage(101, LogLevel.Error, "An event handler of collection {Path} failed.")]
    public static partial void HandlerFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(102, LogLevel.Warning, "Dropped bad input from the server: {What}.")]
    public static partial void BadInput(ILogger logger, string what);
}
