using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Tidings.Identity;

/// <summary>Authenticates <c>Authorization: Bearer &lt;token&gt;</c> with <see cref="TidingsTokens"/>; a bad token is a 401, never anonymous.</summary>
internal sealed class BearerAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger,
    UrlEncoder encoder, TidingsTokens tokens) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var (user, error) = await tokens.ValidateAsync(header["Bearer ".Length..].Trim());
        return user is null
            ? AuthenticateResult.Fail(error!)
            : AuthenticateResult.Success(new AuthenticationTicket(user, TidingsIdentityOptions.BearerScheme));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = 401;
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
