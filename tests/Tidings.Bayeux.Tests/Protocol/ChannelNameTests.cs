using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Tests.Protocol;

public sealed class ChannelNameTests
{
    [Theory]
    [InlineData("/foo")]
    [InlineData("/foo/bar")]
    [InlineData("/Chat/Room42")]
    [InlineData("/a-b_c!d~e(f)g$h@i")]
    [InlineData("/meta/connect")]
    [InlineData("/service/echo")]
    [InlineData("/0/1/2")]
    public void Names_made_of_faye_segment_characters_are_valid(string channel)
    {
        Assert.True(ChannelName.IsValidName(channel));
        Assert.True(ChannelName.IsValidPattern(channel));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("foo")]
    [InlineData("foo/bar")]
    [InlineData("/")]
    [InlineData("//foo")]
    [InlineData("/foo//bar")]
    [InlineData("/foo/")]
    [InlineData("/foo bar")]
    [InlineData("/foo/ bar")]
    [InlineData("/a.b")]
    [InlineData("/a:b")]
    [InlineData("/a%20b")]
    [InlineData("/caf\u00e9")]
    public void Names_outside_the_grammar_are_invalid(string? channel)
    {
        Assert.False(ChannelName.IsValidName(channel));
        Assert.False(ChannelName.IsValidPattern(channel));
    }

    [Theory]
    [InlineData("/foo/*")]
    [InlineData("/foo/**")]
    [InlineData("/foo/bar/*")]
    [InlineData("/*")]
    [InlineData("/**")]
    public void Patterns_may_end_in_one_or_two_stars_but_are_not_names(string pattern)
    {
        Assert.True(ChannelName.IsValidPattern(pattern));
        Assert.False(ChannelName.IsValidName(pattern));
        Assert.True(ChannelName.IsWildcard(pattern));
    }

    [Theory]
    [InlineData("/*/foo")]
    [InlineData("/api/flows/*/messages")]
    [InlineData("/foo/*/*")]
    [InlineData("/foo/*/**")]
    public void An_inner_star_stands_for_one_segment_so_a_pattern_can_span_partitions(string pattern)
    {
        Assert.True(ChannelName.IsValidPattern(pattern));
        Assert.False(ChannelName.IsValidName(pattern));
        Assert.True(ChannelName.IsWildcard(pattern));
        Assert.True(ChannelName.HasInnerWildcard(pattern));
    }

    [Theory]
    [InlineData("/api/flows/*/messages", "/api/flows/**")]
    [InlineData("/*/echo", "/**")]
    [InlineData("/a/*/b/*/c", "/a/**")]
    [InlineData("/a/*/**", "/a/**")]
    [InlineData("/a/b/*", "/a/b/*")]
    [InlineData("/a/b", "/a/b")]
    public void The_trailing_wildcard_for_an_inner_one_covers_it_for_clients_without_inner_stars(string pattern, string expected) =>
        Assert.Equal(expected, ChannelName.TrailingWildcardFor(pattern));

    [Theory]
    [InlineData("/foo/**/bar")]
    [InlineData("/**/foo")]
    [InlineData("/foo/***")]
    [InlineData("/foo*")]
    [InlineData("/fo*o")]
    [InlineData("/foo/*/")]
    public void A_double_star_before_the_end_or_a_star_inside_a_segment_is_invalid(string pattern)
    {
        Assert.False(ChannelName.IsValidPattern(pattern));
    }

    [Fact]
    public void Names_longer_than_the_limit_are_invalid()
    {
        var longest = "/" + new string('a', ChannelName.MaxLength - 1);
        var tooLong = longest + "a";

        Assert.True(ChannelName.IsValidName(longest));
        Assert.False(ChannelName.IsValidName(tooLong));
        Assert.False(ChannelName.IsValidPattern(tooLong));
    }

    [Theory]
    [InlineData("/meta/connect", true, false)]
    [InlineData("/meta/**", true, false)]
    [InlineData("/service/echo", false, true)]
    [InlineData("/service/*", false, true)]
    [InlineData("/metadata", false, false)]
    [InlineData("/services/x", false, false)]
    [InlineData("/chat/meta", false, false)]
    public void Meta_and_service_channels_are_recognised_by_their_first_segment(string channel, bool isMeta, bool isService)
    {
        Assert.Equal(isMeta, ChannelName.IsMeta(channel));
        Assert.Equal(isService, ChannelName.IsService(channel));
    }

