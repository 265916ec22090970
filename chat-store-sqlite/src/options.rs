//! How a store opens its database.

use std::time::Duration;

use sqlx::sqlite::SqliteSynchronous;

/// How durable a commit is before it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Commits survive a crash of the process but may be lost on power failure (WAL + NORMAL).
    Normal,
    /// Commits survive power failure too, at the cost of an fsync per commit.
    #[default]
    Full,
}

impl From<Synchronous> for SqliteSynchronous {
    fn from(s: Synchronous) -> Self {
        match s {
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
        }
    }
}

/// Tuning for [`crate::SqliteStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The most read-only connections open at once (writes always use one connection).
    pub max_read_connections: u32,
    /// How long a statement waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// The most new messages committed in one transaction (group commit); as many more wait
    /// for it, and senders beyond those wait for room.
    pub max_append_batch: usize,
    /// The outbox channels domain events are recorded for, one row per event and channel
    /// (the [`EventSink::channel`](chat_core::ports::EventSink::channel)s of the engine's
    /// sinks); none: no events are recorded.
    pub event_channels: Vec<String>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_read_connections: 8,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            max_append_batch: 256,
            event_channels: Vec::new(),
        }
    }
}
