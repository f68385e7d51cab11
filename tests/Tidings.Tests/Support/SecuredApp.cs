using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tidings.Access;
using Tidings.Identity;

namespace Tidings.Tests.Support;

/// <summary>
/// A Tidings server with sign-in and the demo's rules: public todos; flows for signed-in users, messages
/// changed only by their author; every signed-in user reads <c>/api/users/{user}/tasks</c>, only {user} writes;
/// only {user} reads or writes <c>/api/users/{user}/notes</c>; and boards whose cards marked private are read
/// by their author only (records that leave a reader's view).
/// </summary>
internal static class SecuredApp
{
    public const string Todos = "/api/todos";
    public const string Flow = "/api/flows/main/messages";
    public const string AdaTasks = "/api/users/ada/tasks";
    public const string AdaNotes = "/api/users/ada/notes";
    public const string Board = "/api/boards/b1/cards";

    public static Task<TidingsApp> StartAsync(IDictionary<string, string?>? settings = null, string? postgres = null) =>
        TidingsApp.StartAsync(settings, Declare, MapSignIn, postgres);

    public static void Declare(TidingsBuilder tidings) => tidings
        .AddIdentity()
        .AddCollection("/api/todos", c => c.Public().Schema(TidingsApp.TodoSchema).Writable("title", "completed", "order"))
        .AddCollection("/api/flows/{flow}/messages", c => c
            .Schema(TidingsApp.MessageSchema).Writable("content", "tags", "uuid")
            .Stamp("user", ctx => ctx.User?.Identity?.Name)
            .Access(a => a.List(AccessRule.SignedIn).Create(AccessRule.SignedIn)
                .Update(AccessRule.RecordUser("user")).Delete(AccessRule.RecordUser("user"))))
        .AddCollection("/api/users/{user}/tasks", c => c
            .Schema("""{ "type": "object", "properties": { "title": { "type": "string" } }, "required": ["title"] }""").Writable("title")
            .Access(a => a.List(AccessRule.SignedIn).Write(AccessRule.RouteUser("user"))))
        .AddCollection("/api/users/{user}/notes", c => c
            .Schema("""{ "type": "object", "properties": { "text": { "type": "string" } }, "required": ["text"] }""").Writable("text")
            .Access(a => a.List(AccessRule.RouteUser("user")).Write(AccessRule.RouteUser("user"))))
        .AddCollection("/api/boards/{board}/cards", c => c
            .Schema("""{ "type": "object", "properties": { "text": { "type": "string" }, "private": { "type": "boolean" }, "user": { "type": "string" } } }""")
            .Writable("text", "private")
            .Stamp("user", ctx => ctx.User?.Identity?.Name)
            .Access(a => a.List(AccessRule.SignedIn)
                .Read(new AccessRule(ctx => ctx.Record?["private"]?.GetValue<bool>() != true || ctx.UserName == ctx.Record?["user"]?.GetValue<string>(),
                    "public cards, and private cards by their author"))
                .Create(AccessRule.SignedIn).Update(AccessRule.RecordUser("user")).Delete(AccessRule.RecordUser("user"))));

    /// <summary>
    /// Sign-in by name, as the demo does: a cookie for browsers. <c>/signin-labelled/{name}</c> signs in the way an
    /// app with its own sign-in might, labelling the identity "Cookies": it is still a cookie user.
    /// </summary>
    public static void MapSignIn(WebApplication app)
    {
        app.MapPost("/signin/{name}", (HttpContext http, string name) => SignInAsync(http, name, TidingsIdentityOptions.CookieScheme));
        app.MapPost("/signin-labelled/{name}", (HttpContext http, string name) => SignInAsync(http, name, "Cookies"));
    }

    private static async Task<IResult> SignInAsync(HttpContext http, string name, string authenticationType)
    {
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], authenticationType);
        await http.SignInAsync(TidingsIdentityOptions.CookieScheme, new ClaimsPrincipal(identity));
        return Results.Ok();
    }

    public static string TokenFor(this TidingsApp app, string user) => app.Services.GetRequiredService<TidingsTokens>().Issue(user);

    /// <summary>An HTTP client of this server acting as <paramref name="user"/> (bearer token), or signed out when null.</summary>
    public static HttpClient ClientFor(this TidingsApp app, string? user)
    {
        var http = new HttpClient { BaseAddress = app.Address, Timeout = TimeSpan.FromSeconds(30) };
        if (user is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", app.TokenFor(user));
        }

        return http;
    }
}
