using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Tidings.Bayeux;

namespace Tidings.Identity;

/// <summary>
/// Cross-site request forgery defence for cookie sign-in: a browser sends cookies with requests other sites
/// make, so a cookie-authenticated write (REST, or a Bayeux handshake whose session will then write) is only
/// accepted from this site or an origin in <c>Bayeux:AllowedOrigins</c>. Bearer tokens are not sent
/// automatically, so they need no such check.
/// </summary>
public sealed class OriginPolicy(IOptions<BayeuxOptions> bayeux)
{
    /// <summary>
    /// True when the request is signed in by something the browser sends on its own (the cookie): anything but a
    /// bearer token. Decided from the request, as the policy scheme chooses, not from the identity's
    /// <c>AuthenticationType</c>, which is whatever label the app gave it at sign-in.
    /// </summary>
    public static bool IsCookieUser(HttpContext context) =>
        context.User.Identity?.IsAuthenticated == true
        && !context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);

    /// <summary>A write may go ahead: bearer-token and signed-out callers always, cookie users only from this site.</summary>
    public bool AllowsWrite(HttpContext context) => !IsCookieUser(context) || IsSameSite(context);

    /// <summary>True when the request demonstrably comes from this site (or an allowed origin).</summary>
    public bool IsSameSite(HttpContext context)
    {
        var request = context.Request;
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            var own = $"{request.Scheme}://{request.Host}";
            return string.Equals(origin, own, StringComparison.OrdinalIgnoreCase)
                || bayeux.Value.AllowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase);
        }

        // No Origin: browsers send one on every cross-site write, so this is a same-site navigation or a
        // non-browser client; Fetch metadata or the classic XHR header confirm it where present.
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        return site is "same-origin" or "none" || (site.Length == 0 && request.Headers.XRequestedWith.Count > 0)
            || (site.Length == 0 && !request.Headers.ContainsKey("Cookie"));
    }
}
