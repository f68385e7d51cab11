using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tidings.Bayeux.Protocol;
using Tidings.Bayeux.Server;

namespace Tidings.Bayeux.Tests.Support;

/// <summary>
/// A <see cref="BayeuxServer"/> in memory on a <see cref="ManualTimeProvider"/>: requests are JSON text,
/// parsed the way the HTTP transport parses them, and replies come back as JSON to assert on.
/// </summary>
internal sealed class BayeuxHarness : IDisposable
{
    /// <summary>Bound on every await, so a broken release fails the test instead of hanging it.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    public BayeuxHarness(Action<BayeuxOptions>? configure = null, params IBayeuxExtension[] extensions)
    {
        var options = new BayeuxOptions();
        configure?.Invoke(options);
        Server = new BayeuxServer(Options.Create(options), Time, NullLogger<BayeuxServer>.Instance, extensions);
    }

    public ManualTimeProvider Time { get; } = new();

    public BayeuxServer Server { get; }

    public static BayeuxTransportContext Transport(CancellationToken aborted = default) =>
        new(new DefaultHttpContext(), "long-polling", null, aborted);

    public static List<BayeuxMessage> Parse(string json, int maxMessageBytes = BayeuxOptions.DefaultMaxMessageBytes,
        int maxMessages = BayeuxOptions.DefaultMaxMessagesPerBatch)
    {
        Assert.True(MessageParser.TryParse(Encoding.UTF8.GetBytes(json), maxMessageBytes, maxMessages, out var messages, out var error), error);
        return messages;
    }

    public static JsonElement ToJson(BayeuxReply reply)
    {
        using var document = JsonDocument.Parse(reply.ToUtf8());
        return document.RootElement.Clone();
    }

    /// <summary>Handles a batch (JSON text) as one request.</summary>
    public async Task<BatchOutcome> SendAsync(string json, CancellationToken aborted = default)
    {
        var messages = Parse(json, Server.Options.MaxMessageBytes, Server.Options.MaxMessagesPerBatch);
        return await Server.HandleAsync(messages, Transport(aborted), aborted).AsTask().WaitAsync(Patience, CancellationToken.None);
    }

    /// <summary>Sends one message that is not a connect and returns its one reply.</summary>
    public async Task<JsonElement> RequestAsync(string json)
    {
        var outcome = await SendAsync(json);
        Assert.Null(outcome.Connect);
        return ToJson(Assert.Single(outcome.Replies));
    }

    public async Task<string> HandshakeAsync(bool ack = false)
    {
        var ext = ack ? ""","ext":{"ack":true}""" : "";
        var reply = await RequestAsync($$"""{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]{{ext}}}""");
        Assert.True(reply.GetProperty("successful").GetBoolean(), reply.ToString());
        return reply.GetProperty("clientId").GetString()!;
    }

    /// <summary>Sends a connect and starts completing it, as the long-polling transport does.</summary>
    /// <param name="extra">More JSON members for the message, starting with a comma.</param>
    public async Task<PendingConnect> ConnectAsync(string clientId, string extra = "", CancellationToken aborted = default)
    {
        var outcome = await SendAsync(
            $$"""{"channel":"/meta/connect","clientId":"{{clientId}}","connectionType":"long-polling","id":"c1"{{extra}}}""", aborted);
        Assert.Empty(outcome.Replies);
        return Start(outcome);
    }

    public PendingConnect Start(BatchOutcome outcome)
    {
        var connect = outcome.Connect;
        Assert.NotNull(connect);
        return new PendingConnect(connect, Server.CompleteConnectAsync(connect, CancellationToken.None).AsTask());
    }

    /// <summary>A connect that is answered at once; returns what the transport would send.</summary>
    public async Task<ConnectResult> PollAsync(string clientId, string extra = "")
    {
        var pending = await ConnectAsync(clientId, extra + ""","advice":{"timeout":0}""");
        return await pending.ResultAsync();
    }

    /// <param name="ext">The subscribe's <c>ext</c> as JSON, or null for none.</param>
    public Task<JsonElement> SubscribeAsync(string clientId, string subscription, string? ext = null) =>
        RequestAsync($$"""{"channel":"/meta/subscribe","clientId":"{{clientId}}","subscription":{{subscription}},"id":"s1"{{(ext is null ? "" : ",\"ext\":" + ext)}}}""");

    public Task<JsonElement> UnsubscribeAsync(string clientId, string subscription) =>
        RequestAsync($$"""{"channel":"/meta/unsubscribe","clientId":"{{clientId}}","subscription":{{subscription}},"id":"u1"}""");

    public Task<JsonElement> PublishAsync(string clientId, string channel, string data, string id = "\"p1\"") =>
        RequestAsync($$"""{"channel":"{{channel}}","clientId":"{{clientId}}","data":{{data}},"id":{{id}}}""");

    /// <summary>Handshakes and subscribes (each entry is a JSON subscription value, e.g. <c>"/chat"</c>).</summary>
    public async Task<string> SubscriberAsync(params string[] channels)
    {
        var clientId = await HandshakeAsync();
        foreach (var channel in channels)
        {
            var reply = await SubscribeAsync(clientId, $"\"{channel}\"");
            Assert.True(reply.GetProperty("successful").GetBoolean(), reply.ToString());
        }

        return clientId;
    }

    /// <summary>Opens a WebSocket to the server, as an upgrade request does.</summary>
    public SocketClient OpenSocket() => new(Server);

    public void Dispose() => Server.Dispose();
}

/// <summary>A connect on its way: held until released, then completed.</summary>
internal sealed class PendingConnect(HeldConnect connect, Task<ConnectCompletion> completion)
{
    public HeldConnect Connect { get; } = connect;

    public bool IsHeld => !Connect.Released.IsCompleted;

    public async Task<ConnectResult> ResultAsync()
    {
        var done = await completion.WaitAsync(BayeuxHarness.Patience);
        var reason = await Connect.Released.WaitAsync(BayeuxHarness.Patience);
        return new ConnectResult(
            reason,
            done.Reply is null ? null : BayeuxHarness.ToJson(done.Reply),
            [.. done.Deliveries.Select(d => Encoding.UTF8.GetString(d.Message.Span))]);
    }
}

/// <summary>What a completed connect sends: the deliveries (as JSON text) and the connect reply.</summary>
internal sealed record ConnectResult(ConnectRelease Reason, JsonElement? Reply, IReadOnlyList<string> Deliveries)
{
    public JsonElement SuccessfulReply
    {
        get
        {
            var reply = Assert.NotNull(Reply);
            Assert.True(reply.GetProperty("successful").GetBoolean(), reply.ToString());
            return reply;
        }
    }

    public IReadOnlyList<string> Data => [.. Deliveries.Select(d => JsonDocument.Parse(d).RootElement.GetProperty("data").GetRawText())];
}

internal static class ReplyAssert
{
    public static void Succeeded(JsonElement reply) =>
        Assert.True(reply.GetProperty("successful").GetBoolean(), reply.ToString());

    /// <summary>Asserts a failed reply whose error starts with <paramref name="code"/>.</summary>
    public static void FailedWith(int code, JsonElement reply)
    {
        Assert.False(reply.GetProperty("successful").GetBoolean(), reply.ToString());
        var error = reply.GetProperty("error").GetString()!;
        Assert.StartsWith(code.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":", error, StringComparison.Ordinal);
    }
}
