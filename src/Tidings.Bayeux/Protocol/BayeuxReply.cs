using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tidings.Bayeux.Protocol;

/// <summary>
/// The server's answer to one client message. Every reply echoes the request's <c>id</c> and carries
/// <c>successful</c>; failures carry an <c>error</c> string from <see cref="BayeuxError"/>. Outgoing
/// extensions may add to <see cref="Ext"/> or <see cref="Advice"/> before it is written.
/// </summary>
public sealed class BayeuxReply
{
    public BayeuxReply(string channel, JsonElement? id)
    {
        Channel = channel;
        Id = id;
    }

    public string Channel { get; }
    public JsonElement? Id { get; }
    public bool Successful { get; set; } = true;
    public string? Error { get; private set; }
    public string? ClientId { get; set; }
    public string? Version { get; set; }
    public IReadOnlyList<string>? SupportedConnectionTypes { get; set; }

    /// <summary>Echo of a (un)subscribe request's subscription, as a string or an array like the request.</summary>
    public IReadOnlyList<string>? Subscriptions { get; set; }
    public bool SubscriptionIsArray { get; set; }

    public JsonObject? Advice { get; set; }
    public JsonObject? Ext { get; set; }

    /// <summary>A service reply's payload (CometD <c>remoteCall</c>); plain publish replies have none.</summary>
    public JsonNode? Data { get; set; }
    public bool HasData { get; set; }

    /// <summary>Marks the reply failed with a <c>code:args:message</c> error.</summary>
    public BayeuxReply Fail(string error)
    {
        Successful = false;
        Error = error;
        return this;
    }

    public JsonObject GetOrCreateExt() => Ext ??= [];

    public JsonObject GetOrCreateAdvice() => Advice ??= [];

    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString(JsonNames.Channel, Channel);
        if (Id is { } id)
        {
            writer.WritePropertyName(JsonNames.Id);
            id.WriteTo(writer);
        }

        writer.WriteBoolean(JsonNames.Successful, Successful);
        if (ClientId is not null)
        {
            writer.WriteString(JsonNames.ClientId, ClientId);
        }

        if (Version is not null)
        {
            writer.WriteString(JsonNames.Version, Version);
        }

        if (SupportedConnectionTypes is not null)
        {
            writer.WriteStartArray(JsonNames.SupportedConnectionTypes);
            foreach (var type in SupportedConnectionTypes)
            {
                writer.WriteStringValue(type);
            }

            writer.WriteEndArray();
        }

        if (Subscriptions is not null)
        {
            if (SubscriptionIsArray || Subscriptions.Count != 1)
            {
                writer.WriteStartArray(JsonNames.Subscription);
                foreach (var s in Subscriptions)
                {
                    writer.WriteStringValue(s);
                }

                writer.WriteEndArray();
            }
            else
            {
                writer.WriteString(JsonNames.Subscription, Subscriptions[0]);
            }
        }

        if (Error is not null)
        {
            writer.WriteString(JsonNames.Error, Error);
        }

        if (Advice is not null)
        {
            writer.WritePropertyName(JsonNames.Advice);
            Advice.WriteTo(writer);
        }

        if (Ext is not null)
        {
            writer.WritePropertyName(JsonNames.Ext);
            Ext.WriteTo(writer);
        }

        if (HasData)
        {
            writer.WritePropertyName(JsonNames.Data);
            if (Data is null)
            {
                writer.WriteNullValue();
            }
            else
            {
                Data.WriteTo(writer);
            }
        }

        writer.WriteEndObject();
    }

    /// <summary>The reply as UTF-8 JSON object bytes.</summary>
    public byte[] ToUtf8()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>Pre-encoded property names shared by every writer.</summary>
internal static class JsonNames
{
    public static readonly JsonEncodedText Channel = JsonEncodedText.Encode("channel");
    public static readonly JsonEncodedText Id = JsonEncodedText.Encode("id");
    public static readonly JsonEncodedText Successful = JsonEncodedText.Encode("successful");
    public static readonly JsonEncodedText ClientId = JsonEncodedText.Encode("clientId");
    public static readonly JsonEncodedText Version = JsonEncodedText.Encode("version");
    public static readonly JsonEncodedText SupportedConnectionTypes = JsonEncodedText.Encode("supportedConnectionTypes");
    public static readonly JsonEncodedText Subscription = JsonEncodedText.Encode("subscription");
    public static readonly JsonEncodedText Error = JsonEncodedText.Encode("error");
    public static readonly JsonEncodedText Advice = JsonEncodedText.Encode("advice");
    public static readonly JsonEncodedText Ext = JsonEncodedText.Encode("ext");
    public static readonly JsonEncodedText Data = JsonEncodedText.Encode("data");
}
