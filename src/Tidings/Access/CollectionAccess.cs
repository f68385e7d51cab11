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
