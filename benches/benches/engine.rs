//! Engine benchmarks: sending a message through the engine (validation, membership check,
//! append, fan-out) on MemoryStore, SQLite and PostgreSQL, at 1, 8 and 64 concurrent senders,
//! the backends compared in one group. Each sender posts into a room of its own, as the many
//! conversations of a real server do; PostgreSQL runs when `CHAT_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench -p chat-benches --bench engine`

use std::sync::Arc;
use std::time::Duration;

use chat_core::domain::{RoomId, UserId};
use chat_core::engine::{CreateRoom, Register, SendMessage};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::ChatEngine;
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::future::join_all;

const SENDERS: [usize; 3] = [1, 8, 64];

struct Setup {
    engine: ChatEngine,
    user: UserId,
    rooms: Vec<RoomId>,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let engine = ChatEngine::builder(store).build().await.unwrap();
    let user = engine
        .register(Register {
            username: "bench".into(),
            password: "benchmark password".into(),
            email: None,
            display_name: None,
        })
        .await
        .unwrap();
    let mut rooms = Vec::new();
    for i in 0..SENDERS[SENDERS.len() - 1] {
        let room = engine
            .create_room(
                user.id,
                CreateRoom {
                    name: format!("bench {i}"),
                    topic: None,
                    visibility: None,
                    members: None,
                },
            )
            .await
            .unwrap();
        rooms.push(room.id);
    }
    Setup {
        engine,
        user: user.id,
        rooms,
    }
}

async fn backends() -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut backends: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(
                SqliteStore::open_temporary(SqliteOptions::default())
                    .await
                    .unwrap(),
            ),
        ),
    ];
    match std::env::var("CHAT_TEST_POSTGRES_URL") {
        Ok(url) => {
            let options = PgOptions {
                max_connections: 70,
                ..PgOptions::default()
            };
            let store = PgStore::open_temporary(&url, options).await.unwrap();
            backends.push(("postgres", Arc::new(store)));
        }
        Err(_) => eprintln!("postgres skipped: CHAT_TEST_POSTGRES_URL is not set"),
    }
    backends
}

fn send(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("engine_send");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (name, store) in runtime.block_on(backends()) {
        let s = runtime.block_on(setup(store));
        for senders in SENDERS {
            group.throughput(Throughput::Elements(senders as u64));
            group.bench_with_input(BenchmarkId::new(name, senders), &senders, |b, &n| {
                b.to_async(&runtime).iter(|| {
                    join_all(s.rooms[..n].iter().map(|room| {
                        s.engine.send(
                            s.user,
                            *room,
                            SendMessage {
                                body: Some("a benchmark message of ordinary length".into()),
                                ..SendMessage::default()
                            },
                        )
                    }))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
