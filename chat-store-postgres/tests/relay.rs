//! Two nodes relaying one outbox channel from one database: never two batches in flight at
//! once, no event twice, and each room's events in the order they were committed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::engine::{CreateRoom, Register, SendMessage};
use chat_core::outbox::{EventType, PendingEvent};
use chat_core::ports::{EventSink, OutboxStore, SinkError};
use chat_core::{ChatEngine, Limits};
use chat_store_postgres::{PgOptions, PgStore};
use serde_json::Value;

/// What both nodes' sinks deliver to: one receiver, which notices overlapping batches.
#[derive(Debug, Default)]
struct Receiver {
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    received: Mutex<Vec<PendingEvent>>,
}

#[derive(Debug)]
struct NodeSink(Arc<Receiver>);

#[async_trait]
impl EventSink for NodeSink {
    fn channel(&self) -> &str {
        "shared"
    }

    fn give_up_after(&self) -> Option<u32> {
        None
    }

    async fn send(&self, events: &[PendingEvent]) -> Result<(), SinkError> {
        let receiver = &self.0;
        let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        receiver.most_in_flight.fetch_max(now, Ordering::SeqCst);
        // Long enough for the other node to try its turn meanwhile.
        tokio::time::sleep(Duration::from_millis(5)).await;
        receiver.received.lock().unwrap().extend_from_slice(events);
        receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn node(url: &str, receiver: &Arc<Receiver>) -> (ChatEngine, PgStore) {
    let options = PgOptions {
        event_channels: vec!["shared".into()],
        ..PgOptions::default()
    };
    let store = PgStore::connect(url, options).await.expect("node connects");
    let engine = ChatEngine::builder(Arc::new(store.clone()))
        .limits(Limits {
            outbox_poll_ms: 5,
            send_rate: None,
            ..Limits::default()
        })
        .event_sinks(vec![Arc::new(NodeSink(receiver.clone()))])
        .build()
        .await
        .expect("engine builds");
    (engine, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_relay_one_channel_one_batch_at_a_time_in_room_order() {
    let Ok(admin) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = PgStore::open_temporary(&admin, PgOptions::default())
        .await
        .expect("temporary database");
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let server = admin.split('?').next().unwrap().rsplit_once('/').unwrap().0;
    let url = format!("{server}/{name}");
    let receiver = Arc::new(Receiver::default());
    let (a, store) = node(&url, &receiver).await;
    let (b, _) = node(&url, &receiver).await;

    let alice = a
        .register(Register {
            username: "alice".into(),
            password: "alice's password".into(),
            email: None,
            display_name: None,
        })
        .await
        .unwrap()
        .id;
    let mut rooms = Vec::new();
    for i in 0..3 {
        let spec = CreateRoom {
            name: format!("room {i}"),
            topic: None,
            visibility: None,
            members: None,
        };
        rooms.push(a.create_room(alice, spec).await.unwrap().id);
    }
    const PER_ROOM: usize = 40;
    let mut sends = Vec::new();
    for (i, engine) in [a.clone(), b.clone()].into_iter().enumerate() {
        let rooms = rooms.clone();
        sends.push(tokio::spawn(async move {
            for n in 0..PER_ROOM / 2 {
                for room in &rooms {
                    let text = SendMessage {
                        body: Some(format!("node {i} message {n}")),
                        client_id: None,
                        reply_to: None,
                        thread_id: None,
                        attachment_id: None,
                    };
                    engine.send(alice, *room, text).await.unwrap();
                }
            }
        }));
    }
    for send in sends {
        send.await.unwrap();
    }
    let expected = 1 + rooms.len() * 2 + rooms.len() * PER_ROOM;
    tokio::time::timeout(Duration::from_secs(30), async {
        while receiver.received.lock().unwrap().len() < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every event arrives");
    // Whatever else would come, comes within a few polls.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), expected, "no event twice");
    let ids: HashSet<_> = received.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), expected);
    assert_eq!(receiver.most_in_flight.load(Ordering::SeqCst), 1);
    let mut seqs: HashMap<String, Vec<i64>> = HashMap::new();
    for event in received
        .iter()
        .filter(|e| e.kind == EventType::MessageCreated)
    {
        let body: Value = serde_json::from_str(&event.body).unwrap();
        let room = body["room_id"].as_str().unwrap().to_owned();
        seqs.entry(room)
            .or_default()
            .push(body["payload"]["seq"].as_i64().unwrap());
    }
    for (room, seqs) in &seqs {
        let expected: Vec<i64> = (1..=PER_ROOM as i64).collect();
        assert_eq!(seqs, &expected, "room {room}: in commit order");
    }
    assert_eq!(store.outbox_counts("shared").await.unwrap().pending, 0);
}
