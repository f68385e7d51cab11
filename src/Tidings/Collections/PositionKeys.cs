namespace Tidings.Collections;

/// <summary>
/// Fractional order keys for sorted collections: strings of base-62 digits (<c>0-9A-Za-z</c>, which sort in that
/// order under ordinal comparison) read as a fraction 0.d1d2d3… A key never ends in <c>0</c>, so between any two
/// different keys there is always another one: a record is placed by giving it a key between its neighbours, and no
/// other record is ever renumbered.
/// </summary>
public static class PositionKeys
{
    private const string Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    private const int Base = 62;

    /// <summary>A key ordinally after <paramref name="before"/> (null: the start) and before <paramref name="after"/> (null: the end).</summary>
    /// <exception cref="ArgumentException">A key is not a valid key, or <paramref name="before"/> is not below <paramref name="after"/>.</exception>
    public static string Between(string? before, string? after)
    {
        if (before is not null && !IsValid(before))
        {
            throw new ArgumentException($"'{before}' is not a position key.", nameof(before));
        }

        if (after is not null && !IsValid(after))
        {
            throw new ArgumentException($"'{after}' is not a position key.", nameof(after));
        }

        if (before is not null && after is not null && string.CompareOrdinal(before, after) >= 0)
        {
            throw new ArgumentException($"'{before}' is not below '{after}'.", nameof(before));
        }

        if (after is null && before is not null)
        {
            // At the end: bump the first digit that can be bumped, so appending grows keys slowly (one digit per ~30).
            for (var i = 0; i < before.Length; i++)
            {
                var digit = Digits.IndexOf(before[i]);
                if (digit < Base - 1)
                {
                    return before[..i] + Digits[digit + 1];
                }
            }

            return before + Digits[Base / 2];
        }

        return Midpoint(before ?? string.Empty, after);
    }

    /// <summary>True for a non-empty string of base-62 digits that does not end in 0.</summary>
    public static bool IsValid(string key) =>
        key.Length > 0 && key[^1] != '0' && key.All(c => c is (>= '0' and <= '9') or (>= 'A' and <= 'Z') or (>= 'a' and <= 'z'));

    /// <summary>The key halfway between <paramref name="low"/> ("" = 0) and <paramref name="high"/> (null = 1); low &lt; high.</summary>
    private static string Midpoint(string low, string? high)
    {
        if (high is not null)
        {
            // Skip the common prefix (low padded with zeros).
            var n = 0;
            while (n < high.Length && (n < low.Length ? low[n] : '0') == high[n])
            {
                n++;
            }

            if (n > 0)
            {
                return high[..n] + Midpoint(n < low.Length ? low[n..] : string.Empty, high[n..]);
            }
        }

        var digitLow = low.Length > 0 ? Digits.IndexOf(low[0]) : 0;
        var digitHigh = high is not null ? Digits.IndexOf(high[0]) : Base;
        if (digitHigh - digitLow > 1)
        {
            return Digits[(digitLow + digitHigh + 1) / 2].ToString();
        }

        // Adjacent first digits: keep low's (or take high's when high goes on, since then high[0] alone lies between).
        if (high is not null && high.Length > 1)
        {
            return high[..1];
        }

        return Digits[digitLow] + Midpoint(low.Length > 0 ? low[1..] : string.Empty, null);
    }
}
