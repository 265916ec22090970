//! Implementing a port: a [`Notifier`] (the bus between server nodes) on a tokio broadcast
//! channel, as a host would put one on its own message bus (Redis, NATS, ...). Two engines, two
//! "nodes", share one store and this bus: a message sent on node A reaches a live session on
//! node B.
//!
//! `cargo run -p chat-examples --example custom_notifier`

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::engine::{CreateRoom, Register, SendMessage};
use chat_core::memory::MemoryStore;
use chat_core::ports::{BusSignal, BusStream, Hint, Notifier};
use chat_core::{ChatEngine, StoreError};
use tokio::sync::broadcast;

/// A bus on a broadcast channel. The bus carries hints ("room R has a new message"), never the
/// data: a node that gets one reads the store, so a lost hint costs a resync, not a message.
#[derive(Clone, Debug)]
struct BroadcastBus {
    sender: broadcast::Sender<Vec<Hint>>,
}

impl BroadcastBus {
    fn new() -> BroadcastBus {
        BroadcastBus {
            sender: broadcast::channel(1024).0,
        }
    }
}

#[async_trait]
impl Notifier for BroadcastBus {
    async fn publish(&self, hints: &[Hint]) -> Result<(), StoreError> {
        // Nobody listening is not an error: there is nobody to tell.
        let _ = self.sender.send(hints.to_vec());
        Ok(())
    }

    async fn subscribe(&self) -> Result<BusStream, StoreError> {
        let receiver = self.sender.subscribe();
        Ok(Box::pin(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                match receiver.recv().await {
                    Ok(hints) => Some((BusSignal::Hints(hints), receiver)),
                    // Hints were dropped for this subscriber: the engine re-reads the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Some((BusSignal::Resync, receiver))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            },
        )))
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let bus = BroadcastBus::new();
    let node = |store: Arc<MemoryStore>, bus: BroadcastBus| async move {
        ChatEngine::builder(store)
            .notifier(Arc::new(bus))
            .build()
            .await
    };
    let node_a = node(store.clone(), bus.clone()).await?;
    let node_b = node(store, bus).await?;

    let register = |name: &str| Register {
        username: name.into(),
        password: "a long enough password".into(),
        email: None,
        display_name: None,
    };
    let alice = node_a.register(register("alice")).await?;
    let bob = node_a.register(register("bob")).await?;
    let room = node_a
        .create_room(
            alice.id,
            CreateRoom {
                name: "across nodes".into(),
                topic: None,
                visibility: None,
                members: Some(vec![bob.id.to_string()]),
            },
        )
        .await?;

    // Bob is connected to node B; Alice writes through node A.
    let mut bob_on_b = node_b.connect(bob.id).await?;
    node_a
        .send(
            alice.id,
            room.id,
            SendMessage {
                body: Some("hello from node A".into()),
                ..SendMessage::default()
            },
        )
        .await?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), bob_on_b.next_frame())
            .await?
            .map_err(|end| format!("bob's session ended: {end:?}"))?;
        if frame.contains("message.created") {
            println!("bob's session on node B: {frame}");
            return Ok(());
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs() {
        super::run().await.expect("the example runs");
    }
}
