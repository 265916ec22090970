//! Read benchmarks on seeded stores, each backend in one criterion group:
//!
//! - `unread_summary`: `GET /v1/unread` for a user in 500 rooms holding 100,000 messages
//!   (200 a room, half of each read, every tenth mentioning the user);
//! - `search`: `GET /v1/search` (newest 50) over 1,000,000 messages in 1,000 rooms, all the
//!   searcher's: a rare word (~1,600 matches), a common one (~100,000), both (~160), and a word
//!   no message holds.
//!
//! The data is written through the store port (`append_message`), as the server writes it, so
//! the indexes are the ones production has. Seeding takes minutes on PostgreSQL; set
//! `CHAT_BENCH_SEARCH_MESSAGES` to search a smaller history. Durability is relaxed while seeding
//! (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`): the reads measured do not
//! depend on it.
//!
//! `cargo bench -p chat-benches --bench reads` (PostgreSQL with `CHAT_TEST_POSTGRES_URL` set)

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::domain::{
    DisplayName, MessageBody, MessageId, MessageKind, NewMessage, NewRoom, PageSize, Role, RoomId,
    RoomKind, Seq, User, UserId, Username, Visibility,
};
use chat_core::engine::SearchMessages;
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::{ChatEngine, Limits};
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures_util::stream::{self, StreamExt};
use time::OffsetDateTime;
use uuid::Uuid;

/// Appends in flight while seeding.
const SEED_CONCURRENCY: usize = 64;

const UNREAD_ROOMS: usize = 500;
const UNREAD_PER_ROOM: usize = 200;

const SEARCH_ROOMS: usize = 1_000;
const VOCABULARY: u64 = 5_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The backends to seed; `memory` only where scanning everything is a fair reference.
async fn backends(with_memory: bool) -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut backends: Vec<(&'static str, Arc<dyn Store>)> = Vec::new();
    if with_memory {
        backends.push(("memory", Arc::new(MemoryStore::new())));
    }
    let sqlite = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    backends.push((
        "sqlite",
        Arc::new(SqliteStore::open_temporary(sqlite).await.unwrap()),
    ));
    match std::env::var("CHAT_TEST_POSTGRES_URL") {
        Ok(url) => {
            let options = PgOptions {
                max_connections: SEED_CONCURRENCY as u32 + 4,
                min_connections: 0,
                ..PgOptions::default()
            };
            let store = PgStore::open_temporary(&url, options).await.unwrap();
            // Connections opened from here on (all but the one idle now) commit without waiting
            // for the WAL flush.
            let (name,): (String,) = sqlx::query_as("SELECT current_database()")
                .fetch_one(store.pool())
                .await
                .unwrap();
            sqlx::query(&format!(
                "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
            ))
            .execute(store.pool())
            .await
            .unwrap();
            backends.push(("postgres", Arc::new(store)));
        }
        Err(_) => eprintln!("postgres skipped: CHAT_TEST_POSTGRES_URL is not set"),
    }
    backends
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let user = User {
        id: UserId(Uuid::new_v4()),
        username: Username::parse(name).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        email: None,
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_user(&user, "not a hash").await.unwrap();
    user.id
}

async fn rooms(store: &dyn Store, n: usize, members: &[UserId]) -> Vec<RoomId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let room = NewRoom {
            id: RoomId(Uuid::new_v4()),
            kind: RoomKind::Group,
            name: format!("room {i}"),
            topic: None,
            visibility: Visibility::Private,
            created_by: members[0],
            created_at: OffsetDateTime::now_utc(),
        };
        let roles: Vec<(UserId, Role)> = members
            .iter()
            .enumerate()
            .map(|(i, &u)| (u, if i == 0 { Role::Owner } else { Role::Member }))
            .collect();
        store.create_room(&room, &roles).await.unwrap();
        ids.push(room.id);
    }
    ids
}

