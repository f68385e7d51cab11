namespace Tidings.Presence;

/// <summary>
/// Shares one node's presence with the other nodes on the same store, and tells it theirs (PostgreSQL:
/// <c>PostgresPresence</c>). Without one, presence is the node's own.
/// </summary>
internal interface IPresenceShare
{
    /// <summary>
    /// This node's sessions of <paramref name="user"/> (<see cref="PresenceTracker.Anonymous"/> for signed-out ones) on
    /// <paramref name="channel"/> are now <paramref name="sessions"/> (0: none). Must not block: called under the
    /// tracker's lock.
    /// </summary>
    void Set(string channel, string user, int sessions);

    /// <summary>
    /// Told the other live nodes' sessions whenever they change (channel → user → sessions): the whole picture each
    /// time, so a node that died simply drops out of it.
    /// </summary>
    event Action<IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>>? RemoteChanged;
}
