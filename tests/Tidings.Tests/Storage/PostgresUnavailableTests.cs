using Npgsql;
using Tidings.Postgres;

namespace Tidings.Tests.Storage;

/// <summary>
/// Which PostgreSQL failures make a request answer 503 (the database cannot serve now: retry) rather than 500. Seen in
/// the cluster suite (tests/cluster): after `pg_ctl -m immediate stop` and start, writes failed with 500 while the
/// server recovered ("57P03: the database system is not yet accepting connections").
/// </summary>
public sealed class PostgresUnavailableTests
{
    [Theory]
    [InlineData("57P03", "the database system is not yet accepting connections")]
    [InlineData("57P03", "the database system is starting up")]
    [InlineData("57P01", "terminating connection due to administrator command")]
    [InlineData("57P02", "terminating connection because of crash of another server process")]
    [InlineData("08006", "connection failure")]
    [InlineData("53300", "sorry, too many clients already")]
    public void A_server_that_cannot_serve_now_is_unavailable(string sqlState, string message) =>
        Assert.True(PostgresStore.Unavailable(new PostgresException(message, "FATAL", "FATAL", sqlState), CancellationToken.None));

    [Theory]
    [InlineData("23505", "duplicate key value violates unique constraint")]
    [InlineData("42P01", "relation does not exist")]
    [InlineData("3D000", "database does not exist")]
    public void An_error_in_what_was_asked_stays_what_it_is(string sqlState, string message) =>
        Assert.False(PostgresStore.Unavailable(new PostgresException(message, "ERROR", "ERROR", sqlState), CancellationToken.None));

    [Fact]
    public void A_connection_that_could_not_be_made_or_broke_is_unavailable() =>
        Assert.True(PostgresStore.Unavailable(new NpgsqlException("Failed to connect"), CancellationToken.None));
}
