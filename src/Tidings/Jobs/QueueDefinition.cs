using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using NJsonSchema;
using Tidings.Access;
using Tidings.Collections;

namespace Tidings.Jobs;

/// <summary>Who may do what with a queue's jobs. Every rule not given is <see cref="AccessRule.Nobody"/>.</summary>
/// <param name="List">Who may list and subscribe to the queue's jobs collection.</param>
/// <param name="Read">Which jobs they see (evaluated with the job record, e.g. <c>RecordUser("requestedBy")</c>).</param>
/// <param name="Enqueue">Who may enqueue (evaluated with the payload as the record).</param>
/// <param name="Cancel">Who may cancel or re-drive a job (evaluated with the job record).</param>
/// <param name="Work">Who may claim and work jobs over HTTP (external workers). In-process workers are the app itself.</param>
public sealed record QueueAccess(AccessRule List, AccessRule Read, AccessRule Enqueue, AccessRule Cancel, AccessRule Work);

/// <summary>A recurring job: fires at each tick of its schedule, once per tick however many nodes run.</summary>
public sealed record RecurringJob(string Name, CronSchedule Schedule, JsonObject Payload);

/// <summary>A declared queue: its payload schema, rules, retries, retention and (optionally) its in-process worker.</summary>
public sealed class QueueDefinition
{
    internal QueueDefinition(string name, JsonSchema? payloadSchema, QueueAccess access, int maxAttempts, TimeSpan backoff, TimeSpan maxBackoff,
        TimeSpan retention, Type? workerType, WorkerInvoker? invoke, int concurrency, TimeSpan lease, IReadOnlyList<RecurringJob> recurring)
    {
        Name = name;
        PayloadSchema = payloadSchema;
        Access = access;
        MaxAttempts = maxAttempts;
        Backoff = backoff;
        MaxBackoff = maxBackoff;
        Retention = retention;
        WorkerType = workerType;
        Invoke = invoke;
        Concurrency = concurrency;
        Lease = lease;
        Recurring = recurring;
    }

    public string Name { get; }

    /// <summary>The queue's jobs collection (and Bayeux channel): every state change is an event there.</summary>
    public string Path => $"/api/queues/{Name}/jobs";

    /// <summary>Where idle workers hear that work is available (<c>{"queue": name}</c>).</summary>
    public string AvailableChannel => $"/api/queues/{Name}/available";

    public JsonSchema? PayloadSchema { get; }
    public QueueAccess Access { get; }
    public int MaxAttempts { get; }
    public TimeSpan Backoff { get; }
    public TimeSpan MaxBackoff { get; }
    public TimeSpan Retention { get; }
    public Type? WorkerType { get; }

    /// <summary>Runs one job with the queue's worker (resolved from the given scope); null without an in-process worker.</summary>
    internal WorkerInvoker? Invoke { get; }
    public int Concurrency { get; }
    public TimeSpan Lease { get; }
    public IReadOnlyList<RecurringJob> Recurring { get; }
}

/// <summary>One job handed to an in-process worker.</summary>
internal sealed record JobInvocation(string Queue, string Id, JsonObject Payload, int Attempt, string? RequestedBy, ClaimsPrincipal Requester,
    Func<JsonNode?, Task> ReportProgress);

internal delegate Task<JsonNode?> WorkerInvoker(IServiceProvider services, JobInvocation job, CancellationToken cancellationToken);

/// <summary>Declares a queue: <c>.AddQueue("ship", q => q.Schema(…).Access(…).Worker&lt;ShipTask, ShipPayload&gt;())</c>.</summary>
public sealed class QueueBuilder
{
    private static readonly JsonSerializerOptions PayloadOptions = new(JsonSerializerDefaults.Web);

    private readonly string _name;
    private string? _schemaJson;
    private QueueAccess? _access;
    private int _maxAttempts = 5;
    private TimeSpan _backoff = TimeSpan.FromSeconds(1);
    private TimeSpan _maxBackoff = TimeSpan.FromMinutes(10);
    private TimeSpan _retention = TimeSpan.FromDays(7);
    private Type? _workerType;
    private WorkerInvoker? _invoke;
    private int _concurrency = 1;
    private TimeSpan _lease = TimeSpan.FromSeconds(30);
    private readonly List<RecurringJob> _recurring = [];

    internal QueueBuilder(string name) => _name = name;

    /// <summary>The JSON Schema a job's payload must satisfy at enqueue (422 otherwise).</summary>
    public QueueBuilder Schema(string json)
    {
        _schemaJson = json;
        return this;
    }

    /// <summary>Who may list, see, enqueue, cancel and work; anything not granted is refused.</summary>
    public QueueBuilder Access(Func<QueueAccessBuilder, QueueAccessBuilder> configure)
    {
        _access = configure(new QueueAccessBuilder()).Build();
        return this;
    }

