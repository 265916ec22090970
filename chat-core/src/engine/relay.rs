//! The outbox relay: per event sink, one loop that takes the channel's turn in the outbox,
//! hands the pending events to the sink in order and marks what the sink confirmed. A crash
//! between the sink's confirmation and the mark sends the events again (at least once;
//! consumers dedupe by id). Sent events are pruned after the retention.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Inner;
use crate::error::ChatError;
use crate::ports::{BatchOutcome, EventSink};

/// Events handed to a sink at once.
const RELAY_BATCH: u32 = 200;

/// The longest wait before trying a failing sink again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often sent events older than the retention are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What the relays did, for metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events a sink confirmed.
    pub sent: AtomicU64,
    /// Failed attempts to deliver an event.
    pub failures: AtomicU64,
}

/// What one turn came to.
enum Turn {
    /// Events went out; there may be more at once.
    Sent,
    /// Nothing pending, or another relay holds the turn.
    Idle,
    /// The sink or the store failed.
    Failed,
}

impl Inner {
    /// One turn of `sink`'s channel.
    async fn relay_turn(&self, sink: &dyn EventSink) -> Result<Turn, ChatError> {
        let Some(batch) = self
            .store()
            .outbox_batch(sink.channel(), RELAY_BATCH)
            .await?
        else {
            return Ok(Turn::Idle);
        };
        let count = batch.events().len();
        if count == 0 {
            batch
                .finish(BatchOutcome::Delivered, self.clock.now())
                .await?;
            return Ok(Turn::Idle);
        }
        match sink.send(batch.events()).await {
            Ok(()) => {
                batch
                    .finish(BatchOutcome::Delivered, self.clock.now())
                    .await?;
                self.relay_stats
                    .sent
                    .fetch_add(count as u64, Ordering::Relaxed);
                Ok(Turn::Sent)
            }
            Err(e) => {
                let delivered = e.delivered.min(count);
                tracing::warn!(
                    channel = sink.channel(),
                    delivered,
                    error = %e,
                    "an event sink failed; the rest of the batch waits"
                );
                let outcome = BatchOutcome::Failed {
                    delivered,
                    give_up_after: sink.give_up_after(),
                };
                batch.finish(outcome, self.clock.now()).await?;
                self.relay_stats
                    .sent
                    .fetch_add(delivered as u64, Ordering::Relaxed);
                self.relay_stats.failures.fetch_add(1, Ordering::Relaxed);
                Ok(Turn::Failed)
            }
        }
    }

    async fn prune_outbox(&self) -> Result<u64, ChatError> {
        let before = self.clock.now() - time::Duration::seconds(self.limits.outbox_retention_secs);
        let mut pruned = 0;
        loop {
            let n = self.store().prune_outbox(before, 1000).await?;
            pruned += n;
            if n < 1000 {
                return Ok(pruned);
            }
        }
    }
}

/// Relays `sink`'s channel until the engine is dropped.
pub(super) fn spawn_relay(engine: Weak<Inner>, sink: Arc<dyn EventSink>) {
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        loop {
            let Some(inner) = engine.upgrade() else {
                return;
            };
            let idle = Duration::from_millis(inner.limits.outbox_poll_ms);
            let turn = inner.relay_turn(&*sink).await;
            drop(inner);
            let wait = match turn {
                Ok(Turn::Sent) => {
                    backoff = Duration::ZERO;
                    continue;
                }
                Ok(Turn::Idle) => {
                    backoff = Duration::ZERO;
                    idle
                }
                Ok(Turn::Failed) | Err(_) => {
                    if let Err(e) = turn {
                        tracing::warn!(channel = sink.channel(), error = %e, "relaying events failed");
                    }
                    backoff =
                        (backoff * 2).clamp(idle.max(Duration::from_millis(100)), MAX_BACKOFF);
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}

/// Prunes sent events every [`PRUNE_EVERY`] until the engine is dropped.
pub(super) fn spawn_pruner(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            let Some(inner) = engine.upgrade() else {
                return;
            };
            match inner.prune_outbox().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "pruned sent events"),
                Err(e) => tracing::warn!(error = %e, "pruning sent events failed"),
            }
        }
    });
}
