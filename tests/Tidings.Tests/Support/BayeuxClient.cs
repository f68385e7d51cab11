using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Tests.Support;

/// <summary>A delivery received on a channel: the channel it came on and its data.</summary>
internal sealed record Received(string Channel, JsonObject Data)
{
    public string Method => Data["method"]!.GetValue<string>();
    public long Seq => Data["seq"]!.GetValue<long>();
    public JsonObject Body => Data["body"]!.AsObject();
    public string Id => Body["id"]!.GetValue<string>();
}

/// <summary>
/// A minimal Bayeux long-polling client over HTTP POSTs to <c>/bayeux</c>, as Faye and CometD speak it.
/// Deliveries arrive only in connect answers; <see cref="NextAsync"/> polls until it has what it waits for.
/// </summary>
internal sealed class BayeuxClient(HttpClient http, string path = "/bayeux")
{
    private readonly Queue<Received> _inbox = new();
    private int _id;

    public string? ClientId { get; private set; }

    public async Task<JsonArray> SendAsync(JsonObject message, CancellationToken cancellationToken = default)
    {
        message["id"] = (++_id).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (ClientId is not null && message["clientId"] is null && message["channel"]!.GetValue<string>() != "/meta/handshake")
        {
            message["clientId"] = ClientId;
        }

        using var content = new StringContent(new JsonArray(message).ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(path, content, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsArray();
    }

    /// <summary>Sends one message that is not a connect and returns its reply.</summary>
    public async Task<JsonObject> RequestAsync(JsonObject message)
    {
        var channel = message["channel"]!.GetValue<string>();
        var answer = await SendAsync(message);
        return answer.Select(m => m!.AsObject()).Single(m => m["channel"]!.GetValue<string>() == channel && m.ContainsKey("successful"));
    }

    public async Task<string> HandshakeAsync(JsonObject? ext = null)
    {
        var reply = await TryHandshakeAsync(ext);
        Succeeded(reply);
        return ClientId!;
    }

    /// <summary>A handshake that may be refused; on success the client is bound to the new session.</summary>
    public async Task<JsonObject> TryHandshakeAsync(JsonObject? ext = null)
    {
        var message = new JsonObject
        {
            ["channel"] = "/meta/handshake",
            ["version"] = "1.0",
            ["supportedConnectionTypes"] = new JsonArray("long-polling"),
        };
        if (ext is not null)
        {
            message["ext"] = ext;
        }

        var reply = await RequestAsync(message);
        if (reply["successful"]!.GetValue<bool>() is false)
        {
            return reply;
        }

        ClientId = reply["clientId"]!.GetValue<string>();
        _inbox.Clear();
        return reply;
    }

    /// <summary>Subscribes; an inner wildcard (<c>/api/flows/*/messages</c>) asks for its events on each concrete channel,
    /// which this client's tests read (<c>ext.delivery: "concrete"</c>, as the Tidings clients ask).</summary>
    public Task<JsonObject> SubscribeAsync(string channel, JsonObject? ext = null)
    {
        var message = new JsonObject { ["channel"] = "/meta/subscribe", ["subscription"] = channel };
        if (Tidings.Bayeux.Protocol.ChannelName.HasInnerWildcard(channel))
        {
            ext ??= [];
            ext["delivery"] ??= "concrete";
        }

        if (ext is not null)
        {
            message["ext"] = ext;
        }

        return RequestAsync(message);
    }

    public Task<JsonObject> UnsubscribeAsync(string channel) =>
        RequestAsync(new JsonObject { ["channel"] = "/meta/unsubscribe", ["subscription"] = channel });

    public Task<JsonObject> PublishAsync(string channel, JsonNode data) =>
        RequestAsync(new JsonObject { ["channel"] = channel, ["data"] = data });

    public async Task DisconnectAsync()
    {
        if (ClientId is not null)
        {
            await RequestAsync(new JsonObject { ["channel"] = "/meta/disconnect" });
            ClientId = null;
        }
    }

    /// <summary>One connect, answered when a delivery is waiting or after <paramref name="timeoutMs"/>; deliveries go to the inbox.</summary>
    public async Task<int> PollAsync(int timeoutMs = 0, CancellationToken cancellationToken = default)
    {
        var answer = await SendAsync(new JsonObject
        {
            ["channel"] = "/meta/connect",
            ["connectionType"] = "long-polling",
            ["advice"] = new JsonObject { ["timeout"] = timeoutMs },
        }, cancellationToken);
        var count = 0;
        foreach (var message in answer.Select(m => m!.AsObject()))
        {
            if (message["channel"]!.GetValue<string>() == "/meta/connect")
            {
                Succeeded(message);
                continue;
            }

            _inbox.Enqueue(new Received(message["channel"]!.GetValue<string>(), message["data"]!.AsObject()));
            count++;
        }

        return count;
    }

    /// <summary>The next <paramref name="count"/> deliveries, polling until they arrive or the deadline passes.</summary>
    public async Task<IReadOnlyList<Received>> NextAsync(int count, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? Eventually.Patience);
        while (_inbox.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"Waited for {count} deliveries, got {_inbox.Count}: {string.Join(", ", _inbox.Select(r => r.Data.ToJsonString()))}");
            await PollAsync((int)Math.Min(left.TotalMilliseconds, 1000));
        }

        return [.. Enumerable.Range(0, count).Select(_ => _inbox.Dequeue())];
    }

    public async Task<Received> NextAsync() => (await NextAsync(1))[0];

    /// <summary>Asserts nothing is waiting: a connect with a zero timeout brings no delivery.</summary>
    public async Task AssertNothingWaitingAsync()
    {
        await PollAsync(0);
        Assert.True(_inbox.Count == 0, "Unexpected deliveries: " + string.Join(", ", _inbox.Select(r => r.Data.ToJsonString())));
    }

    public static void Succeeded(JsonObject reply) =>
        Assert.True(reply["successful"]!.GetValue<bool>(), reply.ToJsonString());

    /// <summary>Asserts a failed reply whose error starts with <paramref name="code"/>.</summary>
    public static void FailedWith(int code, JsonObject reply)
    {
        Assert.False(reply["successful"]!.GetValue<bool>(), reply.ToJsonString());
        Assert.StartsWith(code.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":", reply["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
