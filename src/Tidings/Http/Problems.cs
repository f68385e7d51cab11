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

    /// <summary>401 when nobody is signed in (signing in might help), 403 when the signed-in user may not.</summary>
    public static Task Refused(HttpContext context) =>
        context.User.Identity?.IsAuthenticated == true
            ? Write(context, StatusCodes.Status403Forbidden, "Forbidden", "The collection's access rules do not allow this.")
            : Write(context, StatusCodes.Status401Unauthorized, "Sign-in required", "Sign in to do this.");

    public static Task NotFound(HttpContext context) =>
        Write(context, StatusCodes.Status404NotFound, "Not found", "No record with this id in this collection.");

    public static Task InvalidPath(HttpContext context) =>
        Write(context, StatusCodes.Status400BadRequest, "Invalid path",
            "Route values must be channel-safe (letters, digits and -_!~()$@) and record ids must be UUIDs.");

    public static Task TooLarge(HttpContext context, int limit) =>
        Write(context, StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body is larger than {limit} bytes (Tidings:MaxBodyBytes).");
}
