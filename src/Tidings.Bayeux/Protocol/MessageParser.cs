using System.Text.Json;

namespace Tidings.Bayeux.Protocol;

/// <summary>
/// Turns a request body (a JSON array of messages, or a single message object) into messages.
/// Structural problems (not JSON, not objects) fail the whole request; a message with wrong field types
/// or over the size limit is kept with <see cref="BayeuxMessage.ParseError"/> so it gets its own error
/// reply while its neighbours are handled normally. Text that is not Unicode (invalid UTF-8, a lone surrogate escape)
/// fails the whole request too: nothing in it could be echoed or stored safely.
/// </summary>
public static class MessageParser
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>Parses <paramref name="utf8"/>; returns false with a reason when the body is not a Bayeux request.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, int maxMessageBytes, int maxMessages,
        out List<BayeuxMessage> messages, out string? error)
    {
        messages = [];
        error = JsonText.FindInvalidText(utf8);
        if (error is not null)
        {
            // Refused whole, before any message is handled: its id could not even be echoed (issue 16).
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8, ReaderOptions);
            if (!reader.Read())
            {
                error = "empty body";
                return false;
            }

            if (reader.TokenType == JsonTokenType.StartObject)
            {
                messages.Add(ReadOne(ref reader, maxMessageBytes));
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        error = "every message must be a JSON object";
                        return false;
                    }

                    if (messages.Count == maxMessages)
                    {
                        error = BayeuxError.TooManyMessages(messages.Count + 1, maxMessages);
                        return false;
                    }

                    messages.Add(ReadOne(ref reader, maxMessageBytes));
                }
            }
            else
            {
                error = "expected a JSON array of messages or one message object";
                return false;
            }

            if (reader.Read())
            {
                error = "unexpected data after the messages";
                return false;
            }

            return true;
        }
        catch (JsonException ex)
        {
            error = "malformed JSON: " + ex.Message;
            messages = [];
            return false;
        }
    }

    private static BayeuxMessage ReadOne(ref Utf8JsonReader reader, int maxMessageBytes)
    {
        var start = reader.TokenStartIndex;
        var element = JsonElement.ParseValue(ref reader);
        var size = checked((int)(reader.BytesConsumed - start));
        var message = new BayeuxMessage { SizeInBytes = size };

        // The id and channel are read even from an oversized message, so its error reply can be matched.
        if (element.TryGetProperty("id", out var id) && id.ValueKind is JsonValueKind.String or JsonValueKind.Number)
        {
            message.Id = id;
        }

        message.Channel = ReadString(element, "channel", message);
        message.ClientId = ReadString(element, "clientId", message);
        if (size > maxMessageBytes)
        {
            message.ParseError = BayeuxError.MessageTooLarge(size, maxMessageBytes);
            return message;
        }

        message.ConnectionType = ReadString(element, "connectionType", message);
        message.Version = ReadString(element, "version", message);
        if (element.TryGetProperty("data", out var data))
        {
            message.Data = data;
        }

        if (element.TryGetProperty("ext", out var ext))
        {
            message.Ext = ext;
        }

        if (element.TryGetProperty("advice", out var advice))
        {
            message.Advice = advice;
        }

        if (element.TryGetProperty("supportedConnectionTypes", out var types))
        {
            message.SupportedConnectionTypes = ReadStringList(types, "supportedConnectionTypes", message);
        }

        if (element.TryGetProperty("subscription", out var subscription))
        {
            if (subscription.ValueKind == JsonValueKind.String)
            {
                message.Subscriptions = [subscription.GetString()!];
            }
            else
            {
                message.SubscriptionIsArray = true;
                message.Subscriptions = ReadStringList(subscription, "subscription", message);
            }
        }

        return message;
    }

    private static string? ReadString(JsonElement element, string name, BayeuxMessage message)
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            message.ParseError ??= BayeuxError.BadRequest($"'{name}' must be a string");
            return null;
        }

        return value.GetString();
    }

    private static string[]? ReadStringList(JsonElement value, string name, BayeuxMessage message)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            message.ParseError ??= BayeuxError.BadRequest($"'{name}' must be a string or an array of strings");
            return null;
        }

        var result = new string[value.GetArrayLength()];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                message.ParseError ??= BayeuxError.BadRequest($"'{name}' must contain only strings");
                return null;
            }

            result[i++] = item.GetString()!;
        }

        return result;
    }
}
