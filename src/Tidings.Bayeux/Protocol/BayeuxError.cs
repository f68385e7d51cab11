namespace Tidings.Bayeux.Protocol;

/// <summary>
/// The error table. Bayeux errors travel inside a successful HTTP response as
/// <c>code:args:message</c> strings (args comma-separated), written into the reply rather than thrown.
/// Codes 300–500 follow Faye's table so clients that switch on them keep working.
/// </summary>
public static class BayeuxError
{
    public static string VersionMismatch(string? version) => Format(300, version, "Version mismatch");
    public static string ConnectionTypeMismatch(string types) => Format(301, types, "Connection types not supported");
    public static string BadRequest(string detail) => Format(400, "", "Bad request - " + detail);
    public static string ClientUnknown(string? clientId) => Format(401, clientId, "Unknown client");
    public static string ParameterMissing(string name) => Format(402, name, "Missing required parameter");
    public static string ChannelForbidden(string? channel) => Format(403, channel, "Forbidden channel");
    public static string ChannelUnknown(string? channel) => Format(404, channel, "Unknown channel");
    public static string ChannelInvalid(string? channel) => Format(405, channel, "Invalid channel");
    public static string PublishFailed(string? channel, string detail) => Format(407, channel, "Failed to publish - " + detail);
    public static string MessageTooLarge(int size, int limit) =>
        Format(413, size.ToString(System.Globalization.CultureInfo.InvariantCulture),
            $"Message too large ({size} bytes) over the limit of {limit} (Bayeux.MaxMessageBytes)");
    public static string TooManyMessages(int count, int limit) =>
        Format(413, count.ToString(System.Globalization.CultureInfo.InvariantCulture),
            $"Too many messages in one request (limit {limit} per Bayeux.MaxMessagesPerBatch)");
    public static string TooManySubscriptions(int limit) =>
        Format(429, limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "Too many subscriptions for this session (Bayeux.MaxSubscriptionsPerSession)");
    public static string TooManyInnerWildcards(string pattern, int limit) =>
        Format(429, pattern, $"Too many inner-wildcard subscriptions for this session (limit {limit} per Bayeux.MaxInnerWildcardsPerSession)");

    /// <summary>An inner wildcard without <c>ext.delivery</c>: what a plain Faye client gets (its errback shows it).</summary>
    public static string InnerWildcardNeedsDelivery(string pattern, string instead) =>
        Format(405, pattern, $"Faye clients cannot receive an inner wildcard. Subscribe to {instead} instead (events are still filtered per user). " +
            "CometD and Tidings clients send ext.delivery pattern or concrete");

    public static string PatternDeliveryNeedsNamedEnd(string pattern, string instead) =>
        Format(405, pattern, $"Pattern delivery needs a pattern that ends in a name (CometD would run its callback twice). Subscribe to {instead} instead");

    /// <summary>Pattern delivery and a trailing wildcard of the same session that CometD would both hand one event to.</summary>
    public static string PatternDeliveryOverlap(string pattern, string other) =>
        Format(409, $"{pattern},{other}", $"Overlaps {other} of this session. CometD would hand its events to both (twice). Keep one of them");
    public static string TooManySessionsFromAddress(int limit) =>
        Format(429, limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "Too many live sessions from this address (Bayeux.MaxSessionsPerAddress)");
    public static string ServerError(string detail) => Format(500, "", "Internal server error - " + detail);

    /// <summary>
    /// Formats <c>code:args:message</c> within Bayeux's error grammar, which clients parse strictly (Faye reads
    /// the code as null otherwise): args and message may hold only letters, digits, <c>-_!~()$@</c>, space,
    /// <c>/</c>, <c>*</c> and <c>.</c>; args are comma-separated. Anything else — often echoed client input — is
    /// replaced, so an error string can never be malformed.
    /// </summary>
    public static string Format(int code, string? args, string message)
    {
        var safeArgs = string.Join(',', (args ?? string.Empty).Split(',').Select(a => Clean(a, '_')));
        return $"{code}:{safeArgs}:{Clean(message, ' ')}";
    }

    private static string Clean(string text, char replacement)
    {
        var builder = new System.Text.StringBuilder(text.Length);
        foreach (var c in text)
        {
            var allowed = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
                or '-' or '_' or '!' or '~' or '(' or ')' or '$' or '@' or ' ' or '/' or '*' or '.';
            if (allowed)
            {
                builder.Append(c);
            }
            else if (c is not ('\'' or '"'))
            {
                // Quotes are dropped; anything else becomes a placeholder so words stay apart.
                builder.Append(replacement);
            }
        }

        return builder.ToString();
    }
}
