using System.Text.RegularExpressions;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Tests.Protocol;

public sealed partial class BayeuxErrorTests
{
    // Bayeux's error grammar as Faye's client parses it (protocol/grammar.js ERROR): code, comma-separated
    // args and a message, each of a restricted character set.
    [GeneratedRegex(@"^([0-9][0-9][0-9]:(([a-zA-Z0-9]|[-_!~()$@]| |/|\*|\.))*(,(([a-zA-Z0-9]|[-_!~()$@]| |/|\*|\.))*)*:(([a-zA-Z0-9]|[-_!~()$@]| |/|\*|\.))*|[0-9][0-9][0-9]::(([a-zA-Z0-9]|[-_!~()$@]| |/|\*|\.))*)$")]
    private static partial Regex FayeErrorGrammar();

    [Fact]
    public void Every_catalogued_error_follows_the_grammar_clients_parse()
    {
        string[] errors =
        [
            BayeuxError.VersionMismatch("2.0"), BayeuxError.ConnectionTypeMismatch("iframe,flash"),
            BayeuxError.BadRequest("'connectionType' must be a string"), BayeuxError.ClientUnknown("abc"),
            BayeuxError.ParameterMissing("data"), BayeuxError.ChannelForbidden("/meta/subscribe/x"),
            BayeuxError.ChannelUnknown("/service/x"), BayeuxError.ChannelInvalid("/a b:c"),
            BayeuxError.PublishFailed("/x", "full: try later"), BayeuxError.MessageTooLarge(5000, 4096),
            BayeuxError.TooManyMessages(101, 100), BayeuxError.TooManySubscriptions(1000), BayeuxError.ServerError("oops: boom"),
        ];

        foreach (var error in errors)
        {
            Assert.Matches(FayeErrorGrammar(), error);
        }
    }

    [Fact]
    public void Errors_echoing_arbitrary_client_input_still_follow_the_grammar()
    {
        var random = new Random(7);
        const string alphabet = "ab/:,'\"é\n*.- {}<>;%\\€";
        for (var i = 0; i < 2000; i++)
        {
            var input = new string([.. Enumerable.Range(0, random.Next(0, 20)).Select(_ => alphabet[random.Next(alphabet.Length)])]);
            Assert.Matches(FayeErrorGrammar(), BayeuxError.Format(400, input, input));
            Assert.Matches(FayeErrorGrammar(), BayeuxError.ChannelInvalid(input));
        }
    }

    [Fact]
    public void A_limit_error_keeps_its_numbers_and_names_the_setting()
    {
        var error = BayeuxError.MessageTooLarge(5000, 4096);

        Assert.StartsWith("413:5000:", error, StringComparison.Ordinal);
        Assert.Contains("4096", error, StringComparison.Ordinal);
        Assert.Contains("Bayeux.MaxMessageBytes", error, StringComparison.Ordinal);
    }
}
