using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;

namespace Tidings.Bayeux.Protocol;

/// <summary>
/// Checks that a JSON text is Unicode text: valid UTF-8 throughout, and no string escape that leaves a lone surrogate
/// (<c>"\ud800"</c>). System.Text.Json reads both and fails only when such a string is turned into .NET text or written
/// back out — by then a batch is half handled or a response half written. Checked up front, such input gets one clear
/// refusal and changes nothing. Public so REST bodies are checked the same way as Bayeux messages.
/// </summary>
public static class JsonText
{
    public const string NotUtf8 = "the body is not valid UTF-8 text";
    public const string LoneSurrogate = "a string holds a lone surrogate escape such as \\ud800, which is not Unicode text";

    /// <summary>
    /// Why <paramref name="utf8"/> is not text, or null when it is. Malformed JSON is not this method's concern: it
    /// answers null and leaves the refusal to the parser, which says where the JSON breaks.
    /// </summary>
    public static string? FindInvalidText(ReadOnlySpan<byte> utf8)
    {
        if (!Utf8.IsValid(utf8))
        {
            return NotUtf8;
        }

        // Only a \u escape can encode a surrogate; most bodies have none and are done here.
        if (utf8.IndexOf("\\u"u8) < 0)
        {
            return null;
        }

        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 256 });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !CanUnescape(ref reader))
                {
                    return LoneSurrogate;
                }
            }
        }
        catch (JsonException)
        {
            // Malformed: the parser refuses it with its own message.
        }

        return null;
    }

    private static bool CanUnescape(ref Utf8JsonReader reader)
    {
        // Unescaping never lengthens the text; it throws on an escaped lone surrogate.
        var rented = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
        try
        {
            reader.CopyString(rented);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
