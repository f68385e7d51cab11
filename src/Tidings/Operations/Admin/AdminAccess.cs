using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Http;

namespace Tidings.Operations.Admin;

/// <summary>
/// Who is an operator: the app's <c>tidings-admin</c> authorization policy when it registers one, else the names in
/// <c>Tidings:Admins</c>. One check for export, import, the admin page and its Bayeux channel.
/// </summary>
internal static class AdminAccess
{
    public static async Task<bool> IsAdminAsync(IServiceProvider services, ClaimsPrincipal? user, object? resource)
    {
        if (user?.Identity?.IsAuthenticated != true)
        {
            return false;
        }

        var policy = services.GetService<IAuthorizationPolicyProvider>() is { } policies
            ? await policies.GetPolicyAsync(TidingsOptions.AdminPolicy)
            : null;
        return policy is not null
            ? (await services.GetRequiredService<IAuthorizationService>().AuthorizeAsync(user, resource, policy)).Succeeded
            : services.GetRequiredService<TidingsOptions>().IsAdmin(user.Identity.Name);
    }

    /// <summary>401 signed out, 403 not an admin (problem+json); true for an admin.</summary>
    public static async Task<bool> RequireAsync(HttpContext context)
    {
        if (context.User.Identity?.IsAuthenticated != true)
        {
            await Problems.Refused(context);
            return false;
        }

        if (!await IsAdminAsync(context.RequestServices, context.User, context))
        {
            await Problems.Write(context, StatusCodes.Status403Forbidden, "Forbidden", "Only admins may do this (Tidings:Admins).");
            return false;
        }

        return true;
    }
}
