namespace Tidings.Client.Tests.Support;

/// <summary>
/// Lets a test hold HTTP responses on their way to the client: each response is offered to <see cref="Gate"/>, which
/// may wait before the client sees it. With long-polling, Bayeux deliveries travel through here too, so a test can
/// order a write's reply and its event as it likes.
/// </summary>
internal sealed class GatedHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public Func<HttpRequestMessage, string, Task>? Gate { get; set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        if (Gate is { } gate && response.StatusCode != System.Net.HttpStatusCode.SwitchingProtocols)
        {
            // Buffer the body so the gate can read it and the client still gets it whole.
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            await gate(request, text);
        }

        return response;
    }
}