    /// <summary>Attempts before a failing job is dead (each run, and each lease that ran out, is one).</summary>
    public QueueBuilder MaxAttempts(int attempts)
    {
        _maxAttempts = Math.Max(1, attempts);
        return this;
    }

    /// <summary>The wait before a retry: <paramref name="first"/> doubled per attempt up to <paramref name="max"/>, with jitter.</summary>
    public QueueBuilder Backoff(TimeSpan first, TimeSpan max)
    {
        (_backoff, _maxBackoff) = (first, max);
        return this;
    }

    /// <summary>How long finished jobs (succeeded, dead, cancelled) are kept before they are deleted.</summary>
    public QueueBuilder Retention(TimeSpan age)
    {
        _retention = age;
        return this;
    }

    /// <summary>
    /// Runs jobs in this process with <typeparamref name="TWorker"/> (resolved in a DI scope per job), at most
    /// <paramref name="concurrency"/> at once, each holding a lease of <paramref name="lease"/> (renewed while it runs).
    /// </summary>
    public QueueBuilder Worker<TWorker, TPayload>(int concurrency = 1, TimeSpan? lease = null) where TWorker : class, IJobWorker<TPayload>
    {
        _workerType = typeof(TWorker);
        _invoke = async (services, job, cancellationToken) =>
        {
            var worker = services.GetRequiredService<TWorker>();
            var payload = job.Payload.Deserialize<TPayload>(PayloadOptions)!;
            var context = new JobContext<TPayload>(job.Queue, job.Id, payload, job.Attempt, job.RequestedBy, job.Requester, job.ReportProgress);
            return await worker.RunAsync(context, cancellationToken);
        };
        _concurrency = Math.Max(1, concurrency);
        _lease = lease ?? _lease;
        return this;
    }

    /// <summary>Enqueues <paramref name="payload"/> at each tick of <paramref name="cron"/> (five fields, UTC), once per tick across nodes.</summary>
    public QueueBuilder Recurring(string name, string cron, JsonObject? payload = null)
    {
        _recurring.Add(new RecurringJob($"{_name}:{name}", CronSchedule.Parse(cron), payload ?? []));
        return this;
    }

    internal QueueDefinition Build()
    {
        if (!System.Text.RegularExpressions.Regex.IsMatch(_name, "^[a-z0-9][a-z0-9_-]{0,62}$"))
        {
            throw new InvalidOperationException($"Queue name '{_name}' must be lowercase letters, digits, '-' or '_' (it becomes /api/queues/{{name}}/jobs).");
        }

        if (_access is null)
        {
            throw new InvalidOperationException(
                $"Queue '{_name}' declares no access rules. Add .Access(a => a.List(...).Read(...).Enqueue(...).Cancel(...).Work(...)).");
        }

        JsonSchema? schema = null;
        if (_schemaJson is not null)
        {
            try
            {
                schema = JsonSchema.FromJsonAsync(_schemaJson).GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException($"The payload schema of queue '{_name}' could not be read: {ex.Message}", ex);
            }
        }

        return new QueueDefinition(_name, schema, _access, _maxAttempts, _backoff, _maxBackoff, _retention, _workerType, _invoke,
            _concurrency, _lease, _recurring);
    }

    /// <summary>The queue's jobs as a collection: readable by the queue's rules, written only through the job API.</summary>
    internal static CollectionDefinition JobsCollection(QueueDefinition queue)
    {
        var builder = new CollectionBuilder(queue.Path)
            .Access(a => a.List(queue.Access.List).Read(queue.Access.Read));
        var collection = builder.Build();
        collection.Queue = queue;
        return collection;
    }
}

/// <summary>Builds <see cref="QueueAccess"/>.</summary>
public sealed class QueueAccessBuilder
{
    private AccessRule _list = AccessRule.Nobody;
    private AccessRule? _read;
    private AccessRule _enqueue = AccessRule.Nobody;
    private AccessRule _cancel = AccessRule.Nobody;
    private AccessRule _work = AccessRule.Nobody;

    /// <summary>Who may list and subscribe to the jobs (and, unless <see cref="Read"/> narrows it, see each one).</summary>
    public QueueAccessBuilder List(AccessRule rule)
    {
        _list = rule;
        return this;
    }

    public QueueAccessBuilder Read(AccessRule rule)
    {
        _read = rule;
        return this;
    }

    public QueueAccessBuilder Enqueue(AccessRule rule)
    {
        _enqueue = rule;
        return this;
    }

    public QueueAccessBuilder Cancel(AccessRule rule)
    {
        _cancel = rule;
        return this;
    }

    public QueueAccessBuilder Work(AccessRule rule)
    {
        _work = rule;
        return this;
    }

    internal QueueAccess Build() => new(_list, _read ?? AccessRule.Anyone, _enqueue, _cancel, _work);
}
