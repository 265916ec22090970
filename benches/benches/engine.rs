//! Engine benchmarks: sending a message through the engine (validation, membership check,
//! append, fan-out) on MemoryStore and SQLite, the backends compared in one group.
//!
//! `cargo bench -p chat-benches --bench engine`

use std::sync::Arc;

use chat_core::engine::{CreateRoom, Register, SendMessage};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::ChatEngine;
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Setup {
    engine: ChatEngine,
    user: chat_core::domain::UserId,
    room: chat_core::domain::RoomId,
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
    let room = engine
        .create_room(
            user.id,
            CreateRoom {
                name: "bench".into(),
                topic: None,
                visibility: None,
                members: None,
            },
        )
        .await
        .unwrap();
    Setup {
        engine,
        user: user.id,
        room: room.id,
    }
}

fn send(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("engine_send_1_sender");
    group.throughput(Throughput::Elements(1));
    let backends: Vec<(&str, Arc<dyn Store>)> = runtime.block_on(async {
        vec![
            ("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>),
            (
                "sqlite",
                Arc::new(
                    SqliteStore::open_temporary(SqliteOptions::default())
                        .await
                        .unwrap(),
                ) as Arc<dyn Store>,
            ),
        ]
    });
    for (name, store) in backends {
        let s = runtime.block_on(setup(store));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&runtime).iter(|| async {
                s.engine
                    .send(
                        s.user,
                        s.room,
                        SendMessage {
                            body: Some("a benchmark message of ordinary length".into()),
                            ..SendMessage::default()
                        },
                    )
                    .await
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
