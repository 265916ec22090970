//! Full-text search (`GET /v1/search`, newest 50) over 1,000,000 messages in 1,000 rooms, all
//! the searcher's, on SQLite and PostgreSQL (with `CHAT_TEST_POSTGRES_URL`): a rare word (~1,600
//! matches), a common one (~100,000), both (~160), and a word no message holds. Seeding a million
//! messages through the store port takes a long while; `CHAT_BENCH_SEARCH_MESSAGES` sets a
//! smaller history.
//!
//! `cargo bench -p chat-benches --bench search`

mod seed;

use std::time::Duration;

use chat_core::domain::PageSize;
use chat_core::engine::SearchMessages;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use seed::{backends, engine, rooms, runtime, seed, user};

const SEARCH_ROOMS: usize = 1_000;
const VOCABULARY: u64 = 5_000;

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
    if i.is_multiple_of(10) {
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

criterion_group!(benches, search);
criterion_main!(benches);
