namespace Tidings.Jobs;

/// <summary>
/// A five-field cron schedule (minute hour day-of-month month day-of-week, UTC): <c>*</c>, numbers, lists
/// (<c>1,15</c>), ranges (<c>1-5</c>) and steps (<c>*/10</c>, <c>0-30/5</c>). Day-of-week 0 and 7 are Sunday. When both
/// day fields are restricted, a day matching either fires (as in Vixie cron).
/// </summary>
public sealed class CronSchedule
{
    private readonly bool[] _minutes;
    private readonly bool[] _hours;
    private readonly bool[] _days;
    private readonly bool[] _months;
    private readonly bool[] _weekdays;
    private readonly bool _anyDay;
    private readonly bool _anyWeekday;

    private CronSchedule(string text, bool[] minutes, bool[] hours, bool[] days, bool[] months, bool[] weekdays, bool anyDay, bool anyWeekday)
    {
        Text = text;
        (_minutes, _hours, _days, _months, _weekdays, _anyDay, _anyWeekday) = (minutes, hours, days, months, weekdays, anyDay, anyWeekday);
    }

    public string Text { get; }

    public static CronSchedule Parse(string text)
    {
        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 5)
        {
            throw new FormatException($"'{text}' is not a cron schedule: five fields expected (minute hour day month weekday).");
        }

        var weekdays = Field(fields[4], 0, 7, text);
        weekdays[0] |= weekdays[7];
        return new CronSchedule(text, Field(fields[0], 0, 59, text), Field(fields[1], 0, 23, text), Field(fields[2], 1, 31, text),
            Field(fields[3], 1, 12, text), weekdays, fields[2] == "*", fields[4] == "*");
    }

    /// <summary>The first tick strictly after <paramref name="after"/>, to the minute.</summary>
    public DateTimeOffset Next(DateTimeOffset after)
    {
        var t = new DateTimeOffset(after.UtcDateTime.Year, after.UtcDateTime.Month, after.UtcDateTime.Day, after.UtcDateTime.Hour,
            after.UtcDateTime.Minute, 0, TimeSpan.Zero).AddMinutes(1);
        for (var limit = 0; limit < 5 * 366 * 24 * 60; limit++)
        {
            if (!_months[t.Month])
            {
                t = new DateTimeOffset(t.Year, t.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(1);
                continue;
            }

            if (!DayMatches(t))
            {
                t = new DateTimeOffset(t.Year, t.Month, t.Day, 0, 0, 0, TimeSpan.Zero).AddDays(1);
                continue;
            }

            if (!_hours[t.Hour])
            {
                t = new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
                continue;
            }

            if (_minutes[t.Minute])
            {
                return t;
            }

            t = t.AddMinutes(1);
        }

        throw new InvalidOperationException($"The cron schedule '{Text}' never fires.");
    }

    private bool DayMatches(DateTimeOffset t)
    {
        var day = _days[t.Day];
        var weekday = _weekdays[(int)t.DayOfWeek];
        return _anyDay || _anyWeekday ? day && weekday : day || weekday;
    }

    private static bool[] Field(string field, int min, int max, string text)
    {
        var set = new bool[max + 1];
        foreach (var part in field.Split(','))
        {
            var (range, step) = part.Split('/') switch
            {
                [var r] => (r, 1),
                [var r, var s] when int.TryParse(s, out var n) && n > 0 => (r, n),
                _ => throw new FormatException($"'{part}' in the cron schedule '{text}' is not a valid step."),
            };
            int from, to;
            if (range == "*")
            {
                (from, to) = (min, max);
            }
            else if (range.Split('-') is [var a, var b] && int.TryParse(a, out from) && int.TryParse(b, out to))
            {
            }
            else if (int.TryParse(range, out from))
            {
                to = step > 1 ? max : from;
            }
            else
            {
                throw new FormatException($"'{part}' in the cron schedule '{text}' is not a number, range or '*'.");
            }

            if (from < min || to > max || from > to)
            {
                throw new FormatException($"'{part}' in the cron schedule '{text}' is outside {min}-{max}.");
            }

            for (var i = from; i <= to; i += step)
            {
                set[i] = true;
            }
        }

        return set;
    }
}
