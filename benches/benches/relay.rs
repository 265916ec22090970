//! The outbox relay's throughput to RabbitMQ: events a store holds, relayed by the engine's own
//! relay loop through `chat_events::AmqpSink` (publisher confirms, persistent messages), until
//! the outbox is empty. Each iteration records `EVENTS` events (not timed) and times how long
//! the relay takes to empty the outbox, on SQLite and (with `CHAT_TEST_POSTGRES_URL`)
//! PostgreSQL. The exchange is a fresh one with no queue bound, so the figure is the relay's and
//! the publish-and-confirm path's, not a consumer's or the broker's disk. Needs
//! `CHAT_TEST_AMQP_URL` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`); without it, nothing runs.
//!
//! `CHAT_TEST_AMQP_URL=... cargo bench -p chat-benches --bench relay`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::{EventSink, Store};
use chat_core::{ChatEngine, Limits};
use chat_events::{AmqpOptions, AmqpSink};
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Events recorded, then relayed, per iteration.
const EVENTS: usize = 2000;

async fn stores(postgres: Option<&str>) -> Vec<(&'static str, Arc<dyn Store>)> {
    let channels = vec!["amqp".to_owned()];
    let sqlite = SqliteStore::open_temporary(SqliteOptions {
        event_channels: channels.clone(),
        ..SqliteOptions::default()
    })
    .await
    .unwrap();
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![("sqlite", Arc::new(sqlite))];
    if let Some(url) = postgres {
        let options = PgOptions {
            event_channels: channels,
            ..PgOptions::default()
        };
        stores.push((
            "postgres",
            Arc::new(PgStore::open_temporary(url, options).await.unwrap()),
        ));
    }
    stores
}

fn relay(c: &mut Criterion) {
    let Ok(amqp) = std::env::var("CHAT_TEST_AMQP_URL") else {
        eprintln!("skipped: CHAT_TEST_AMQP_URL is not set");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let postgres = std::env::var("CHAT_TEST_POSTGRES_URL").ok();
    let stores = runtime.block_on(stores(postgres.as_deref()));
    let mut group = c.benchmark_group("outbox_relay_amqp");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (name, store) in stores {
        let mut options = AmqpOptions::new(amqp.clone());
        options.exchange = format!("chat.events.bench.{}", uuid::Uuid::new_v4().simple());
        let sink: Arc<dyn EventSink> = Arc::new(AmqpSink::new(options).unwrap());
        let engine = runtime.block_on(async {
            ChatEngine::builder(store.clone())
                .limits(Limits {
                    outbox_poll_ms: 10,
                    ..Limits::default()
                })
                .event_sinks(vec![sink])
                .build()
                .await
                .unwrap()
        });
        let payload = serde_json::json!({"user_id": uuid::Uuid::nil(), "status": "online"});
        group.bench_with_input(BenchmarkId::new(name, EVENTS), &EVENTS, |b, &n| {
            b.to_async(&runtime).iter_custom(|iters| {
                let store = store.clone();
                let engine = engine.clone();
                let payload = payload.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let events: Vec<Envelope> = (0..n)
                            .map(|_| {
                                Envelope::new(EventType::PresenceChanged, None, None, &payload)
                            })
                            .collect();
                        store.record_events(&events).await.unwrap();
                        let started = Instant::now();
                        loop {
                            let counts = engine.outbox_counts().await.unwrap();
                            if counts.iter().all(|(_, c)| c.pending == 0) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        total += started.elapsed();
                    }
                    total
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
