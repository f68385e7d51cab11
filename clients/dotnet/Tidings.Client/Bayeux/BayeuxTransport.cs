using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tidings.Client.Bayeux;

/// <summary>What a transport hands up: every batch it receives, and input it could not use.</summary>
internal interface IBayeuxTransportSink
{
    /// <summary>A batch of messages, in order. Awaiting applies back-pressure: the transport reads no further meanwhile.</summary>
    ValueTask ReceiveAsync(IReadOnlyList<JsonObject> batch, CancellationToken cancellationToken);

    /// <summary>Input from the server that was dropped (garbled, oversized, not Bayeux). Never fatal.</summary>
    void ReportBadInput(string what);
}

/// <summary>
/// One way of carrying Bayeux batches. Replies are matched by the client through the sink (on WebSocket they
/// arrive on their own; on long-polling they are the response to the request).
/// </summary>
internal abstract class BayeuxTransport : IAsyncDisposable
{
    protected BayeuxTransport(IBayeuxTransportSink sink) => Sink = sink;

    protected IBayeuxTransportSink Sink { get; }

    public abstract string ConnectionType { get; }

    /// <summary>True when every reply comes back in the response to its own request.</summary>
    public abstract bool RepliesInResponse { get; }

    /// <summary>Completes (with the reason) when the transport can carry nothing more; never for long-polling.</summary>
    public abstract Task Closed { get; }

    public bool IsClosed => Closed.IsCompleted;

    /// <summary>Sends a batch. Long-polling completes after the response has been handed to the sink.</summary>
    public abstract Task SendAsync(JsonArray batch, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    /// <summary>Parses a received payload (an array of messages, or one message) into the sink's terms.</summary>
    protected List<JsonObject>? Parse(ReadOnlySpan<byte> payload)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(payload);
        }
        catch (JsonException)
        {
            Sink.ReportBadInput($"a payload of {payload.Length} bytes that is not JSON");
            return null;
        }

        var messages = new List<JsonObject>();
        void Add(JsonNode? item)
        {
            if (item is JsonObject message && message["channel"] is JsonValue channel && channel.GetValueKind() == JsonValueKind.String)
            {
                message.Parent?.AsArray().Remove(message);
                messages.Add(message);
            }
            else
            {
                Sink.ReportBadInput("a message without a channel");
            }
        }

        switch (node)
        {
            case JsonArray array:
                foreach (var item in array.ToArray())
                {
                    Add(item);
                }

                break;
            case JsonObject:
                Add(node);
                break;
            default:
                Sink.ReportBadInput("a payload that is neither a message nor an array of messages");
                return null;
        }

        return messages;
    }
}

/// <summary>The transport failed: no answer can come through it.</summary>
internal sealed class BayeuxTransportException : Exception
{
    public BayeuxTransportException()
        : this("transport failed")
    {
    }

    public BayeuxTransportException(string message)
        : base(message)
    {
    }

    public BayeuxTransportException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
