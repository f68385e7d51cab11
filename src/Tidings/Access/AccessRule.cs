using System.Security.Claims;
using System.Text.Json.Nodes;

namespace Tidings.Access;

/// <summary>
/// What a rule sees: the caller, the partition's route values (<c>{flow}</c>, <c>{user}</c>) and, where there is
/// one, the record — on update <see cref="Record"/> is the new state and <see cref="Existing"/> the old one.
/// </summary>
public sealed class AccessContext
{
    public AccessContext(ClaimsPrincipal? user, IReadOnlyDictionary<string, string> routeValues, JsonObject? record = null, JsonObject? existing = null)
    {
        User = user;
        RouteValues = routeValues;
        Record = record;
        Existing = existing;
    }

    public ClaimsPrincipal? User { get; }
    public IReadOnlyDictionary<string, string> RouteValues { get; }
    public JsonObject? Record { get; }
    public JsonObject? Existing { get; }

    public bool IsSignedIn => User?.Identity?.IsAuthenticated == true;

    /// <summary>The signed-in user's name, or null.</summary>
    public string? UserName => IsSignedIn ? User!.Identity!.Name : null;

    public string? Route(string name) => RouteValues.TryGetValue(name, out var value) ? value : null;
}

/// <summary>A rule and the words that describe it (exported with the schema so clients can hide refused controls).</summary>
public sealed record AccessRule(Func<AccessContext, bool> Allows, string Description)
{
    public static readonly AccessRule Anyone = new(_ => true, "anyone");
    public static readonly AccessRule Nobody = new(_ => false, "nobody");
    public static readonly AccessRule SignedIn = new(c => c.IsSignedIn, "signed-in users");

    /// <summary>The signed-in user whose name is the route value <paramref name="parameter"/> (<c>/api/users/{user}/…</c>).</summary>
    public static AccessRule RouteUser(string parameter) =>
        new(c => c.UserName is { } name && name == c.Route(parameter), $"the user named by {{{parameter}}}");

    /// <summary>The signed-in user named in the record's <paramref name="field"/> (its author); on update, the existing record's.</summary>
    public static AccessRule RecordUser(string field) =>
        new(c => c.UserName is { } name && (c.Existing ?? c.Record)?[field] is JsonValue value
            && value.TryGetValue<string>(out var owner) && owner == name, $"the user in the record's '{field}'");

    public AccessRule And(AccessRule other) => new(c => Allows(c) && other.Allows(c), $"{Description} and {other.Description}");

    public AccessRule Or(AccessRule other) => new(c => Allows(c) || other.Allows(c), $"{Description} or {other.Description}");
}
