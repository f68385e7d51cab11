using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Tidings.Storage;

namespace Tidings.Operations;

/// <summary>Thresholds of the Tidings health checks (<c>Tidings:Health</c>).</summary>
public sealed class TidingsHealthOptions
{
    public const string SectionName = "Tidings:Health";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);
    public const double DefaultBacklogDegraded = 0.8;
    public static readonly TimeSpan DefaultTailLagDegraded = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultTailLagUnhealthy = TimeSpan.FromSeconds(30);

    /// <summary>How long the store may take to answer a read before it counts as unreachable.</summary>
    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    /// <summary>The share of a bounded queue (writes, change buffer) in use from which the writer is reported degraded.</summary>
    public double BacklogDegraded { get; set; } = DefaultBacklogDegraded;

    /// <summary>From this tail lag a node is degraded: its subscribers get other nodes' changes late.</summary>
    public TimeSpan TailLagDegraded { get; set; } = DefaultTailLagDegraded;

    /// <summary>From this tail lag a node is unhealthy: it has stopped learning other nodes' commits.</summary>
    public TimeSpan TailLagUnhealthy { get; set; } = DefaultTailLagUnhealthy;
}

public static class TidingsHealthCheckExtensions
{
    /// <summary>The checks' names, as they appear in the JSON answer.</summary>
    public const string StoreCheck = "tidings-store";
    public const string WriterCheck = "tidings-writer";
    public const string TailCheck = "tidings-tail";

    /// <summary>
    /// Adds the store's health checks: <c>tidings-store</c> (a read answers within <see cref="TidingsHealthOptions.Timeout"/>),
    /// <c>tidings-writer</c> (the write queue and change buffer are not near their bounds) and <c>tidings-tail</c> (with several
    /// nodes: this node keeps up with the shared change log). Tagged <c>tidings</c>.
    /// </summary>
    public static IHealthChecksBuilder AddTidings(this IHealthChecksBuilder builder)
    {
        builder.Services.AddOptions<TidingsHealthOptions>().BindConfiguration(TidingsHealthOptions.SectionName);
        string[] tags = ["tidings"];
        return builder
            .AddCheck<StoreReachableCheck>(StoreCheck, HealthStatus.Unhealthy, tags)
            .AddCheck<WriterBacklogCheck>(WriterCheck, HealthStatus.Unhealthy, tags)
            .AddCheck<ChangeTailCheck>(TailCheck, HealthStatus.Unhealthy, tags);
    }

    /// <summary>Maps the health checks at <paramref name="pattern"/>, answering JSON with each check (503 when unhealthy).</summary>
    public static IEndpointConventionBuilder MapTidingsHealthChecks(this IEndpointRouteBuilder endpoints, string pattern = "/healthz") =>
        endpoints.MapHealthChecks(pattern, new HealthCheckOptions { ResponseWriter = WriteJsonAsync });

    /// <summary>
    /// <c>{"status": "Healthy", "checks": [{"name", "status", "description", "durationMs", "data": {...}, "error"?}]}</c>.
    /// </summary>
    public static async Task WriteJsonAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        // Written to memory first: a health answer is small, and the serializer flushes synchronously (Kestrel refuses that).
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using var json = new Utf8JsonWriter(buffer);
        json.WriteStartObject();
        json.WriteString("status", report.Status.ToString());
        json.WriteNumber("durationMs", Math.Round(report.TotalDuration.TotalMilliseconds, 1));
        json.WriteStartArray("checks");
        foreach (var (name, entry) in report.Entries)
        {
            json.WriteStartObject();
            json.WriteString("name", name);
            json.WriteString("status", entry.Status.ToString());
            json.WriteString("description", entry.Description);
            json.WriteNumber("durationMs", Math.Round(entry.Duration.TotalMilliseconds, 1));
            json.WriteStartObject("data");
            foreach (var (key, value) in entry.Data)
            {
                json.WritePropertyName(key);
                JsonSerializer.Serialize(json, value, value?.GetType() ?? typeof(object));
            }

            json.WriteEndObject();
            if (entry.Exception is { } error)
            {
                json.WriteString("error", error.GetBaseException().Message);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteEndObject();
        json.Flush();
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }
}

/// <summary>The store answers a read (its epoch) within the timeout.</summary>
internal sealed class StoreReachableCheck(ITidingsStore store, Microsoft.Extensions.Options.IOptions<TidingsHealthOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.Timeout);
        try
        {
            var epoch = await store.ReadAsync(r => r.Epoch, timeout.Token);
            return HealthCheckResult.Healthy("The store answers reads.", new Dictionary<string, object> { ["epoch"] = epoch });
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"The store did not answer a read within {options.Value.Timeout.TotalSeconds} s.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "The store cannot be read.", ex);
        }
    }
}

/// <summary>Writes and committed changes are not piling up near the store's bounds (where writers start to wait).</summary>
internal sealed class WriterBacklogCheck(ITidingsStore store, Microsoft.Extensions.Options.IOptions<TidingsHealthOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken)
    {
        if (store is not IStoreHealth health)
        {
            return Task.FromResult(HealthCheckResult.Healthy("The store reports no backlog."));
        }

        var backlog = health.Backlog;
        var data = new Dictionary<string, object>
        {
            ["queuedWrites"] = backlog.QueuedWrites,
            ["writeCapacity"] = backlog.WriteCapacity,
            ["queuedChangeBatches"] = backlog.QueuedChangeBatches,
            ["changeBufferCapacity"] = backlog.ChangeBufferCapacity,
        };
        var limit = options.Value.BacklogDegraded;
        if (Near(backlog.QueuedWrites, backlog.WriteCapacity, limit))
        {
            return Task.FromResult(HealthCheckResult.Degraded($"{backlog.QueuedWrites} writes wait for the writer (of {backlog.WriteCapacity}).", data: data));
        }

        if (Near(backlog.QueuedChangeBatches, backlog.ChangeBufferCapacity, limit))
        {
            return Task.FromResult(HealthCheckResult.Degraded(
                $"The change feed is {backlog.QueuedChangeBatches} commits behind (of {backlog.ChangeBufferCapacity}); writes will slow to its pace.", data: data));
        }

        return Task.FromResult(HealthCheckResult.Healthy("The writer keeps up.", data));
    }

    private static bool Near(int used, int capacity, double share) => capacity > 0 && used >= capacity * share;
}

/// <summary>With several nodes: this node's tail keeps reading the shared change log.</summary>
internal sealed class ChangeTailCheck(ITidingsStore store, Microsoft.Extensions.Options.IOptions<TidingsHealthOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken)
    {
        if ((store as IStoreHealth)?.TailLag is not { } lag)
        {
            return Task.FromResult(HealthCheckResult.Healthy("One node: the store hands its own commits to the feed, no tail."));
        }

        var data = new Dictionary<string, object> { ["lagMs"] = Math.Round(lag.TotalMilliseconds, 1) };
        var settings = options.Value;
        return Task.FromResult(lag >= settings.TailLagUnhealthy
            ? new HealthCheckResult(context.Registration.FailureStatus, $"The change tail has not read the log for {lag.TotalSeconds:0} s.", data: data)
            : lag >= settings.TailLagDegraded
                ? HealthCheckResult.Degraded($"The change tail is {lag.TotalSeconds:0.0} s behind.", data: data)
                : HealthCheckResult.Healthy("The change tail keeps up with the shared log.", data));
    }
}
