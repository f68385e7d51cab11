namespace Tidings.Identity;

/// <summary>Sign-in settings: the token key and lifetime, the cookie, and the schemes' names.</summary>
public sealed class TidingsIdentityOptions
{
    public const string SectionName = "Tidings:Identity";
    public const string CookieScheme = "Tidings.Cookie";
    public const string BearerScheme = "Tidings.Bearer";
    public const string PolicyScheme = "Tidings";
    public static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromHours(12);

    /// <summary>
    /// The HMAC-SHA256 key for tokens, base64 (32 bytes or more). When empty, a random key is made at start-up:
    /// tokens then do not survive a restart (set one in configuration for that).
    /// </summary>
    public string? SigningKey { get; set; }

    public string Issuer { get; set; } = "tidings";
    public string Audience { get; set; } = "tidings";
    public TimeSpan TokenLifetime { get; set; } = DefaultTokenLifetime;
    public string CookieName { get; set; } = "tidings";
}
