using Microsoft.AspNetCore.Authorization;

namespace Tidings.Access;

/// <summary>
/// A collection's access rules. <see cref="List"/> guards listing and subscribing to a partition;
/// <see cref="Read"/> guards each record (REST reads, snapshots, replays and every delivered event);
/// <see cref="Create"/>, <see cref="Update"/> and <see cref="Delete"/> guard writes by REST and socket alike.
/// </summary>
public sealed record CollectionAccess(AccessRule List, AccessRule Read, AccessRule Create, AccessRule Update, AccessRule Delete)
{
    /// <summary>Everyone may read and write: an explicit choice, declared with <c>.Public()</c>.</summary>
    public static readonly CollectionAccess Public = new(AccessRule.Anyone, AccessRule.Anyone, AccessRule.Anyone, AccessRule.Anyone, AccessRule.Anyone);

    /// <summary>May the caller see this record: the partition's <see cref="List"/> and the record's <see cref="Read"/>.</summary>
    public bool CanRead(AccessContext context) => List.Allows(context) && Read.Allows(context);

    /// <summary><see cref="CanRead"/> with <see cref="List"/>'s policies evaluated (<see cref="Read"/> never has any).</summary>
    public async ValueTask<bool> CanReadAsync(AccessContext context, IAuthorizationService? authorization) =>
        Read.Allows(context) && await List.AllowsAsync(ForList(context), authorization);

    /// <summary>The partition-level question the List rule answers: no record, operation "list".</summary>
    public static AccessContext ForList(AccessContext context) =>
        new(context.User, context.RouteValues) { Path = context.Path, Operation = TidingsOperations.List, Decisions = context.Decisions };

    /// <summary>
    /// Refuses, at start-up, a policy where deliveries must decide synchronously. <see cref="Read"/> filters every
    /// delivered event per recipient, in memory on the fan-out path, so it may not wait for an authorization handler.
    /// </summary>
    internal void EnsureDeliverable(string where)
    {
        if (Read.UsesPolicies)
        {
            throw new InvalidOperationException(
                $"{where}: the Read rule '{Read.Description}' uses an authorization policy, but Read filters every delivered event per " +
                "recipient, synchronously and without I/O, so it cannot wait for a policy. Put the policy on List (checked when a client " +
                "lists or subscribes) or on Create/Update/Delete, and keep Read an in-memory rule such as AccessRule.RecordUser(\"owner\").");
        }
    }
}

/// <summary>Builds <see cref="CollectionAccess"/>; every rule not given is <see cref="AccessRule.Nobody"/> (closed by default).</summary>
public sealed class AccessBuilder
{
    private AccessRule _list = AccessRule.Nobody;
    private AccessRule? _read;
    private AccessRule _create = AccessRule.Nobody;
    private AccessRule _update = AccessRule.Nobody;
    private AccessRule _delete = AccessRule.Nobody;

    /// <summary>Who may list and subscribe to a partition (and, unless <see cref="Read"/> says otherwise, read its records).</summary>
    public AccessBuilder List(AccessRule rule)
    {
        _list = rule;
        return this;
    }

    /// <summary>Who may read a given record, on top of <see cref="List"/>.</summary>
    public AccessBuilder Read(AccessRule rule)
    {
        _read = rule;
        return this;
    }

    public AccessBuilder Create(AccessRule rule)
    {
        _create = rule;
        return this;
    }

    public AccessBuilder Update(AccessRule rule)
    {
        _update = rule;
        return this;
    }

    public AccessBuilder Delete(AccessRule rule)
    {
        _delete = rule;
        return this;
    }

    /// <summary>Create, update and delete with one rule.</summary>
    public AccessBuilder Write(AccessRule rule) => Create(rule).Update(rule).Delete(rule);

    internal CollectionAccess Build() => new(_list, _read ?? AccessRule.Anyone, _create, _update, _delete);
}
