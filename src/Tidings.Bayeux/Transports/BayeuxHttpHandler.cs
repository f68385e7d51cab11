using System.Buffers;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Bayeux.Transports;

/// <summary>
/// The HTTP face of the endpoint: WebSocket upgrades, long-polling POSTs (JSON, <c>message=</c> form or
/// text/plain bodies), callback-polling (JSONP) GETs and CORS preflights. Protocol errors are Bayeux
/// replies inside HTTP 200; only a body that cannot be read as Bayeux gets HTTP 400 (or 413 when too big).
/// </summary>
internal sealed partial class BayeuxHttpHandler(BayeuxServer server)
{
    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var origin = request.Headers.Origin.ToString();
        var originAllowed = server.Options.IsOriginAllowed(string.IsNullOrEmpty(origin) ? null : origin);
        if (!string.IsNullOrEmpty(origin) && IsCorsOrigin(request, origin))
        {
            AddCorsHeaders(context.Response, origin);
        }

        if (HttpMethods.IsOptions(request.Method))
        {
            AnswerPreflight(context);
            return;
        }

        if (context.WebSockets.IsWebSocketRequest)
        {
            await AcceptWebSocketAsync(context, origin, originAllowed);
            return;
        }

        if (HttpMethods.IsPost(request.Method))
        {
            await HandlePollAsync(context, "long-polling", jsonpCallback: null, await ReadPostBodyAsync(context));
            return;
        }

        if (HttpMethods.IsGet(request.Method) && request.Query.ContainsKey("message"))
        {
            var callback = request.Query["jsonp"].ToString();
            if (callback.Length == 0)
            {
                callback = "jsonpcallback";
            }

            if (!JsonpCallbackName().IsMatch(callback))
            {
                await WriteProblemAsync(context, StatusCodes.Status400BadRequest, "Invalid JSONP callback name",
                    "The jsonp parameter must be a JavaScript identifier path such as __jsonp1__ or cb.fn.");
                return;
            }

            // From the raw query, so bytes that are not UTF-8 are refused rather than decoded to U+FFFD.
            await HandlePollAsync(context, "callback-polling", callback, ReadMessageField(Encoding.UTF8.GetBytes(request.QueryString.Value![1..])));
            return;
        }

