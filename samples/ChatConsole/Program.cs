using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Tidings.ChatConsole;
using Tidings.Client;
using Tidings.Client.Collections;

// A chat flow in the terminal: signs in by name, shows the flow live and sends each line you type.
//   dotnet run --project samples/ChatConsole -- --url http://127.0.0.1:5080 --flow main --name ada
// Lines starting with "/" are commands: /quit.
var url = new Uri(Argument("--url") ?? "http://127.0.0.1:5080");
var flow = Argument("--flow") ?? "main";
var name = Argument("--name") ?? Environment.UserName;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

// The demo's sign-in: POST /api/session {"name"} answers with a bearer token.
string token;
using (var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) })
{
    using var response = await http.PostAsJsonAsync("/api/session", new SignIn(name), ChatJson.Default.SignIn, cancel.Token);
    if (!response.IsSuccessStatusCode)
    {
        Console.Error.WriteLine($"Sign-in as '{name}' failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancel.Token)}");
        return 1;
    }

    token = (await response.Content.ReadFromJsonAsync(ChatJson.Default.Session, cancel.Token))!.Token;
}

var options = new TidingsClientOptions { Token = token, Writes = WriteChannel.Socket };
options.JsonSerializerOptions.TypeInfoResolverChain.Insert(0, ChatJson.Default);
await using var client = new TidingsClient(url, options);
client.Bayeux.StateChanged += (_, state) => Console.WriteLine($"  [{state.ToString().ToLowerInvariant()}]");

LiveCollection<Message> messages;
try
{
    messages = await client.CollectionAsync<Message>($"/api/flows/{flow}/messages", cancel.Token);
}
catch (TidingsException ex)
{
    Console.Error.WriteLine($"Cannot open flow '{flow}': {ex.Status} {ex.Message}");
    return 1;
}

Console.WriteLine($"# {flow} — signed in as {name}. Type a message and press Enter; /quit to leave.");
foreach (var message in messages.Items.OrderBy(m => m.CreatedAt))
{
    Print(message);
}

messages.Error += (_, error) => Console.WriteLine($"  ! {error.Status} {error.Message}");
var printing = Task.Run(async () =>
{
    try
    {
        await foreach (var change in messages.ChangesAsync(cancel.Token))
        {
            if (change.Kind == CollectionChangeKind.Added && change.Item is { User: { } user } added && user != name)
            {
                Print(added); // our own lines are on screen already, as typed (and show first unstamped)
            }
            else if (change.Kind == CollectionChangeKind.Removed && change.Previous is { } removed)
            {
                Console.WriteLine($"  (deleted: {removed.User}: {removed.Content})");
            }
        }
    }
    catch (OperationCanceledException)
    {
    }
});

while (!cancel.IsCancellationRequested)
{
    var line = await Console.In.ReadLineAsync(cancel.Token);
    if (line is null || line.Trim() == "/quit")
    {
        break;
    }

    if (line.Trim().Length == 0)
    {
        continue;
    }

    try
    {
        await messages.CreateAsync(new Message { Content = line }, cancel.Token);
    }
    catch (TidingsException ex)
    {
        Console.WriteLine($"  ! not sent ({ex.Status}): {ex.Message}");
    }
    catch (OperationCanceledException)
    {
        break;
    }
}

await cancel.CancelAsync();
await printing;
return 0;

static void Print(Message message) => Console.WriteLine($"{message.CreatedAt?.ToLocalTime():HH:mm} {message.User}: {message.Content}");

string? Argument(string option)
{
    var index = Array.IndexOf(args, option);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

namespace Tidings.ChatConsole
{
    internal sealed record SignIn(string Name);

    internal sealed record Session(string Name, string Token);

    /// <summary>A record of <c>/api/flows/{flow}/messages</c>; <c>user</c> is stamped by the server.</summary>
    internal sealed class Message
    {
        public string? Id { get; set; }

        public long? Version { get; set; }

        public string Content { get; set; } = "";

        public string? User { get; set; }

        public DateTimeOffset? CreatedAt { get; set; }
    }

    [JsonSerializable(typeof(SignIn))]
    [JsonSerializable(typeof(Session))]
    [JsonSerializable(typeof(Message))]
    [JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web)]
    internal sealed partial class ChatJson : JsonSerializerContext;
}
