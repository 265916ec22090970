//! How a store connects to its database.

use std::time::Duration;

/// Tuning for [`crate::PgStore`]'s connection pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// The most connections open at once.
    pub max_connections: u32,
    /// The connections kept open even when idle.
    pub min_connections: u32,
    /// How long an operation waits for a free connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// The longest a statement may run before the server cancels it; `None` keeps the
    /// server's setting.
    pub statement_timeout: Option<Duration>,
    /// The most new messages committed in one transaction (group commit); as many more wait
    /// per shard, and senders beyond those wait for room.
    pub max_append_batch: usize,
    /// How many transactions of new messages run at once, each for its own share of the rooms
    /// (each holds a connection while it commits).
    pub append_shards: usize,
    /// The outbox channels domain events are recorded for, one row per event and channel
    /// (the [`EventSink::channel`](chat_core::ports::EventSink::channel)s of the engine's
    /// sinks); none: no events are recorded.
    pub event_channels: Vec<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            max_append_batch: 256,
            append_shards: 4,
            event_channels: Vec::new(),
        }
    }
}
