using Microsoft.Data.Sqlite;

namespace Tidings.Sqlite;

/// <summary>
/// Prepared statements of one connection, by SQL text. Preparing (parsing and planning) a statement costs more than
/// running one of these small ones, and the writer loop runs the same dozen statements for every write: it keeps one
/// cache for its connection's life; a read keeps one for its transaction. A statement is used by one caller at a time
/// (its reader closed before the next use), which the one-thread-per-transaction rule of the store gives.
/// </summary>
internal sealed class SqliteStatements(SqliteConnection connection) : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);

    /// <summary>The statement for <paramref name="sql"/> in <paramref name="transaction"/>, with no parameters set.</summary>
    public SqliteCommand Get(string sql, SqliteTransaction? transaction)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            _prepared.Add(sql, command);
        }

        command.Transaction = transaction;
        command.Parameters.Clear();
        return command;
    }

    /// <summary>Runs a statement that takes no parameters and returns no rows.</summary>
    public void Execute(string sql, SqliteTransaction? transaction) => Get(sql, transaction).ExecuteNonQuery();

    public void Dispose()
    {
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        _prepared.Clear();
    }
}
