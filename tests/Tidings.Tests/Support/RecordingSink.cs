using Tidings.Storage;

namespace Tidings.Tests.Support;

/// <summary>An <see cref="IChangeSink"/> that records every call, in order, and can run a hook on each.</summary>
internal sealed class RecordingSink : IChangeSink
{
    private readonly Lock _gate = new();
    private readonly List<IReadOnlyList<ChangeEntry>> _calls = [];

    /// <summary>Runs inside <see cref="Committed"/>, on the store's thread, before the call is recorded.</summary>
    public Action<IReadOnlyList<ChangeEntry>>? OnCommitted { get; set; }

    public void Committed(IReadOnlyList<ChangeEntry> changes)
    {
        OnCommitted?.Invoke(changes);
        lock (_gate)
        {
            _calls.Add([.. changes]);
        }
    }

    public IReadOnlyList<IReadOnlyList<ChangeEntry>> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>Every change handed over so far, in the order the sink received them.</summary>
    public IReadOnlyList<ChangeEntry> Changes
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls.SelectMany(c => c)];
            }
        }
    }

    public bool Saw(string path, long seq)
    {
        lock (_gate)
        {
            return _calls.Any(c => c.Any(e => e.Path == path && e.Seq == seq));
        }
    }
}
