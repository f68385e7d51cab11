namespace Tidings.Collections;

/// <summary>A concrete path resolved to its collection: the partition's channel and route values.</summary>
public sealed record CollectionTarget(CollectionDefinition Collection, string Path, IReadOnlyDictionary<string, string> RouteValues);

/// <summary>All declared collections, and the lookup from a concrete path or channel pattern to one.</summary>
public sealed class CollectionRegistry
{
    private readonly List<CollectionDefinition> _collections = [];

    public IReadOnlyList<CollectionDefinition> Collections => _collections;

    internal void Add(CollectionDefinition definition)
    {
        foreach (var existing in _collections)
        {
            if (existing.Route.Overlaps(definition.Route))
            {
                throw new InvalidOperationException(
                    $"Collections '{existing.Route.Template}' and '{definition.Route.Template}' overlap: one path (or record path) "
                    + "could belong to both, and each has its own rules. Give them routes that differ in a literal segment.");
            }
        }

        _collections.Add(definition);
    }

    public CollectionTarget? Resolve(string path)
    {
        foreach (var collection in _collections)
        {
            if (collection.Route.TryMatch(path, out var values))
            {
                return new CollectionTarget(collection, path, values);
            }
        }

        return null;
    }

    /// <summary>The collection whose partitions a subscription pattern (literal or <c>*</c> segments) covers.</summary>
    public CollectionDefinition? FindCovering(string pattern)
    {
        foreach (var collection in _collections)
        {
            if (collection.Route.Covers(pattern))
            {
                return collection;
            }
        }

        return null;
    }
}
