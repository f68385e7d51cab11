using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tidings.Client.Bayeux;
using Tidings.Client.Collections;

namespace Tidings.Client;

/// <summary>
/// One connection to a Tidings server: REST for loads and writes, one Bayeux session for every change stream and
/// plain channel. Open live collections with <see cref="CollectionAsync{T}(string, CancellationToken)"/>; dispose the
/// client to close them all and end the session.
/// </summary>
/// <example>
/// <code>
/// await using var client = new TidingsClient(new Uri("http://127.0.0.1:5080"), new TidingsClientOptions { Token = token });
/// var todos = await client.CollectionAsync&lt;Todo&gt;("/api/todos");
/// await todos.CreateAsync(new Todo { Title = "milk" });
/// </code>
/// </example>
public sealed class TidingsClient : IAsyncDisposable
{
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");

    private readonly HttpMessageHandler _handler;
    private readonly bool _ownsHandler;
    private readonly HttpClient _http;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, object> _collections = new(StringComparer.Ordinal);
    private readonly List<Action> _catchUps = [];
    private int _disposed;

    public TidingsClient(Uri server, TidingsClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        Options = options ?? new TidingsClientOptions();
        ServerAddress = server;
        _logger = (ILogger?)Options.LoggerFactory?.CreateLogger<TidingsClient>() ?? NullLogger.Instance;
        if (Options.HttpMessageHandler is { } handler)
        {
            _handler = handler;
        }
        else
        {
            _handler = new SocketsHttpHandler
            {
                UseCookies = true,
                CookieContainer = Options.Cookies ?? new System.Net.CookieContainer(),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            };
            _ownsHandler = true;
        }

        _http = new HttpClient(_handler, disposeHandler: false) { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        var invoker = _handler is SocketsHttpHandler or DelegatingHandler ? new HttpMessageInvoker(_handler, disposeHandler: false) : null;
        Bayeux = new BayeuxClient(new Uri(server, Options.BayeuxPath), Options, _http, invoker);
        Bayeux.AddExtension(new TokenExtension(Options));
        Bayeux.StateChanged += OnBayeuxStateChanged;
    }

    public TidingsClientOptions Options { get; }

    public Uri ServerAddress { get; }

    /// <summary>The Bayeux session every collection and channel of this client shares.</summary>
    public BayeuxClient Bayeux { get; }

    /// <summary>
    /// Opens the live collection at <paramref name="path"/> (e.g. <c>/api/flows/main/messages</c>) and returns once its
    /// first snapshot is applied. Records map to <typeparamref name="T"/> through <c>Options.JsonSerializerOptions</c>
    /// (give it a source-generated context for trimming/AOT), or pass <see cref="JsonObject"/> to work with raw JSON.
    /// One instance per path per client: opening a path again returns the open one. A subscription the server refuses
    /// throws <see cref="TidingsException"/> (403 when this user may not list it).
    /// </summary>
    public Task<LiveCollection<T>> CollectionAsync<T>(string path, CancellationToken cancellationToken = default) =>
        CollectionAsync(path, typeof(T) == typeof(JsonObject) ? null : (JsonTypeInfo<T>)Options.JsonSerializerOptions.GetTypeInfo(typeof(T)),
            null, cancellationToken);

    /// <summary>Opens a live collection with an explicit (source-generated) type info and per-collection options.</summary>
    public async Task<LiveCollection<T>> CollectionAsync<T>(string path, JsonTypeInfo<T>? typeInfo, CollectionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        LiveCollection<T> collection;
        lock (_gate)
        {
            if (_collections.TryGetValue(path, out var open))
            {
                collection = open as LiveCollection<T>
                    ?? throw new InvalidOperationException($"{path} is already open as a collection of another type.");
            }
            else
            {
                collection = new LiveCollection<T>(this, path, new RecordMapper<T>(typeInfo), options ?? new CollectionOptions());
                _collections[path] = collection;
                _catchUps.Add(collection.CatchUp);
                open = null;
            }

            if (open is not null)
            {
                return collection;
            }
        }

        try
        {
            await collection.OpenAsync(cancellationToken);
        }
        catch
        {
            await collection.DisposeAsync();
            throw;
        }

        return collection;
    }

    /// <summary>Subscribes to a plain Bayeux channel or pattern; see <see cref="BayeuxClient.SubscribeAsync(string, Action{BayeuxMessage}, CancellationToken)"/>.</summary>
    public Task<BayeuxSubscription> SubscribeAsync(string channel, Action<BayeuxMessage> handler, CancellationToken cancellationToken = default) =>
        Bayeux.SubscribeAsync(channel, handler, cancellationToken);

    /// <inheritdoc cref="SubscribeAsync(string, Action{BayeuxMessage}, CancellationToken)"/>
    public Task<BayeuxSubscription> SubscribeAsync(string channel, Func<BayeuxMessage, CancellationToken, ValueTask> handler,
        CancellationToken cancellationToken = default) =>
        Bayeux.SubscribeAsync(channel, handler, cancellationToken);

    /// <summary>Publishes on a plain Bayeux channel; see <see cref="BayeuxClient.PublishAsync"/>.</summary>
    public Task<JsonObject> PublishAsync(string channel, JsonNode? data, CancellationToken cancellationToken = default) =>
        Bayeux.PublishAsync(channel, data, cancellationToken);

    internal void Forget(object collection)
    {
        lock (_gate)
        {
            foreach (var (path, open) in _collections)
            {
                if (ReferenceEquals(open, collection))
                {
                    _collections.Remove(path);
                    break;
                }
            }
        }
    }

    private void OnBayeuxStateChanged(object? sender, BayeuxConnectionState state)
    {
        if (state != BayeuxConnectionState.Connected)
        {
            return;
        }

        // The link is back: ask every collection for what it may have missed (duplicates are dropped).
        Action[] catchUps;
        lock (_gate)
        {
            catchUps = [.. _catchUps];
        }

        foreach (var catchUp in catchUps)
        {
            catchUp();
        }
    }

    /// <summary>
    /// A REST request with a JSON body. Returns the answer's JSON (null for an empty body); throws
    /// <see cref="TidingsException"/> for a non-2xx status (with the problem details' <c>errors</c>) and with status 0
    /// when there was no answer. Each request is bounded by <c>RequestTimeout</c>.
    /// </summary>
    internal async Task<JsonObject?> SendJsonAsync(HttpMethod method, string path, JsonNode? body, long? ifMatch, string operation, string? id,
        CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Accept.Add(AcceptJson);
        request.Headers.TryAddWithoutValidation("X-Requested-With", "XMLHttpRequest");
        if (Options.CurrentToken() is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (ifMatch is { } version)
        {
            request.Headers.TryAddWithoutValidation("If-Match", $"\"{version.ToString(System.Globalization.CultureInfo.InvariantCulture)}\"");
        }

        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        using var timeout = new CancellationTokenSource(Options.RequestTimeout, Options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        string text;
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, linked.Token);
            text = await response.Content.ReadAsStringAsync(linked.Token);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or System.Net.Sockets.SocketException
            || (ex is OperationCanceledException && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested))
        {
            throw new TidingsException($"{method} {path}: no answer ({ex.Message})", 0, null, ex) { Operation = operation, RecordId = id };
        }

        using (response)
        {
            JsonNode? json = null;
            try
            {
                json = text.Length == 0 ? null : JsonNode.Parse(text);
            }
            catch (JsonException) when (!response.IsSuccessStatusCode)
            {
            }
            catch (JsonException ex)
            {
                throw new TidingsException($"{method} {path}: the answer is not JSON", 502, null, ex) { Operation = operation, RecordId = id };
            }

            if (response.IsSuccessStatusCode)
            {
                return json as JsonObject;
            }

            var problem = json as JsonObject;
            var detail = RecordJson.String(problem?["detail"]) ?? RecordJson.String(problem?["title"]) ?? response.ReasonPhrase;
            throw new TidingsException($"{method} {path}: {(int)response.StatusCode} {detail}", (int)response.StatusCode, FieldErrors(problem))
            {
                Operation = operation,
                RecordId = id,
                Problem = problem,
            };
        }
    }

    private static Dictionary<string, string[]>? FieldErrors(JsonObject? problem)
    {
        if (problem?["errors"] is not JsonObject errors)
        {
            return null;
        }

        var result = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (field, messages) in errors)
        {
            result[field] = messages switch
            {
                JsonArray list => [.. list.Select(m => RecordJson.String(m) ?? m?.ToJsonString() ?? "")],
                JsonValue one => [RecordJson.String(one) ?? one.ToJsonString()],
                _ => [],
            };
        }

        return result;
    }

    internal void ReportHandlerFailure(string path, Exception exception) => TidingsClientLog.HandlerFailed(_logger, path, exception);

    internal void ReportBadInput(string what) => TidingsClientLog.BadInput(_logger, what);

    /// <summary>Closes every collection, ends the Bayeux session and releases the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        object[] open;
        lock (_gate)
        {
            open = [.. _collections.Values];
        }

        foreach (var collection in open)
        {
            if (collection is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }

        Bayeux.StateChanged -= OnBayeuxStateChanged;
        await Bayeux.DisposeAsync();
        _http.Dispose();
        if (_ownsHandler)
        {
            _handler.Dispose();
        }
    }

    /// <summary>Puts the bearer token into every handshake's <c>ext.token</c> (WebSockets cannot carry headers from browsers; the server reads it here).</summary>
    private sealed class TokenExtension(TidingsClientOptions options) : IBayeuxClientExtension
    {
        public JsonObject? Outgoing(JsonObject message)
        {
            if ((string?)message["channel"] == "/meta/handshake" && options.CurrentToken() is { Length: > 0 } token)
            {
                if (message["ext"] is not JsonObject ext)
                {
                    message["ext"] = ext = [];
                }

                ext["token"] = token;
            }

            return message;
        }
    }
}
