using System.Text.Json;
using System.Text.Json.Nodes;
using Tidings.Bayeux.Protocol;

namespace Tidings.Bayeux.Server;

/// <summary>Handles publishes to a <c>/service/**</c> channel; these never reach other clients.</summary>
public delegate ValueTask BayeuxServiceHandler(BayeuxServiceCall call, CancellationToken cancellationToken);

/// <summary>
/// A client's publish to a service channel. <see cref="Reply"/> puts <c>data</c> into the publish reply,
/// which carries the request's <c>id</c> — what CometD's <c>remoteCall</c> waits for.
/// </summary>
public sealed class BayeuxServiceCall
{
    private readonly BayeuxReply _reply;

    internal BayeuxServiceCall(BayeuxMessage message, BayeuxSession session, BayeuxTransportContext transport, BayeuxReply reply)
    {
        Message = message;
        Session = session;
        Transport = transport;
        _reply = reply;
    }

    public string Channel => Message.Channel!;
    public JsonElement Data => Message.Data ?? default;
    public BayeuxMessage Message { get; }
    public BayeuxSession Session { get; }
    public BayeuxTransportContext Transport { get; }

    public void Reply(JsonNode? data)
    {
        _reply.Data = data;
        _reply.HasData = true;
    }

    public void Fail(string error) => _reply.Fail(error);

    /// <summary>Adds a field to the reply's <c>ext</c> (for results that must not look like a delivery's <c>data</c>).</summary>
    public void ReplyExt(string name, JsonNode? value) => _reply.GetOrCreateExt()[name] = value;
}
