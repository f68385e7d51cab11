namespace Tidings.Writes;

/// <summary>Where a record of a sorted collection goes: before or after another record, or at the start or end.</summary>
public readonly record struct Placement(PlacementKind Kind, string? Anchor = null)
{
    public static readonly Placement End = new(PlacementKind.End);

    /// <summary>
    /// Reads <c>{"before": id} | {"after": id} | {"to": "start" | "end"}</c> (exactly one; none at all gives
    /// <paramref name="absent"/>). An anchor id is normalized; false with a message when the input is not one of these.
    /// </summary>
    public static bool TryParse(string? before, string? after, string? to, Placement? absent, out Placement placement, out string error)
    {
        placement = default;
        error = string.Empty;
        var given = (before is null ? 0 : 1) + (after is null ? 0 : 1) + (to is null ? 0 : 1);
        if (given == 0 && absent is { } fallback)
        {
            placement = fallback;
            return true;
        }

        if (given != 1)
        {
            error = "Name exactly one place: \"before\": id, \"after\": id, or \"to\": \"start\" | \"end\".";
            return false;
        }

        if (to is not null)
        {
            switch (to)
            {
            case "start":
                placement = new Placement(PlacementKind.Start);
                return true;
            case "end":
                placement = End;
                return true;
            default:
                error = "\"to\" must be \"start\" or \"end\".";
                return false;
            }
        }

        if (CollectionWriter.NormalizeId(before ?? after) is not { } anchor)
        {
            error = "\"before\" and \"after\" name a record by its UUID.";
            return false;
        }

        placement = new Placement(before is not null ? PlacementKind.Before : PlacementKind.After, anchor);
        return true;
    }
}

public enum PlacementKind
{
    Start,
    End,
    Before,
    After,
}
