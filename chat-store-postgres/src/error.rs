//! Mapping sqlx failures and unreadable rows onto [`StoreError`].

use std::fmt;

use chat_core::ports::constraint;
use chat_core::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};

/// The unique keys the port names; a violation of any other one is a bug, not a conflict.
const PORT_CONSTRAINTS: [&str; 3] = [
    constraint::USERNAME,
    constraint::EMAIL,
    constraint::MEMBERSHIP,
];

/// Maps a failed statement onto the port's errors. A unique violation is recognised by the name
/// of the violated constraint, which PostgreSQL reports with the error, never by its message.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if server_unavailable(d.as_ref()) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation => match port_constraint(d.constraint()) {
                Some(constraint) => StoreError::Conflict { constraint },
                None => StoreError::backend(e),
            },
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => StoreError::backend(e),
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::backend(e),
    }
}

fn port_constraint(name: Option<&str>) -> Option<&'static str> {
    let name = name?;
    PORT_CONSTRAINTS.into_iter().find(|&c| c == name)
}

/// Whether the server refused or dropped the connection: SQLSTATE class 08 (connection
/// exception), or 57P01-57P03 (the server is shutting down, crashed, or not yet accepting
/// connections). All of them pass once the server is back, so the caller may retry.
fn server_unavailable(e: &dyn DatabaseError) -> bool {
    e.code()
        .is_some_and(|code| code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03"))
}

/// A stored value that does not decode into the domain type (a bug or a hand-edited database).
#[derive(Debug)]
struct CorruptRow {
    column: &'static str,
    value: String,
}

impl fmt::Display for CorruptRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unreadable {} in the database: {:?}",
            self.column, self.value
        )
    }
}

impl std::error::Error for CorruptRow {}

/// The error for a stored `value` of `column` that the domain rejects.
pub(crate) fn corrupt(column: &'static str, value: impl Into<String>) -> StoreError {
    StoreError::backend(CorruptRow {
        column,
        value: value.into(),
    })
}

#[cfg(test)]
mod tests {
    use chat_core::ports::Store;

    use super::*;
    use crate::test_support::scratch;

    #[tokio::test]
    async fn a_connection_the_server_ends_is_unavailable_and_replaced() {
        let Some(store) = scratch().await else { return };
        // The server ends its own session with 57P01 (admin_shutdown), as on a fast shutdown.
        let ended = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(store.pool())
            .await
            .map_err(db);
        assert!(
            matches!(ended, Err(StoreError::Unavailable(_))),
            "{ended:?}"
        );
        store.ping().await.unwrap();
    }
}
