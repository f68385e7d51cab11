using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Tidings.Observability;
using Tidings.Storage;
using Tidings.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Tidings.Tests.Observability;

/// <summary>Activity listeners are process-wide: these tests run alone, so no other test's writes add spans or entries.</summary>
[CollectionDefinition(nameof(TracingTests), DisableParallelization = true)]
public sealed class TracingCollection;

/// <summary>
/// A REST write on a real server is one trace: the request (ASP.NET Core's span) → tidings.write → tidings.commit →
/// tidings.publish, the last tagged with how many subscribers it reached.
/// </summary>
[Collection(nameof(TracingTests))]
public sealed class TracingTests
{
    private static ActivityListener Listen(ConcurrentQueue<Activity> stopped)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is TidingsTracing.SourceName or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    [Fact]
    public async Task A_rest_write_its_commit_and_its_publish_are_one_trace_with_the_delivery_count()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = Listen(stopped);
        await using var app = await TidingsApp.StartAsync();
        var subscriber = new BayeuxClient(app.Http);
        await subscriber.HandshakeAsync();
        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(TidingsApp.Todos));

        var created = await app.CreateAsync(TidingsApp.Todos, """{"title": "traced"}""");
        var seen = await subscriber.NextAsync();
        Assert.Equal(created["id"]!.GetValue<string>(), seen.Id);

        Activity? publish = null;
        await Eventually.UntilAsync(() => (publish = stopped.FirstOrDefault(a =>
            a.OperationName == TidingsTracing.Publish && a.GetTagItem(TidingsTracing.PathTag) as string == TidingsApp.Todos)) is not null,
            "the publish span to stop");
        var write = stopped.Single(a => a.OperationName == TidingsTracing.Write && a.TraceId == publish!.TraceId);
        var commit = stopped.Single(a => a.OperationName == TidingsTracing.Commit && a.TraceId == publish!.TraceId);
        var request = stopped.Single(a => a.Source.Name == "Microsoft.AspNetCore" && a.TraceId == publish!.TraceId);

        Assert.Equal(request.SpanId, write.ParentSpanId);
        Assert.Equal(write.SpanId, commit.ParentSpanId);
        Assert.Equal(commit.SpanId, publish!.ParentSpanId);
        Assert.Equal("POST", write.GetTagItem(TidingsTracing.MethodTag));
        Assert.Equal(seen.Seq, publish.GetTagItem(TidingsTracing.SeqTag));
        Assert.Equal(1, publish.GetTagItem(TidingsTracing.DeliveriesTag));
    }

    [Fact]
    public async Task Nothing_is_traced_or_kept_while_nobody_listens()
    {
        await using var app = await TidingsApp.StartAsync();
        var subscriber = new BayeuxClient(app.Http);
        await subscriber.HandshakeAsync();
        BayeuxClient.Succeeded(await subscriber.SubscribeAsync(TidingsApp.Todos));

        await app.CreateAsync(TidingsApp.Todos, """{"title": "untraced"}""");
        await subscriber.NextAsync();

        Assert.False(TidingsTracing.Source.HasListeners());
        Assert.Equal(0, ChangeTraces.For(app.Services.GetRequiredService<ITidingsStore>()).Count);
    }
}
