//! Fan-out on one node: one event to 1,000 live sessions in one room, timed from publishing it
//! until every session has handed it out, on MemoryStore. Throughput counts the 1,000 deliveries.
//!
//! The sessions are the ones the WebSocket handler of chat-server drives: `ChatEngine::connect`
//! for each of 1,000 members, and a task per session looping on `Session::next_frame`, as the
//! handler does before writing each frame to its socket (the socket write is left out). A task
//! counts the `message.created` frames it gets (the presence frames of the others connecting
//! are not counted), and the one that completes a round of 1,000 wakes the benchmark. The
//! sender is a 1,001st member without a session, and the engine runs without its send rate
//! limit. Two rows:
//!
//! - `engine_send_memory`: `ChatEngine::send` (checks, append to MemoryStore, the event
//!   serialized once, the hub's publish) until all 1,000 sessions have the message.
//! - `hub_publish`: only the hub path: a `message.created` frame (one real message's JSON,
//!   serialized once before; its seq advanced per iteration, so sessions take it as the next
//!   message of the room) given to `ChatEngine::hub().publish` until all 1,000 sessions have it.
//!   No store, no serialization.
//!
//! A bare hub benchmark (a `Hub` and 1,000 receiving queues, without sessions) is not possible
//! from outside chat-core: `Hub::register`, `Inbox` and `Item` are crate-private.
//!
//! `cargo bench -p chat-benches --bench hub`

// The store helpers of the read benchmarks (users and rooms created through the port).
#[allow(dead_code)]
mod seed;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_core::domain::{RoomId, Seq, UserId};
use chat_core::engine::SendMessage;
use chat_core::events::{Event, Frame};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::{ChatEngine, Limits};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use seed::{rooms, runtime, user};

/// Live sessions in the room, one per member.
const SESSIONS: usize = 1_000;
/// How every `message.created` frame starts (the event's tag is serialized first).
const MESSAGE_CREATED: &str = r#"{"type":"message.created""#;
const BODY: &str = "a benchmark message of ordinary length";
/// Longer than any round can take: a round that is not complete by then lost a session.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// What the session tasks report.
#[derive(Default)]
struct Received {
    /// `message.created` frames handed out by all sessions together.
    messages: AtomicUsize,
    /// Woken each time `messages` reaches a multiple of `SESSIONS`.
    round: Notify,
    /// Sessions that ended (cut as slow consumers, or closed).
    ended: AtomicUsize,
}

struct Fanout {
    engine: ChatEngine,
    sender: UserId,
    /// The room the engine sends into.
    send_room: RoomId,
    /// The room the hub rows publish into.
    hub_room: RoomId,
    /// The JSON of a real `message.created` event of `hub_room`.
    hub_json: Arc<str>,
    /// The seq of the next frame published into `hub_room`.
    hub_seq: AtomicI64,
    received: Arc<Received>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fanout {
    async fn new() -> Fanout {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let limits = Limits {
            send_rate: None,
            ..Limits::default()
        };
        let engine = ChatEngine::builder(store.clone())
            .limits(limits)
            .build()
            .await
            .unwrap();
        let sender = user(store.as_ref(), "sender").await;
        let mut members = vec![sender];
        for i in 0..SESSIONS {
            members.push(user(store.as_ref(), &format!("member{i:04}")).await);
        }
        let rooms = rooms(store.as_ref(), 2, &members).await;
        let (send_room, hub_room) = (rooms[0], rooms[1]);

        // One message in the hub room before anyone connects: its JSON is what the hub rows
        // publish, and the sessions start after its seq.
        let sent = engine
            .send(sender, hub_room, message())
            .await
            .unwrap()
            .message;
        let hub_seq = AtomicI64::new(sent.seq.0 + 1);
        let hub_json = Event::MessageCreated { message: sent }
            .into_frame()
            .json
            .clone();
        assert!(hub_json.starts_with(MESSAGE_CREATED), "{hub_json}");

        let received = Arc::new(Received::default());
        let mut tasks = Vec::with_capacity(SESSIONS);
        for &member in &members[1..] {
            let mut session = engine.connect(member).await.unwrap();
            let received = received.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(frame) = session.next_frame().await {
                    if frame.starts_with(MESSAGE_CREATED) {
                        let n = received.messages.fetch_add(1, Ordering::AcqRel) + 1;
                        if n.is_multiple_of(SESSIONS) {
                            received.round.notify_one();
                        }
                    }
                }
                received.ended.fetch_add(1, Ordering::AcqRel);
            }));
        }
        let fanout = Fanout {
            engine,
            sender,
            send_room,
            hub_room,
            hub_json,
            hub_seq,
            received,
            tasks,
        };
        fanout.settle().await;
        fanout
    }

    /// Waits until the presence frames of the connections stop flowing.
    async fn settle(&self) {
        let deliveries = || self.engine.hub().stats().deliveries.load(Ordering::Relaxed);
        loop {
            let before = deliveries();
            tokio::time::sleep(Duration::from_millis(200)).await;
            if deliveries() == before {
                break;
            }
        }
        assert_eq!(self.engine.hub().session_count(), SESSIONS);
        assert_eq!(self.received.messages.load(Ordering::Acquire), 0);
    }

    /// Waits until every session has handed out the message of this round.
    async fn round(&self) {
        if tokio::time::timeout(ROUND_TIMEOUT, self.received.round.notified())
            .await
            .is_err()
        {
            panic!(
                "a round did not reach all {SESSIONS} sessions ({} frames counted, {} sessions ended)",
                self.received.messages.load(Ordering::Acquire),
                self.received.ended.load(Ordering::Acquire),
            );
        }
    }

    async fn send(&self) {
        self.engine
            .send(self.sender, self.send_room, message())
            .await
            .unwrap();
        self.round().await;
    }

    async fn publish(&self) {
        let seq = self.hub_seq.fetch_add(1, Ordering::Relaxed);
        self.engine.hub().publish(Arc::new(Frame {
            room: Some(self.hub_room),
            seq: Some(Seq(seq)),
            json: self.hub_json.clone(),
        }));
        self.round().await;
    }
}

fn message() -> SendMessage {
    SendMessage {
        body: Some(BODY.into()),
        ..SendMessage::default()
    }
}

fn fanout(c: &mut Criterion) {
    let runtime = runtime();
    let f = runtime.block_on(Fanout::new());
    // One round of each before measuring, which also checks that both reach every session.
    runtime.block_on(async {
        f.send().await;
        f.publish().await;
    });
    let mut group = c.benchmark_group("hub_fanout");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(SESSIONS as u64));
    let sessions = format!("{SESSIONS} sessions");
    group.bench_function(BenchmarkId::new("engine_send_memory", &sessions), |b| {
        b.to_async(&runtime).iter(|| f.send())
    });
    group.bench_function(BenchmarkId::new("hub_publish", &sessions), |b| {
        b.to_async(&runtime).iter(|| f.publish())
    });
    group.finish();
    assert_eq!(f.received.ended.load(Ordering::Acquire), 0);
    for task in &f.tasks {
        task.abort();
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
