//! Mapping sqlx failures and unreadable rows onto [`StoreError`].

use std::fmt;

use chat_core::StoreError;
use sqlx::error::ErrorKind;

/// SQLite's primary result codes for "another connection holds the lock".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Maps a failure where no unique key the port names can be violated.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ if is_busy(d.code().as_deref()) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::backend(e),
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::backend(e),
    }
}

/// Maps a failure of a statement whose only unique key in play is `constraint`. The writes
/// check their keys first inside the transaction; this is the backstop should a check be missed.
pub(crate) fn db_on(constraint: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.kind() == ErrorKind::UniqueViolation => {
            StoreError::Conflict { constraint }
        }
        _ => db(e),
    }
}

fn is_busy(code: Option<&str>) -> bool {
    // The code is the extended result code; its low byte is the primary one.
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
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
