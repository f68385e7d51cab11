using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Transports;
using Tidings.Identity;

namespace Tidings.Http;

/// <summary>What every Tidings write endpoint (collections, jobs) checks of a request, answering problem+json when it fails.</summary>
internal static class RequestChecks
{
    /// <summary>True (after answering 403) for a cookie-signed write from another site; bearer-token callers pass.</summary>
    public static async Task<bool> RefuseCrossSiteAsync(HttpContext context, OriginPolicy origins)
    {
        if (origins.AllowsWrite(context))
        {
            return false;
        }

        await Problems.Write(context, StatusCodes.Status403Forbidden, "Cross-site request refused",
            "A write signed in by cookie must come from this site (or an origin in Bayeux:AllowedOrigins); other clients use a bearer token.");
        return true;
    }

    private static readonly JsonDocumentOptions BodyOptions = new() { MaxDepth = 32, AllowDuplicateProperties = false };

    /// <summary>
    /// The body as a JSON object of at most <paramref name="maxBytes"/> bytes, or null after answering 400/413/415.
    /// A body without a Content-Type is read as JSON; one whose Content-Type is not JSON, or cannot be parsed at all, is
    /// refused (415). Text that is not Unicode (invalid UTF-8, lone surrogates) and duplicate keys are 400: neither can
    /// be stored as it was sent, and a silent U+FFFD or "the last key wins" would store something else.
    /// </summary>
    public static async Task<JsonObject?> ReadObjectAsync(HttpContext context, int maxBytes)
    {
        var request = context.Request;
        if (!IsJsonOrAbsent(request.ContentType))
        {
            await Problems.Write(context, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json.");
            return null;
        }

        if (await BoundedBody.ReadAsync(request, maxBytes, context.RequestAborted) is not { } bytes)
        {
            await Problems.TooLarge(context, maxBytes);
            return null;
        }

        if (JsonText.FindInvalidText(bytes) is { } invalidText)
        {
            await Problems.Write(context, StatusCodes.Status400BadRequest, "Invalid text", $"The body cannot be read: {invalidText}.");
            return null;
        }

        try
        {
            if (JsonNode.Parse(bytes, documentOptions: BodyOptions) is JsonObject body)
            {
                return body;
            }

            await Problems.Write(context, StatusCodes.Status400BadRequest, "Invalid body", "The body must be a JSON object.");
        }
        catch (JsonException ex)
        {
            await Problems.Write(context, StatusCodes.Status400BadRequest, "Malformed JSON", ex.Message);
        }

        return null;
    }

    private static bool IsJsonOrAbsent(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return true;
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed) || parsed.Type.Length == 0 || parsed.SubType.Length == 0)
        {
            return false; // "json", "application/", "text/plain;;;": not a media type, so not JSON
        }

        var mediaType = parsed.MediaType.Value!;
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }
}
