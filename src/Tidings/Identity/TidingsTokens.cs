using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Tidings.Identity;

/// <summary>
/// Issues and checks the bearer tokens (JWT, HS256) that clients without cookies — WebSocket clients that
/// cannot set headers, other services — present in <c>Authorization</c> or in the Bayeux handshake's <c>ext.token</c>.
/// </summary>
public sealed class TidingsTokens
{
    private readonly TidingsIdentityOptions _options;
    private readonly TimeProvider _time;
    private readonly SymmetricSecurityKey _key;
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    public TidingsTokens(IOptions<TidingsIdentityOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        var key = string.IsNullOrEmpty(_options.SigningKey) ? RandomNumberGenerator.GetBytes(32) : Convert.FromBase64String(_options.SigningKey);
        if (key.Length < 32)
        {
            throw new InvalidOperationException("Tidings:Identity:SigningKey must be at least 32 bytes (base64).");
        }

        _key = new SymmetricSecurityKey(key);
    }

    /// <summary>A token naming <paramref name="userName"/>, valid for the configured lifetime.</summary>
    public string Issue(string userName, TimeSpan? lifetime = null)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _options.Issuer,
            Audience = _options.Audience,
            Subject = new ClaimsIdentity([new Claim(ClaimTypes.Name, userName)]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + (lifetime ?? _options.TokenLifetime),
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>Checks a token: signature, issuer, audience and lifetime. The error says which failed.</summary>
    public async Task<(ClaimsPrincipal? User, string? Error)> ValidateAsync(string token)
    {
        var result = await _handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = _options.Issuer,
            ValidAudience = _options.Audience,
            IssuerSigningKey = _key,
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ClockSkew = TimeSpan.FromSeconds(30),
            LifetimeValidator = (notBefore, expires, _, _) =>
            {
                var now = _time.GetUtcNow().UtcDateTime;
                return (notBefore is null || notBefore <= now + TimeSpan.FromSeconds(30)) && expires is { } e && e > now;
            },
            NameClaimType = ClaimTypes.Name,
            AuthenticationType = TidingsIdentityOptions.BearerScheme,
        });
        if (result.IsValid && result.ClaimsIdentity.Name is { Length: > 0 })
        {
            return (new ClaimsPrincipal(result.ClaimsIdentity), null);
        }

        return (null, result.Exception switch
        {
            SecurityTokenInvalidLifetimeException or SecurityTokenExpiredException => "the token has expired",
            SecurityTokenInvalidAudienceException => "the token is for another audience",
            SecurityTokenInvalidIssuerException => "the token is from another issuer",
            SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token signature is invalid",
            null => "the token names no user",
            _ => "the token is malformed",
        });
    }
}
