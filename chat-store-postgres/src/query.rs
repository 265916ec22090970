//! Running sea-query statements through sqlx with their values bound.

use sea_query::PostgresQueryBuilder;
use sea_query_binder::SqlxBinder;
use sqlx::postgres::PgRow;
use sqlx::{Executor, FromRow, Postgres};

/// Every row the statement returns.
pub(crate) async fn fetch_all<'c, T, E>(exec: E, stmt: &impl SqlxBinder) -> sqlx::Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    E: Executor<'c, Database = Postgres>,
{
    let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
    sqlx::query_as_with::<_, T, _>(&sql, values)
        .fetch_all(exec)
        .await
}

/// The first row the statement returns, if any.
pub(crate) async fn fetch_optional<'c, T, E>(
    exec: E,
    stmt: &impl SqlxBinder,
) -> sqlx::Result<Option<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    E: Executor<'c, Database = Postgres>,
{
    let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
    sqlx::query_as_with::<_, T, _>(&sql, values)
        .fetch_optional(exec)
        .await
}

/// Runs the statement; returns how many rows it changed.
pub(crate) async fn execute<'c, E>(exec: E, stmt: &impl SqlxBinder) -> sqlx::Result<u64>
where
    E: Executor<'c, Database = Postgres>,
{
    let (sql, values) = stmt.build_sqlx(PostgresQueryBuilder);
    let done = sqlx::query_with(&sql, values).execute(exec).await?;
    Ok(done.rows_affected())
}

/// `text` as a LIKE pattern that matches it literally: `%`, `_` and the escape character `\`
/// are escaped (statements pair it with `ESCAPE '\'`), so nothing a user types is a wildcard.
pub(crate) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