/// Appends `count` messages round-robin over `rooms`, `body(i)` being the i-th, `SEED_CONCURRENCY`
/// at a time but in order within each room's share.
async fn seed(
    store: &Arc<dyn Store>,
    rooms: &[RoomId],
    sender: UserId,
    count: usize,
    body: impl Fn(usize) -> (String, Vec<UserId>),
) {
    let started = Instant::now();
    let messages: Vec<NewMessage> = (0..count)
        .map(|i| {
            let (text, mentions) = body(i);
            NewMessage {
                id: MessageId(Uuid::new_v4()),
                room_id: rooms[i % rooms.len()],
                sender_id: sender,
                kind: MessageKind::Text,
                body: Some(MessageBody::parse(&text, 4000).unwrap()),
                client_id: None,
                reply_to: None,
                thread_id: None,
                mentions,
                created_at: OffsetDateTime::now_utc(),
            }
        })
        .collect();
    stream::iter(messages)
        .for_each_concurrent(SEED_CONCURRENCY, |m| {
            let store = store.clone();
            async move {
                store.append_message(&m).await.unwrap();
            }
        })
        .await;
    eprintln!(
        "seeded {count} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn engine(store: Arc<dyn Store>) -> ChatEngine {
    ChatEngine::builder(store)
        .limits(Limits::default())
        .build()
        .await
        .unwrap()
}

fn unread_summary(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("unread_summary");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (name, store) in runtime.block_on(backends(true)) {
        let (engine, reader) = runtime.block_on(async {
            let reader = user(store.as_ref(), "reader").await;
            let sender = user(store.as_ref(), "sender").await;
            let rooms = rooms(store.as_ref(), UNREAD_ROOMS, &[sender, reader]).await;
            let total = UNREAD_ROOMS * UNREAD_PER_ROOM;
            seed(&store, &rooms, sender, total, |i| {
                let mentions = if i % 10 == 0 {
                    vec![reader]
                } else {
                    Vec::new()
                };
                (format!("message {i} @reader"), mentions)
            })
            .await;
            let half = Seq((UNREAD_PER_ROOM / 2) as i64);
            for room in &rooms {
                store
                    .mark_read(*room, reader, half, OffsetDateTime::now_utc())
                    .await
                    .unwrap();
            }
            (engine(store.clone()).await, reader)
        });
        let summary = runtime.block_on(engine.unread_summary(reader)).unwrap();
        assert_eq!(summary.total, (UNREAD_ROOMS * UNREAD_PER_ROOM / 2) as i64);
        group.bench_function(BenchmarkId::new(name, "500 rooms, 100k messages"), |b| {
            b.to_async(&runtime)
                .iter(|| async { engine.unread_summary(reader).await.unwrap() })
        });
    }
    group.finish();
}

/// A deterministic pseudo-random sequence (SplitMix64), so every run searches the same text.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Eight words of the vocabulary, and `hello` in one message of ten.
fn search_body(i: usize) -> String {
    let mut words: Vec<String> = (0..8)
        .map(|k| format!("w{}", mix((i * 8 + k) as u64) % VOCABULARY))
        .collect();
    if i % 10 == 0 {
        words.push("hello".into());
    }
    words.join(" ")
}

fn search(c: &mut Criterion) {
    let runtime = runtime();
    let count: usize = std::env::var("CHAT_BENCH_SEARCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut group = c.benchmark_group("search");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (name, store) in runtime.block_on(backends(false)) {
        let (engine, searcher) = runtime.block_on(async {
            let searcher = user(store.as_ref(), "searcher").await;
            let rooms = rooms(store.as_ref(), SEARCH_ROOMS, &[searcher]).await;
            seed(&store, &rooms, searcher, count, |i| {
                (search_body(i), Vec::new())
            })
            .await;
            (engine(store.clone()).await, searcher)
        });
        for (label, q) in [
            ("rare word", "w4242"),
            ("common word", "hello"),
            ("both", "hello w4242"),
            ("no match", "zzz"),
        ] {
            let input = SearchMessages {
                q: q.into(),
                limit: PageSize::new(50),
                ..SearchMessages::default()
            };
            let found = runtime
                .block_on(engine.search(searcher, input.clone()))
                .unwrap();
            eprintln!("{name} {label}: {} on the first page", found.messages.len());
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.to_async(&runtime)
                    .iter(|| async { engine.search(searcher, input.clone()).await.unwrap() })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, unread_summary, search);
criterion_main!(benches);
