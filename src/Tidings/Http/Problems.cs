using Microsoft.AspNetCore.Http;

namespace Tidings.Http;

/// <summary>RFC 9457 problem responses, written in one place so every endpoint answers alike.</summary>
internal static class Problems
{
    public static Task Write(HttpContext context, int status, string title, string detail, IDictionary<string, object?>? extensions = null) =>
        Results.Problem(detail: detail, statusCode: status, title: title, extensions: extensions).ExecuteAsync(context);

    public static Task Validation(HttpContext context, IReadOnlyDictionary<string, string[]> errors) =>
        Results.ValidationProblem(errors.ToDictionary(e => e.Key, e => e.Value), statusCode: StatusCodes.Status422UnprocessableEntity,
            title: "The record is not valid", detail: "See 'errors' for what to change in each field.").ExecuteAsync(context);

    public static Task NotFound(HttpContext context) =>
        Write(context, StatusCodes.Status404NotFound, "Not found", "No record with this id in this collection.");

    public static Task InvalidPath(HttpContext context) =>
        Write(context, StatusCodes.Status400BadRequest, "Invalid path",
            "Route values must be channel-safe (letters, digits and -_!~()$@) and record ids must be UUIDs.");

    public static Task TooLarge(HttpContext context, int limit) =>
        Write(context, StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body is larger than {limit} bytes (Tidings:MaxBodyBytes).");
}
