using System.Text.Json.Nodes;
using Tidings.Bayeux;
using Tidings.Bayeux.Server;

// The Tidings demo server. `dotnet run --project samples/Demo` serves http://127.0.0.1:5080;
// `--urls` picks other addresses and `--data DIR` another data directory (default ./data).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // Static files and settings ship next to the binary, so the server runs from any directory.
    ContentRootPath = AppContext.BaseDirectory,
});
if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

var dataDirectory = Path.GetFullPath(builder.Configuration["data"] ?? "data");
Directory.CreateDirectory(dataDirectory);

builder.Services.AddBayeux();

var app = builder.Build();
app.UseDefaultFiles();
app.UseStaticFiles();
app.MapBayeux("/bayeux");

// A service channel: what a client publishes to /service/echo comes back in the publish reply only
// (CometD's remoteCall), never broadcast to other clients.
var bayeux = app.Services.GetRequiredService<BayeuxServer>();
bayeux.MapService("/service/echo", (call, _) =>
{
    call.Reply(new JsonObject { ["echo"] = JsonNode.Parse(call.Data.GetRawText()), ["clientId"] = call.Session.Id });
    return ValueTask.CompletedTask;
});

app.Logger.LogInformation("Tidings demo: data in {DataDirectory}", dataDirectory);
app.Run();
