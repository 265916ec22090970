//! Engine tests of the outbox relay: events reach a sink in order, a failing sink gets them
//! again (at least once, never lost), and a sink that gives up dead-letters only the event it
//! could not take.

#[macro_use]
mod support;

use std::sync::Mutex;

use async_trait::async_trait;
use chat_core::outbox::{EventType, PendingEvent};
use chat_core::ports::{EventSink, OutboxStore, SinkError};
use support::*;

/// A sink that keeps what it was sent and refuses the events it is told to, a given number
/// of times each.
#[derive(Debug, Default)]
struct Collecting {
    received: Mutex<Vec<PendingEvent>>,
    /// (event type, refusals left)
    refuse: Mutex<Option<(EventType, u32)>>,
    give_up_after: Option<u32>,
}

#[async_trait]
impl EventSink for Collecting {
    fn channel(&self) -> &str {
        "test"
    }

    fn give_up_after(&self) -> Option<u32> {
        self.give_up_after
    }

    async fn send(&self, events: &[PendingEvent]) -> Result<(), SinkError> {
        for (i, event) in events.iter().enumerate() {
            let mut refuse = self.refuse.lock().unwrap();
            if let Some((kind, left)) = refuse.as_mut() {
                if *kind == event.kind && *left > 0 {
                    *left -= 1;
                    return Err(SinkError {
                        delivered: i,
                        reason: "refused".into(),
                    });
                }
            }
            self.received.lock().unwrap().push(event.clone());
        }
        Ok(())
    }
}

impl Collecting {
    fn kinds(&self) -> Vec<&'static str> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect()
    }

    async fn wait_for(&self, count: usize) -> Vec<&'static str> {
        tokio::time::timeout(WAIT, async {
            while self.received.lock().unwrap().len() < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the events arrive");
        self.kinds()
    }
}

async fn relaying(sink: Arc<Collecting>) -> (ChatEngine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::with_event_channels(vec!["test".into()]));
    let engine = ChatEngine::builder(store.clone())
        .limits(Limits {
            outbox_poll_ms: 10,
            ..limits()
        })
        .event_sinks(vec![sink])
        .build()
        .await
        .expect("engine builds");
    (engine, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_sink_in_order_and_a_refusal_only_delays_them() {
    let sink = Arc::new(Collecting::default());
    *sink.refuse.lock().unwrap() = Some((EventType::MessageCreated, 2));
    let (engine, store) = relaying(sink.clone()).await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    say(&engine, alice, room, "one").await;
    say(&engine, alice, room, "two").await;

    let kinds = sink.wait_for(5).await;
    assert_eq!(
        kinds,
        [
            "user.created",
            "room.created",
            "member.joined",
            "message.created",
            "message.created"
        ]
    );
    let bodies: Vec<String> = sink
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.body.clone())
        .collect();
    assert!(bodies[3].contains("\"one\"") && bodies[4].contains("\"two\""));
    let counts = store.outbox_counts("test").await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 0));
    assert_eq!(
        engine
            .relay_stats()
            .failures
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_gives_up_dead_letters_only_the_refused_event() {
    let sink = Arc::new(Collecting {
        give_up_after: Some(3),
        ..Default::default()
    });
    *sink.refuse.lock().unwrap() = Some((EventType::RoomCreated, u32::MAX));
    let (engine, store) = relaying(sink.clone()).await;
    let alice = seed_user(&store, "alice").await;
    private_room(&engine, alice, &[]).await;

    assert_eq!(sink.wait_for(2).await, ["user.created", "member.joined"]);
    let counts = store.outbox_counts("test").await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 1));
}
