//! The unread summary (`GET /v1/unread`) of a user in 500 rooms holding 100,000 messages
//! (200 a room, half of each read, every tenth mentioning the user), on MemoryStore, SQLite and
//! PostgreSQL (with `CHAT_TEST_POSTGRES_URL`), in one criterion group.
//!
//! `cargo bench -p chat-benches --bench unread`

mod seed;

use std::time::Duration;

use chat_core::domain::Seq;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use time::OffsetDateTime;

use seed::{backends, engine, rooms, runtime, seed, user};

const UNREAD_ROOMS: usize = 500;
const UNREAD_PER_ROOM: usize = 200;

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

criterion_group!(benches, unread_summary);
criterion_main!(benches);
