using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Tidings.Client.Bayeux;

/// <summary>
/// Bayeux over HTTP POSTs: each batch is one request and its replies (and, for a connect, the deliveries that
/// released it) are the response. Requests run side by side, so a held connect does not block a publish.
/// </summary>
internal sealed class LongPollingTransport(HttpClient http, Uri endpoint, Action<HttpRequestMessage> prepare, IBayeuxTransportSink sink, int maxMessageBytes)
    : BayeuxTransport(sink)
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json") { CharSet = "utf-8" };
    private static readonly Task Never = new TaskCompletionSource().Task;

    public override string ConnectionType => "long-polling";

    public override bool RepliesInResponse => true;

    public override Task Closed => Never;

    public override async Task SendAsync(JsonArray batch, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
        {
            Content = new StringContent(batch.ToJsonString(), Encoding.UTF8, JsonType.MediaType),
        };
        prepare(request);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or System.Net.Sockets.SocketException)
        {
            throw new BayeuxTransportException("the long-polling request failed", ex);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw new BayeuxTransportException($"the long-polling request was answered {(int)response.StatusCode}");
            }

            byte[] body;
            try
            {
                body = await ReadCappedAsync(response.Content, cancellationToken);
            }
            catch (IOException ex)
            {
                throw new BayeuxTransportException("the long-polling response was cut", ex);
            }
            catch (HttpRequestException ex)
            {
                throw new BayeuxTransportException("the long-polling response was cut", ex);
            }

            if (body.Length > maxMessageBytes)
            {
                Sink.ReportBadInput($"a long-polling response over the limit of {maxMessageBytes} bytes (MaxMessageBytes)");
                return;
            }

            if (Parse(body) is { Count: > 0 } messages)
            {
                await Sink.ReceiveAsync(messages, cancellationToken);
            }
        }
    }

    /// <summary>Reads at most one byte past the limit, so an oversized body is recognised without being held.</summary>
    private async Task<byte[]> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var memory = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (memory.Length + read > maxMessageBytes)
            {
                // Drain the rest without keeping it.
                while (await stream.ReadAsync(buffer, cancellationToken) > 0)
                {
                }

                return new byte[maxMessageBytes + 1];
            }

            memory.Write(buffer, 0, read);
        }

        return memory.ToArray();
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
