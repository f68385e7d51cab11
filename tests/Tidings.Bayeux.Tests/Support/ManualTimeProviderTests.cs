namespace Tidings.Bayeux.Tests.Support;

public sealed class ManualTimeProviderTests
{
    [Fact]
    public void The_clock_moves_only_when_advanced()
    {
        var time = new ManualTimeProvider();
        var start = time.GetUtcNow();
        var stamp = time.GetTimestamp();

        time.Advance(TimeSpan.FromSeconds(90));

        Assert.Equal(start + TimeSpan.FromSeconds(90), time.GetUtcNow());
        Assert.Equal(TimeSpan.FromSeconds(90), time.GetElapsedTime(stamp));
    }

    [Fact]
    public void A_timer_fires_once_its_due_time_is_reached_with_the_clock_at_that_time()
    {
        var time = new ManualTimeProvider();
        var start = time.GetUtcNow();
        var firedAt = new List<DateTimeOffset>();
        using var timer = time.CreateTimer(_ => firedAt.Add(time.GetUtcNow()), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);

        time.Advance(TimeSpan.FromSeconds(4.999));
        Assert.Empty(firedAt);
        time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal([start + TimeSpan.FromSeconds(5)], firedAt);
        Assert.Equal(0, time.ActiveTimerCount);
    }

    [Fact]
    public void A_periodic_timer_fires_once_per_period_passed()
    {
        var time = new ManualTimeProvider();
        var fired = 0;
        using var timer = time.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        time.Advance(TimeSpan.FromSeconds(3.5));
        Assert.Equal(3, fired);
        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal(4, fired);
    }

    [Fact]
    public void Timers_fire_in_due_time_order()
    {
        var time = new ManualTimeProvider();
        var order = new List<string>();
        using var late = time.CreateTimer(_ => order.Add("late"), null, TimeSpan.FromSeconds(3), Timeout.InfiniteTimeSpan);
        using var early = time.CreateTimer(_ => order.Add("early"), null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        using var every2 = time.CreateTimer(_ => order.Add("every2"), null, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2));

        time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(["early", "every2", "late", "every2"], order);
    }

    [Fact]
    public void Changing_a_timer_reschedules_it_and_infinite_disables_it()
    {
        var time = new ManualTimeProvider();
        var fired = 0;
        using var timer = time.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);

        Assert.True(timer.Change(TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, fired);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, fired);

        timer.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, fired);
    }

    [Fact]
    public void A_disposed_timer_never_fires_and_cannot_be_changed()
    {
        var time = new ManualTimeProvider();
        var fired = 0;
        var timer = time.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        timer.Dispose();
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(0, fired);
        Assert.False(timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan));
        Assert.Equal(0, time.ActiveTimerCount);
    }

    [Fact]
    public void A_timer_may_dispose_itself_from_its_callback()
    {
        var time = new ManualTimeProvider();
        var fired = 0;
        ITimer? timer = null;
        timer = time.CreateTimer(_ =>
        {
            fired++;
            timer!.Dispose();
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(1, fired);
    }
}
