namespace Tidings.Client.Collections;

/// <summary>
/// Position keys of sorted collections, as the server makes them: base-62 digit strings read as fractions 0.d1d2…, never
/// ending in <c>0</c>, compared ordinally. The client makes one only to show an optimistic move or placed create at once;
/// the server's key replaces it when the reply or the event arrives.
/// </summary>
internal static class PositionKeys
{
    private const string Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    private const int Base = 62;

    /// <summary>A key after <paramref name="before"/> (null: the start) and before <paramref name="after"/> (null: the end); null when none can be made.</summary>
    public static string? Between(string? before, string? after)
    {
        if ((before is not null && !IsValid(before)) || (after is not null && !IsValid(after))
            || (before is not null && after is not null && string.CompareOrdinal(before, after) >= 0))
        {
            return null; // keys not from the server, or neighbours that tie: wait for the server's key
        }

        if (after is null && before is not null)
        {
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

    private static bool IsValid(string key) =>
        key.Length > 0 && key[^1] != '0' && key.All(c => c is (>= '0' and <= '9') or (>= 'A' and <= 'Z') or (>= 'a' and <= 'z'));

    private static string Midpoint(string low, string? high)
    {
        if (high is not null)
        {
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

        if (high is not null && high.Length > 1)
        {
            return high[..1];
        }

        return Digits[digitLow] + Midpoint(low.Length > 0 ? low[1..] : string.Empty, null);
    }

    /// <summary>
    /// The order of a sorted collection's view: records without a position first, then by key (ordinal), ties by id
    /// (ordinal). The server never hands out a key twice, so ties only last while an optimistic key waits for its reply.
    /// </summary>
    public static int Compare(string? positionA, string idA, string? positionB, string idB)
    {
        if (!ReferenceEquals(positionA, positionB) && positionA != positionB)
        {
            if (positionA is null)
            {
                return -1;
            }

            if (positionB is null)
            {
                return 1;
            }

            return string.CompareOrdinal(positionA, positionB);
        }

        return string.CompareOrdinal(idA, idB);
    }
}
