using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;

namespace Tidings.Bayeux.Transports;

/// <summary>
/// Reads a request body into memory, but never more than a limit. Public so every HTTP surface built on Bayeux
/// (its own posts, the collections' REST records) reads bodies the same bounded way.
/// </summary>
public static class BoundedBody
{
    /// <summary>The whole body, or null when it is (or announces itself as) larger than <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]?> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        var reader = request.BodyReader;
        ReadResult result;
        while (true)
        {
            result = await reader.ReadAsync(cancellationToken);
            if (result.Buffer.Length > limit)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return null;
            }

            if (result.IsCompleted)
            {
                break;
            }

            // Nothing consumed, everything examined: the next read returns once more has arrived.
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        var bytes = result.Buffer.ToArray();
        reader.AdvanceTo(result.Buffer.End);
        return bytes;
    }
}
