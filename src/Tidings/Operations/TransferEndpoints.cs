using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Collections;
using Tidings.Http;
using Tidings.Identity;
using Tidings.Storage;

namespace Tidings.Operations;

public static class TransferEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the operators' <c>GET /tidings/export[?path=/api/flows]</c> (JSON lines, streamed) and <c>POST /tidings/import</c>
    /// (into an empty store; 409 otherwise). Admins only: the app's <c>tidings-admin</c> policy, or the names in <c>Tidings:Admins</c>.
    /// </summary>
    public static void MapTidingsTransfer(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/tidings/export", ExportAsync).ExcludeFromDescription();
        endpoints.MapPost("/tidings/import", ImportAsync).ExcludeFromDescription();
    }

    private static StoreTransfer Transfer(HttpContext context) =>
        new(context.RequestServices.GetRequiredService<ITidingsStore>(), context.RequestServices.GetRequiredService<CollectionRegistry>(),
            context.RequestServices.GetRequiredService<TimeProvider>());

    private static async Task ExportAsync(HttpContext context)
    {
        if (!await AdminAsync(context))
        {
            return;
        }

        var under = context.Request.Query["path"].ToString() is { Length: > 0 } path ? path.TrimEnd('/') : null;
        if (under is not null && (!under.StartsWith('/') || under.Contains('*', StringComparison.Ordinal)))
        {
            await Problems.Write(context, StatusCodes.Status400BadRequest, "Invalid path", "'path' is a collection path or a prefix of one, e.g. /api/flows.");
            return;
        }

        context.Response.ContentType = "application/x-ndjson; charset=utf-8";
        context.Response.Headers.ContentDisposition = "attachment; filename=\"tidings-export.jsonl\"";
        context.Response.Headers.CacheControl = "no-store";
        await Transfer(context).ExportAsync(context.Response.Body, under, context.RequestAborted);
    }

    private static async Task ImportAsync(HttpContext context)
    {
        if (!await AdminAsync(context) || await RequestChecks.RefuseCrossSiteAsync(context, context.RequestServices.GetRequiredService<OriginPolicy>()))
        {
            return;
        }

        // Kept on disk while it is checked, then loaded from there: checked whole first, so a bad line changes nothing.
        var limit = context.RequestServices.GetRequiredService<TidingsOptions>().MaxImportBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit;
        }

        var file = Path.GetTempFileName();
        try
        {
            await using (var copy = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, useAsync: true))
            {
                var buffer = new byte[64 * 1024];
                long total = 0;
                int read;
                while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
                {
                    total += read;
                    if (total > limit)
                    {
                        await Problems.Write(context, StatusCodes.Status413PayloadTooLarge, "Import too large",
                            $"The import is larger than {limit} bytes (Tidings:MaxImportBytes).");
                        return;
                    }

                    await copy.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                }
            }

            var result = await Transfer(context).ImportAsync(
                () => new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, useAsync: true), context.RequestAborted);
            if (result.StoreNotEmpty)
            {
                await Problems.Write(context, StatusCodes.Status409Conflict, "Store not empty", result.Problem!);
            }
            else if (!result.Loaded)
            {
                await Problems.Write(context, StatusCodes.Status422UnprocessableEntity, "Not a valid export", result.Problem! + " Nothing was imported.");
            }
            else
            {
                await Results.Json(new { imported = result.Records }).ExecuteAsync(context);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>401 signed out, 403 not an admin (problem+json); true for an admin.</summary>
    private static Task<bool> AdminAsync(HttpContext context) => Admin.AdminAccess.RequireAsync(context);
}
