using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;

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

    /// <summary>The concrete collection path (for a queue, its jobs collection <c>/api/queues/{name}/jobs</c>) the rule is asked about; handed to policies in <see cref="TidingsResource"/>.</summary>
    public string? Path { get; init; }

    /// <summary>What the caller is doing (<see cref="TidingsOperations"/>); handed to policies in <see cref="TidingsResource"/>.</summary>
    public string? Operation { get; init; }

    /// <summary>
    /// What the policies of a rule decided for this caller, evaluated asynchronously before (at subscribe time, at the
    /// start of a request). A policy with no decision here refuses: synchronous paths never run a policy themselves.
    /// </summary>
    public PolicyDecisions? Decisions { get; init; }

    public bool IsSignedIn => User?.Identity?.IsAuthenticated == true;

    /// <summary>The signed-in user's name, or null.</summary>
    public string? UserName => IsSignedIn ? User!.Identity!.Name : null;

    public string? Route(string name) => RouteValues.TryGetValue(name, out var value) ? value : null;

    internal AccessContext With(PolicyDecisions decisions) =>
        new(User, RouteValues, Record, Existing) { Path = Path, Operation = Operation, Decisions = decisions };
}

/// <summary>
/// A rule and the words that describe it (exported with the schema so clients can hide refused controls). Most rules
/// are in-memory predicates (<see cref="Allows"/>); <see cref="Policy"/> and <see cref="Requirements"/> defer to the
/// app's ASP.NET Core authorization, which may do I/O, so they are decided by <see cref="AllowsAsync"/> where the path
/// can wait (requests, subscribes, writes, job enqueue and claim) and never per delivered event.
/// </summary>
public sealed record AccessRule(Func<AccessContext, bool> Allows, string Description)
{
    public static readonly AccessRule Anyone = new(_ => true, "anyone");
    public static readonly AccessRule Nobody = new(_ => false, "nobody");
    public static readonly AccessRule SignedIn = new(c => c.IsSignedIn, "signed-in users");

    /// <summary>The app's authorization policies this rule defers to (empty for an in-memory rule).</summary>
    public IReadOnlyList<PolicyCheck> Policies { get; init; } = [];

    /// <summary>True when deciding needs <see cref="IAuthorizationService"/>: use <see cref="AllowsAsync"/>.</summary>
    public bool UsesPolicies => Policies.Count > 0;

    /// <summary>The signed-in user whose name is the route value <paramref name="parameter"/> (<c>/api/users/{user}/…</c>).</summary>
    public static AccessRule RouteUser(string parameter) =>
        new(c => c.UserName is { } name && name == c.Route(parameter), $"the user named by {{{parameter}}}");

    /// <summary>The signed-in user named in the record's <paramref name="field"/> (its author); on update, the existing record's.</summary>
    public static AccessRule RecordUser(string field) =>
        new(c => c.UserName is { } name && (c.Existing ?? c.Record)?[field] is JsonValue value
            && value.TryGetValue<string>(out var owner) && owner == name, $"the user in the record's '{field}'");

    /// <summary>
    /// Whoever the app's authorization policy <paramref name="name"/> allows (<c>AddAuthorization(o => o.AddPolicy(...))</c>),
    /// evaluated through <see cref="IAuthorizationService"/> with a <see cref="TidingsResource"/> as the resource.
    /// </summary>
    public static AccessRule Policy(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return FromCheck(new PolicyCheck(name, []), $"policy '{name}'");
    }

    /// <summary>
    /// Whoever meets these requirements, decided by the app's <see cref="IAuthorizationHandler"/>s — resource-based handlers
    /// (<c>AuthorizationHandler&lt;TRequirement, TidingsResource&gt;</c>) see the record and the route values.
    /// </summary>
    public static AccessRule Requirements(params IAuthorizationRequirement[] requirements)
    {
        if (requirements is not { Length: > 0 })
        {
            throw new ArgumentException("Name at least one requirement.", nameof(requirements));
        }

        return FromCheck(new PolicyCheck(null, requirements), $"requirements {string.Join(", ", requirements.Select(r => r.GetType().Name))}");
    }

    private static AccessRule FromCheck(PolicyCheck check, string description) =>
        new(c => c.Decisions?.Allowed(check) == true, description) { Policies = [check] };

    public AccessRule And(AccessRule other) =>
        new(c => Allows(c) && other.Allows(c), $"{Description} and {other.Description}") { Policies = [.. Policies, .. other.Policies] };

    public AccessRule Or(AccessRule other) =>
        new(c => Allows(c) || other.Allows(c), $"{Description} or {other.Description}") { Policies = [.. Policies, .. other.Policies] };

    /// <summary>
    /// Decides the rule, policies included: each policy is evaluated through <paramref name="authorization"/>, then the
    /// rule's predicate runs with those decisions. An in-memory rule completes synchronously.
    /// </summary>
    public async ValueTask<bool> AllowsAsync(AccessContext context, IAuthorizationService? authorization)
    {
        if (!UsesPolicies)
        {
            return Allows(context);
        }

        return Allows(context.With(await DecideAsync(context, authorization)));
    }

    /// <summary>Evaluates this rule's policies for the caller, for a path that will decide synchronously later (deliveries).</summary>
    public async ValueTask<PolicyDecisions> DecideAsync(AccessContext context, IAuthorizationService? authorization)
    {
        if (!UsesPolicies)
        {
            return PolicyDecisions.None;
        }

        if (authorization is null)
        {
            throw new InvalidOperationException(
                $"The access rule '{Description}' uses an authorization policy, but no IAuthorizationService is registered: call services.AddAuthorization().");
        }

        var user = context.User ?? new ClaimsPrincipal(new ClaimsIdentity());
        var resource = TidingsResource.From(context);
        var decided = new Dictionary<PolicyCheck, bool>(Policies.Count);
        foreach (var check in Policies)
        {
            if (decided.ContainsKey(check))
            {
                continue;
            }

            var result = check.PolicyName is { } name
                ? await authorization.AuthorizeAsync(user, resource, name)
                : await authorization.AuthorizeAsync(user, resource, check.Requirements);
            decided[check] = result.Succeeded;
        }

        return new PolicyDecisions(decided);
    }
}

/// <summary>One deferral to the app's authorization: a named policy, or requirements for its handlers.</summary>
public sealed class PolicyCheck
{
    internal PolicyCheck(string? policyName, IAuthorizationRequirement[] requirements)
    {
        PolicyName = policyName;
        Requirements = requirements;
    }

    public string? PolicyName { get; }
    public IReadOnlyList<IAuthorizationRequirement> Requirements { get; }
}

/// <summary>What each policy of a rule decided for one caller. Missing means refused.</summary>
public sealed class PolicyDecisions
{
    public static readonly PolicyDecisions None = new(new Dictionary<PolicyCheck, bool>());

    private readonly IReadOnlyDictionary<PolicyCheck, bool> _decided;

    internal PolicyDecisions(IReadOnlyDictionary<PolicyCheck, bool> decided) => _decided = decided;

    public bool Allowed(PolicyCheck check) => _decided.TryGetValue(check, out var allowed) && allowed;
}