        await WriteProblemAsync(context, StatusCodes.Status400BadRequest, "Not a Bayeux request",
            "Send a WebSocket upgrade, a long-polling POST, or a callback-polling GET with message= and jsonp=.");
    }

    internal static string AsBayeuxError(string error) =>
        error.Length > 4 && char.IsAsciiDigit(error[0]) && error[3] == ':' ? error : BayeuxError.BadRequest(error);

    private async Task HandlePollAsync(HttpContext context, string connectionType, string? jsonpCallback, BodyRead body)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-cache, no-store";
        if (body.Status != StatusCodes.Status200OK)
        {
            await WriteProblemAsync(context, body.Status, body.Status == StatusCodes.Status413PayloadTooLarge ? "Request too large" : "Unreadable request",
                body.Error!);
            return;
        }

        var options = server.Options;
        if (!MessageParser.TryParse(body.Bytes, options.MaxMessageBytes, options.MaxMessagesPerBatch, out var messages, out var error))
        {
            BayeuxLog.RequestRejected(server.Logger, error!);
            await WriteProblemAsync(context, StatusCodes.Status400BadRequest, "Malformed Bayeux request", error!);
            return;
        }

        var aborted = context.RequestAborted;
        var transport = new BayeuxTransportContext(context, connectionType, null, aborted);
        var outcome = await server.HandleAsync(messages, transport, aborted);
        List<Delivery> deliveries = [];
        if (outcome.Connect is { } connect)
        {
            var completion = await server.CompleteConnectAsync(connect, aborted);
            if (completion.Reply is null)
            {
                return; // The client went away while its connect was held.
            }

            deliveries = completion.Deliveries;
            outcome.Replies.Add(completion.Reply);
        }

        await WriteBatchAsync(response, jsonpCallback, deliveries, outcome.Replies, aborted);
    }

    /// <summary>
    /// Writes the answer in one piece. The whole body is built before the first byte goes out: a reply that fails to
    /// serialize must fail the request cleanly (Kestrel's 500, nothing written), never leave part of a body behind it
    /// that the next response on the keep-alive connection would begin with (issue 16, defect 1).
    /// </summary>
    private static async Task WriteBatchAsync(HttpResponse response, string? jsonpCallback, List<Delivery> deliveries,
        List<BayeuxReply> replies, CancellationToken cancellationToken)
    {
        var body = new ArrayBufferWriter<byte>(256);
        WriteBatch(body, jsonpCallback, deliveries, replies);

        response.StatusCode = StatusCodes.Status200OK;
        if (jsonpCallback is null)
        {
            response.ContentType = "application/json; charset=utf-8";
        }
        else
        {
            response.ContentType = "text/javascript; charset=utf-8";
            response.Headers.XContentTypeOptions = "nosniff";
        }

        response.ContentLength = body.WrittenCount;
        await response.Body.WriteAsync(body.WrittenMemory, cancellationToken);
    }

    private static void WriteBatch(IBufferWriter<byte> writer, string? jsonpCallback, List<Delivery> deliveries, List<BayeuxReply> replies)
    {
        if (jsonpCallback is not null)
        {
            // The leading comment defeats content sniffing tricks that target JSONP (e.g. Rosetta Flash).
            Write(writer, "/**/"u8);
            Write(writer, Encoding.ASCII.GetBytes(jsonpCallback));
            Write(writer, "("u8);
        }

        Write(writer, "["u8);
        var first = true;
        foreach (var delivery in deliveries)
        {
            if (!first)
            {
                Write(writer, ","u8);
            }

            first = false;
            Write(writer, delivery.Message.Span);
        }

        foreach (var reply in replies)
        {
            if (!first)
            {
                Write(writer, ","u8);
            }

            first = false;
            Write(writer, reply.ToUtf8());
        }

        Write(writer, "]"u8);
        if (jsonpCallback is not null)
        {
            Write(writer, ");"u8);
        }
    }

    private static void Write(IBufferWriter<byte> writer, ReadOnlySpan<byte> bytes) => writer.Write(bytes);

    private async Task<BodyRead> ReadPostBodyAsync(HttpContext context)
    {
        var request = context.Request;
        var limit = server.Options.MaxRequestBytes;
        if (await BoundedBody.ReadAsync(request, limit, context.RequestAborted) is not { } bytes)
        {
            return BodyRead.TooLarge(limit);
        }

        // Form bodies (message=…) come from browsers' cross-origin transports; others are plain JSON,
        // whatever their content type (text/plain avoids a CORS preflight).
        var isForm = request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true
            || bytes.AsSpan().StartsWith("message="u8);
        return isForm ? ReadMessageField(bytes) : BodyRead.Ok(bytes);
    }

    /// <summary>
    /// The <c>message</c> field of a form body or query string, percent-decoded to bytes: decoding to a string first
    /// would turn bytes that are not UTF-8 into U+FFFD instead of letting the parser refuse them.
    /// </summary>
    private static BodyRead ReadMessageField(ReadOnlySpan<byte> form)
    {
        byte[]? message = null;
        foreach (var range in form.Split((byte)'&'))
        {
            var field = form[range];
            var equals = field.IndexOf((byte)'=');
            var name = equals < 0 ? field : field[..equals];
            if (!name.SequenceEqual("message"u8))
            {
                continue;
            }

            if (message is not null)
            {
                return BodyRead.Bad("a form body must carry exactly one 'message' field");
            }

            var value = equals < 0 ? [] : field[(equals + 1)..].ToArray();
            message = WebUtility.UrlDecodeToBytes(value, 0, value.Length) ?? [];
        }

        return message is null ? BodyRead.Bad("a form body must carry exactly one 'message' field") : BodyRead.Ok(message);
    }

    private async Task AcceptWebSocketAsync(HttpContext context, string origin, bool originAllowed)
    {
        if (!originAllowed)
        {
            BayeuxLog.OriginRefused(server.Logger, origin);
            await WriteProblemAsync(context, StatusCodes.Status403Forbidden, "Origin not allowed",
                $"WebSocket connections from '{origin}' are not allowed (Bayeux:AllowedOrigins).");
            return;
        }

        var options = server.Options;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            KeepAliveInterval = options.WebSocketKeepAlive,
            // A peer that does not answer a ping within this time is dropped, so dead sockets do not linger.
            KeepAliveTimeout = options.WebSocketKeepAlive > TimeSpan.Zero ? options.WebSocketKeepAlive * 2 : Timeout.InfiniteTimeSpan,
        });
        var connection = new WebSocketConnection(socket, server, context);
        await connection.RunAsync();
    }

    private static void AnswerPreflight(HttpContext context)
    {
        var response = context.Response;
        response.Headers.AccessControlAllowMethods = "GET, POST, OPTIONS";
        var requested = context.Request.Headers.AccessControlRequestHeaders;
        response.Headers.AccessControlAllowHeaders = StringValues.IsNullOrEmpty(requested)
            ? "Content-Type, Authorization, X-Requested-With"
            : requested;
        response.Headers.AccessControlMaxAge = "86400";
        response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>
    /// Whether a cross-origin caller may read the answer (CORS, with credentials): an origin in
    /// <c>Bayeux:AllowedOrigins</c>, or this site itself. With no origins configured only this site is answered, never
    /// any origin that asks (issue 16); WebSocket upgrades, which CORS does not cover, follow <see cref="BayeuxOptions.AllowedOrigins"/>.
    /// </summary>
    private bool IsCorsOrigin(HttpRequest request, string origin) =>
        server.Options.AllowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase)
        || string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase);

    private static void AddCorsHeaders(HttpResponse response, string origin)
    {
        response.Headers.AccessControlAllowOrigin = origin;
        response.Headers.AccessControlAllowCredentials = "true";
        response.Headers.Vary = "Origin";
    }

    private static Task WriteProblemAsync(HttpContext context, int status, string title, string detail)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(
            new ProblemBody("about:blank", title, status, detail),
            BayeuxJsonContext.Default.ProblemBody, "application/problem+json", context.RequestAborted);
    }

    [GeneratedRegex(@"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")]
    private static partial Regex JsonpCallbackName();

    private readonly record struct BodyRead(int Status, byte[] Bytes, string? Error)
    {
        public static BodyRead Ok(byte[] bytes) => new(StatusCodes.Status200OK, bytes, null);

        public static BodyRead Bad(string error) => new(StatusCodes.Status400BadRequest, [], error);

        public static BodyRead TooLarge(int limit) =>
            new(StatusCodes.Status413PayloadTooLarge, [], $"The request body is larger than {limit} bytes (Bayeux:MaxRequestBytes).");
    }
}

/// <summary>RFC 9457 problem details.</summary>
internal sealed record ProblemBody(string Type, string Title, int Status, string Detail);

[System.Text.Json.Serialization.JsonSerializable(typeof(ProblemBody))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class BayeuxJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
