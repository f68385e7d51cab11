using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
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

    /// <summary>The body as a JSON object of at most <paramref name="maxBytes"/> bytes, or null after answering 400/413/415.</summary>
    public static async Task<JsonObject?> ReadObjectAsync(HttpContext context, int maxBytes)
    {
        var request = context.Request;
        var mediaType = request.ContentType is { } ct && MediaTypeHeaderValue.TryParse(ct, out var parsed) ? parsed.MediaType.Value : null;
        if (mediaType is not null && !mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            && !mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase))
        {
            await Problems.Write(context, StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json.");
            return null;
        }

        if (await BoundedBody.ReadAsync(request, maxBytes, context.RequestAborted) is not { } bytes)
        {
            await Problems.TooLarge(context, maxBytes);
            return null;
        }

        try
        {
            if (JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { MaxDepth = 32 }) is JsonObject body)
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
}
