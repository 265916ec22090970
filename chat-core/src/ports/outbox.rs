//! The outbox and event-sink ports: domain events recorded with the changes they describe wait
//! in the outbox, per delivery channel, until that channel's sink confirmed them.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::outbox::{Envelope, PendingEvent};

/// The outbox: pending events per channel, read by one relay at a time.
#[async_trait]
pub trait OutboxStore: Send + Sync + Debug {
    /// Takes the relay's turn for `channel` and returns up to `limit` of its pending events
    /// (neither sent nor given up), in the order they were recorded; `None` when another
    /// relay holds the turn. The turn lasts until the batch is finished or dropped (dropping
    /// it changes nothing, so its events come again; the turn may come free a moment after the
    /// drop, when the store releases it in the background).
    async fn outbox_batch(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Option<Box<dyn OutboxBatch>>, StoreError>;
    /// Records events on their own, once per channel (nothing without channels): for what is
    /// no stored change of its own, such as presence, which connection counts and heartbeats
    /// derive.
    async fn record_events(&self, events: &[Envelope]) -> Result<(), StoreError>;
    /// Deletes up to `limit` events sent (or given up) before `before`; returns how many.
    async fn prune_outbox(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
    /// How many events of `channel` are pending, and how many were given up.
    async fn outbox_counts(&self, channel: &str) -> Result<OutboxCounts, StoreError>;
}

/// What a relay did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every event was delivered.
    Delivered,
    /// The first `delivered` events were delivered, the next one failed: its attempt is
    /// counted, and when it has failed `give_up_after` times it is given up (dead-lettered).
    Failed {
        /// How many of the first events were delivered.
        delivered: usize,
        /// The sink's [`EventSink::give_up_after`].
        give_up_after: Option<u32>,
    },
}

impl BatchOutcome {
    /// For a batch of `len` events: how many of the first were delivered, and, when the next
    /// one failed, the sink's give-up limit for it.
    pub fn split(self, len: usize) -> (usize, Option<Option<u32>>) {
        match self {
            BatchOutcome::Delivered => (len, None),
            BatchOutcome::Failed {
                delivered,
                give_up_after,
            } => (delivered.min(len), Some(give_up_after)),
        }
    }
}

/// A relay's turn on one channel, with the events it read.
#[async_trait]
pub trait OutboxBatch: Send + Debug {
    /// The events, in order.
    fn events(&self) -> &[PendingEvent];
    /// Records the outcome at `now` (delivered events are sent, a failure counted) and ends the
    /// turn, all together.
    async fn finish(
        self: Box<Self>,
        outcome: BatchOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Pending and given-up events of a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be delivered.
    pub pending: u64,
    /// Given up after too many failures.
    pub dead: u64,
}

/// Why a sink did not deliver all of a batch.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct SinkError {
    /// How many of the batch's first events it delivered before failing.
    pub delivered: usize,
    /// What went wrong.
    pub reason: String,
}

/// Where domain events go: a message broker, webhooks, ...
#[async_trait]
pub trait EventSink: Send + Sync + Debug {
    /// The outbox channel it delivers (stores record each event once per channel).
    fn channel(&self) -> &str;
    /// Failed attempts after which an event is given up; `None`: never (it waits, and
    /// everything after it with it, until the receiver is back).
    fn give_up_after(&self) -> Option<u32>;
    /// Delivers the events in order; `Ok` only once the receiver confirmed every one.
    async fn send(&self, events: &[PendingEvent]) -> Result<(), SinkError>;
}
