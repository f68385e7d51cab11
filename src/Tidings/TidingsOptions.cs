namespace Tidings;

/// <summary>Settings for collections. Limits are named so errors can point at them.</summary>
public sealed class TidingsOptions
{
    public const string SectionName = "Tidings";
    public const int DefaultMaxBodyBytes = 64 * 1024;
    public const int DefaultMaxListItems = 10_000;
    public const int DefaultMaxReplay = 1_000;
    public const int DefaultMaxSnapshotItems = 1_000;

    /// <summary>The largest REST request body (413 beyond it).</summary>
    public int MaxBodyBytes { get; set; } = DefaultMaxBodyBytes;

    /// <summary>The most items a list (<c>GET P</c>) returns.</summary>
    public int MaxListItems { get; set; } = DefaultMaxListItems;

    /// <summary>The most changes a catch-up replays; a client further behind is told to reload (RESET / 410).</summary>
    public int MaxReplay { get; set; } = DefaultMaxReplay;

    /// <summary>The most items an initial-state (SNAPSHOT) message carries.</summary>
    public int MaxSnapshotItems { get; set; } = DefaultMaxSnapshotItems;

    /// <summary>Publishes (socket writes included) and catch-up or snapshot subscribes one Bayeux session may make
    /// per second, sustained.</summary>
    public double PublishesPerSecond { get; set; } = 50;

    /// <summary>Publishes one Bayeux session may make in a burst.</summary>
    public int PublishBurst { get; set; } = 100;

    /// <summary>Bayeux handshakes one client address may make per second, sustained.</summary>
    public double HandshakesPerSecond { get; set; } = 20;

    /// <summary>Bayeux handshakes one client address may make in a burst.</summary>
    public int HandshakeBurst { get; set; } = 200;

    /// <summary>REST requests one user (or, signed out, one address) may make per second, sustained.</summary>
    public int RequestsPerSecond { get; set; } = 100;

    /// <summary>REST requests one user or address may make in a burst.</summary>
    public int RequestBurst { get; set; } = 200;

    /// <summary>Where each collection's JSON Schema, writable fields and access summary are published.</summary>
    public string SchemaPath { get; set; } = "/tidings/schema";

    /// <summary>
    /// The names of the users who may use the operators' endpoints (export, import), comma-separated, e.g.
    /// <c>--Tidings:Admins=root,ada</c>. An app that registers an authorization policy named <see cref="AdminPolicy"/> decides instead.
    /// </summary>
    public string? Admins { get; set; }

    /// <summary>The authorization policy that, when the app registers it, decides who is an admin (else <see cref="Admins"/>).</summary>
    public const string AdminPolicy = "tidings-admin";

    /// <summary>The largest import (<c>POST /tidings/import</c>) accepted, in bytes (413 beyond it).</summary>
    public long MaxImportBytes { get; set; } = DefaultMaxImportBytes;

    public const long DefaultMaxImportBytes = 1L << 30;

    /// <summary>Whether <paramref name="name"/> is one of <see cref="Admins"/>.</summary>
    public bool IsAdmin(string? name) =>
        name is { Length: > 0 } && (Admins ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Contains(name, StringComparer.Ordinal);

    /// <summary>Where the Bayeux endpoint is mapped.</summary>
    public string BayeuxPath { get; set; } = "/bayeux";
}
