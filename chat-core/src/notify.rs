//! `InProcessNotifier`: the bus for engines in one process (one node, or several engines sharing
//! one store in tests and embedded setups).

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::ports::{BusSignal, BusStream, Hint, Notifier};

/// A [`Notifier`] on a broadcast channel. A subscriber that falls more than `capacity` batches
/// behind gets [`BusSignal::Resync`] instead of the batches it missed.
#[derive(Debug, Clone)]
pub struct InProcessNotifier {
    tx: broadcast::Sender<Vec<Hint>>,
}

impl InProcessNotifier {
    /// A bus keeping up to `capacity` batches for slow subscribers.
    pub fn new(capacity: usize) -> InProcessNotifier {
        let (tx, _) = broadcast::channel(capacity.max(1));
        InProcessNotifier { tx }
    }
}

impl Default for InProcessNotifier {
    fn default() -> Self {
        InProcessNotifier::new(4096)
    }
}

#[async_trait]
impl Notifier for InProcessNotifier {
    async fn publish(&self, hints: &[Hint]) -> Result<(), StoreError> {
        // No subscribers is not an error: nobody needs the hint.
        let _ = self.tx.send(hints.to_vec());
        Ok(())
    }

    async fn subscribe(&self) -> Result<BusStream, StoreError> {
        let rx = self.tx.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(hints) => Some((BusSignal::Hints(hints), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((BusSignal::Resync, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(stream.boxed())
    }
}
