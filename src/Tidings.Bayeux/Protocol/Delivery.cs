using System.Buffers;
using System.Text.Json;

namespace Tidings.Bayeux.Protocol;

/// <summary>
/// A published message on its way to subscribers, serialized once: <c>[{"channel":…,"data":…}]</c>.
/// Every recipient gets the same bytes — a WebSocket frame sends <see cref="Frame"/> as it is, a batch
/// copies <see cref="Message"/> between its brackets. Deliveries carry neither the publisher's
/// <c>clientId</c> nor its message <c>id</c>.
/// </summary>
public sealed class Delivery
{
    private JsonElement? _data;
    private PatternVariant? _onPattern;

    private Delivery(string channel, byte[] frame, JsonElement? data)
    {
        Channel = channel;
        Frame = frame;
        _data = data;
    }

    public string Channel { get; }

    /// <summary>The delivery as a one-message Bayeux batch (a JSON array).</summary>
    public byte[] Frame { get; }

    /// <summary>The delivery's message object, without the array brackets.</summary>
    public ReadOnlyMemory<byte> Message => Frame.AsMemory(1, Frame.Length - 2);

    /// <summary>Bytes this delivery costs in an outbound queue.</summary>
    public int Size => Frame.Length;

    /// <summary>The payload, parsed on first use (only server-side subscribers need it).</summary>
    public JsonElement Data => _data ??= ReadData();

    /// <summary>
    /// Decides per recipient what it gets (this delivery, another shared variant, or nothing); null lets
    /// everyone have it. Runs on the fan-out path for every recipient: in memory, no I/O, no per-call allocation.
    /// </summary>
    public IDeliveryFilter? Filter { get; init; }

    /// <summary>
    /// This delivery as it goes to a subscription that asked for pattern delivery (CometD's clients route a message to
    /// a subscription by its channel, so an inner-wildcard subscription must receive it on its own pattern):
    /// <c>{"channel": pattern, "data": …, "ext": {"channel": the concrete channel}}</c>. Made once per pattern and
    /// kept for the next recipient of the same pattern (one slot: recipients of one pattern come in a row).
    /// </summary>
    public Delivery OnPattern(string pattern)
    {
        if (Volatile.Read(ref _onPattern) is { } cached && string.Equals(cached.Pattern, pattern, StringComparison.Ordinal))
        {
            return cached.Delivery;
        }

        var buffer = new ArrayBufferWriter<byte>(Frame.Length + pattern.Length + 32);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStartObject();
            writer.WriteString(JsonNames.Channel, pattern);
            writer.WritePropertyName(JsonNames.Data);
            writer.WriteRawValue(DataBytes(), skipInputValidation: true);
            writer.WriteStartObject(JsonNames.Ext);
            writer.WriteString(JsonNames.Channel, Channel);
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteEndArray();
        }

        var made = new Delivery(pattern, buffer.WrittenSpan.ToArray(), _data);
        Volatile.Write(ref _onPattern, new PatternVariant(pattern, made));
        return made;
    }

    /// <summary>The serialized <c>data</c> value inside <see cref="Frame"/>.</summary>
    private ReadOnlySpan<byte> DataBytes()
    {
        var reader = new Utf8JsonReader(Message.Span);
        reader.Read(); // the message object
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isData = reader.ValueTextEquals("data"u8);
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            if (isData)
            {
                return Message.Span[start..(int)reader.BytesConsumed];
            }
        }

        throw new InvalidOperationException("A delivery always carries data.");
    }

    private sealed record PatternVariant(string Pattern, Delivery Delivery);

    /// <summary>A copy of this delivery's bytes that recipients of <paramref name="filter"/> pass through.</summary>
    public Delivery WithFilter(IDeliveryFilter filter) => new(Channel, Frame, _data) { Filter = filter };

    public static Delivery Create(string channel, JsonElement data)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStartObject();
            writer.WriteString(JsonNames.Channel, channel);
            writer.WritePropertyName(JsonNames.Data);
            data.WriteTo(writer);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }

        return new Delivery(channel, buffer.WrittenSpan.ToArray(), data);
    }

    /// <summary>Creates a delivery from a UTF-8 JSON payload that is already serialized (validated here).</summary>
    public static Delivery CreateRaw(string channel, ReadOnlySpan<byte> utf8JsonData)
    {
        var buffer = new ArrayBufferWriter<byte>(utf8JsonData.Length + 64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            writer.WriteStartObject();
            writer.WriteString(JsonNames.Channel, channel);
            writer.WritePropertyName(JsonNames.Data);
            writer.WriteRawValue(utf8JsonData, skipInputValidation: false);
            writer.WriteEndObject();
            writer.WriteEndArray();
        }

        return new Delivery(channel, buffer.WrittenSpan.ToArray(), null);
    }

    private JsonElement ReadData()
    {
        using var doc = JsonDocument.Parse(Message);
        return doc.RootElement.GetProperty("data").Clone();
    }
}

/// <summary>Per-recipient selection of a delivery (authorization on the fan-out path).</summary>
public interface IDeliveryFilter
{
    /// <summary>
    /// What <paramref name="recipient"/> receives of <paramref name="delivery"/>: the delivery itself, a
    /// different delivery (say, a removal), or null for nothing. Server-side subscribers are not filtered.
    /// </summary>
    Delivery? Select(Server.BayeuxSession recipient, Delivery delivery);
}