    [Fact]
    public void Expanding_a_top_level_channel_gives_it_and_the_root_wildcards()
    {
        Assert.Equal(["/a", "/*", "/**"], ChannelName.Expand("/a"));
    }

    [Fact]
    public void Expanding_a_nested_channel_gives_its_parents_star_and_every_ancestors_double_star()
    {
        Assert.Equal(["/a/b/c", "/a/b/*", "/a/b/**", "/a/**", "/**"], ChannelName.Expand("/a/b/c"));
    }

    [Theory]
    [InlineData("/a/b", "/a/b", true)]
    [InlineData("/a/b", "/a/bc", false)]
    [InlineData("/a/b", "/a", false)]
    [InlineData("/a/*", "/a/b", true)]
    [InlineData("/a/*", "/a/b/c", false)]
    [InlineData("/a/*", "/a", false)]
    [InlineData("/a/*", "/ab/c", false)]
    [InlineData("/a/**", "/a/b", true)]
    [InlineData("/a/**", "/a/b/c/d", true)]
    [InlineData("/a/**", "/a", false)]
    [InlineData("/a/**", "/ab/c", false)]
    [InlineData("/*", "/a", true)]
    [InlineData("/*", "/a/b", false)]
    [InlineData("/**", "/a/b/c", true)]
    [InlineData("/a/*/c", "/a/b/c", true)]
    [InlineData("/a/*/c", "/a/b/d", false)]
    [InlineData("/a/*/c", "/a/b/c/d", false)]
    [InlineData("/a/*/c", "/a/c", false)]
    [InlineData("/*/*", "/a/b", true)]
    [InlineData("/a/*/**", "/a/b/c/d", true)]
    [InlineData("/a/*/**", "/a/b", false)]
    public void Matches_handles_exact_names_single_and_double_wildcards(string pattern, string channel, bool expected)
    {
        Assert.Equal(expected, ChannelName.Matches(pattern, channel));
    }

    [Fact]
    public void Matching_a_pattern_agrees_with_expanding_the_channel_for_many_random_pairs()
    {
        // A small alphabet and shallow depth make prefixes and equal names common, so both answers occur.
        var random = new Random(20250101);
        string[] segments = ["a", "b", "ab", "ba", "a-b"];
        string Name(int depth) => string.Concat(Enumerable.Range(0, depth).Select(_ => "/" + segments[random.Next(segments.Length)]));

        int matched = 0, unmatched = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var channel = Name(random.Next(1, 5));
            var pattern = random.Next(3) switch
            {
                0 => Name(random.Next(1, 5)),
                1 => Name(random.Next(0, 4)) + "/*",
                _ => Name(random.Next(0, 4)) + "/**",
            };
            Assert.True(ChannelName.IsValidName(channel));
            Assert.True(ChannelName.IsValidPattern(pattern));

            var matches = ChannelName.Matches(pattern, channel);
            Assert.True(matches == ChannelName.Expand(channel).Contains(pattern), $"pattern {pattern}, channel {channel}");

            // An inner star matches exactly when replacing that segment of the channel gives an exact match.
            var parts = channel.Split('/');
            if (parts.Length > 2)
            {
                var at = random.Next(1, parts.Length - 1);
                var inner = string.Join('/', parts.Select((s, k) => k == at ? "*" : s));
                Assert.True(ChannelName.Matches(inner, channel), $"pattern {inner}, channel {channel}");
                var other = Name(parts.Length - 1);
                var expected = other.Split('/').Select((s, k) => k == at ? "*" : s).SequenceEqual(inner.Split('/'));
                Assert.Equal(expected, ChannelName.Matches(inner, other));
            }
            _ = matches ? matched++ : unmatched++;
        }

        Assert.True(matched > 1000 && unmatched > 1000, $"{matched} matched, {unmatched} did not");
    }
}
