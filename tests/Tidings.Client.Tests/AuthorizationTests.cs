using System.Net;
using System.Text.Json.Nodes;
using Tidings.Client.Bayeux;
using Tidings.Client.Tests.Support;

namespace Tidings.Client.Tests;

/// <summary>A client never sees what its user may not: the demo's per-user notes and signed-in-only flows.</summary>
public sealed class AuthorizationTests : IAsyncLifetime
{
    private DemoServer _server = null!;

    public async Task InitializeAsync() => _server = await DemoServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact(Timeout = 60_000)]
    public async Task A_user_cannot_open_another_users_notes_nor_a_flow_signed_out()
    {
        var ada = await _server.SignInAsync("ada");
        await using var adaClient = new TidingsClient(_server.Address, new TidingsClientOptions { Token = ada });
        await using var anonymous = new TidingsClient(_server.Address);

        var notes = await Assert.ThrowsAsync<TidingsException>(() => adaClient.CollectionAsync<JsonObject>("/api/users/bob/notes"));
        Assert.Equal(403, notes.Status);
        Assert.Equal("subscribe", notes.Operation);
        var flow = await Assert.ThrowsAsync<TidingsException>(() => anonymous.CollectionAsync<JsonObject>("/api/flows/main/messages"));
        Assert.Equal(403, flow.Status);

        // Her own notes open fine, and writing into bob's is refused and rolled back.
        var own = await adaClient.CollectionAsync<JsonObject>("/api/users/ada/notes");
        Assert.Empty(own.Items);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_pattern_subscriber_receives_only_the_notes_its_user_may_read()
    {
        var ada = await _server.SignInAsync("ada");
        var bob = await _server.SignInAsync("bob");
        await using var adaClient = new TidingsClient(_server.Address, new TidingsClientOptions { Token = ada });
        var received = new List<BayeuxMessage>();
        await adaClient.SubscribeAsync("/api/users/*/notes", m =>
        {
            lock (received)
            {
                received.Add(m);
            }
        });

        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/users/bob/notes", new JsonObject { ["text"] = "bob's secret" }, bob)).Status);
        Assert.Equal(201, (await _server.SendAsync(HttpMethod.Post, "/api/users/ada/notes", new JsonObject { ["text"] = "ada's note" }, ada)).Status);

        await Eventually.UntilAsync(() =>
        {
            lock (received)
            {
                return received.Any(m => (string?)m.Data?["body"]?["text"] == "ada's note");
            }
        }, "ada's own note");
        lock (received)
        {
            Assert.DoesNotContain(received, m => m.Raw.ToJsonString().Contains("secret", StringComparison.Ordinal));
            Assert.DoesNotContain(received, m => m.Channel == "/api/users/bob/notes" && m.Data?["body"] is not null);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_write_into_another_users_notes_is_refused_and_rolled_back()
    {
        var ada = await _server.SignInAsync("ada");
        var bob = await _server.SignInAsync("bob");
        await using var bobClient = new TidingsClient(_server.Address, new TidingsClientOptions { Token = bob });
        var tasks = await bobClient.CollectionAsync<JsonObject>("/api/users/ada/tasks"); // readable by every signed-in user

        var error = await Assert.ThrowsAsync<TidingsException>(() => tasks.CreateAsync(new JsonObject { ["title"] = "not yours" }));

        Assert.Equal(403, error.Status);
        Assert.Empty(tasks.Items);
        var (items, _) = await _server.ListAsync("/api/users/ada/tasks", ada);
        Assert.Empty(items);
    }

    [Fact(Timeout = 60_000)]
    public async Task Cookie_sign_in_works_for_rest_and_the_socket()
    {
        var cookies = new CookieContainer();
        using (var signIn = new HttpClient(new HttpClientHandler { CookieContainer = cookies }))
        {
            using var response = await signIn.PostAsync(new Uri(_server.Address, "/api/session"),
                new StringContent("""{"name":"ada"}""", System.Text.Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
        }

        await using var client = new TidingsClient(_server.Address, new TidingsClientOptions { Cookies = cookies });
        var notes = await client.CollectionAsync<JsonObject>("/api/users/ada/notes");
        var note = await notes.CreateAsync(new JsonObject { ["text"] = "by cookie" });
        Assert.Equal("by cookie", (string?)note["text"]);
        Assert.Equal("websocket", client.Bayeux.ConnectionType);
    }
}
