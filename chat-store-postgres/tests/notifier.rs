//! The LISTEN/NOTIFY bus against a real PostgreSQL: hints reach every listener, in order, and
//! a listener whose backend is killed comes back and says it may have missed some.

use std::time::Duration;

use chat_core::domain::{RoomId, Seq, UserId};
use chat_core::ports::{BusSignal, BusStream, Hint, HintKind, NodeId, Notifier};
use chat_store_postgres::{PgNotifier, PgOptions, PgStore};
use futures_util::StreamExt;
use uuid::Uuid;

async fn database() -> Option<PgStore> {
    let Ok(url) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return None;
    };
    Some(
        PgStore::open_temporary(&url, PgOptions::default())
            .await
            .expect("temporary database"),
    )
}

async fn next(stream: &mut BusStream) -> BusSignal {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a signal within 10 s")
        .expect("the bus is open")
}

fn hints(n: std::ops::RangeInclusive<i64>) -> Vec<Hint> {
    let origin = NodeId(Uuid::new_v4());
    let room = Some(RoomId(Uuid::new_v4()));
    n.map(|seq| Hint {
        origin,
        room,
        kind: HintKind::Message { seq: Seq(seq) },
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_reach_every_listener_in_order() {
    let Some(store) = database().await else {
        return;
    };
    let a = PgNotifier::start(store.pool().clone()).await.unwrap();
    let b = PgNotifier::start(store.pool().clone()).await.unwrap();
    let mut on_a = a.subscribe().await.unwrap();
    let mut on_b = b.subscribe().await.unwrap();
    // More than fit one NOTIFY: they arrive as several batches, in order.
    let sent = hints(1..=200);
    a.publish(&sent).await.unwrap();
    let presence = Hint {
        origin: NodeId(Uuid::new_v4()),
        room: None,
        kind: HintKind::Presence {
            user: UserId(Uuid::new_v4()),
        },
    };
    b.publish(&[presence]).await.unwrap();
    for stream in [&mut on_a, &mut on_b] {
        let mut got = Vec::new();
        while got.len() < sent.len() + 1 {
            match next(stream).await {
                BusSignal::Hints(h) => got.extend(h),
                BusSignal::Resync => panic!("nothing was lost"),
            }
        }
        assert_eq!(got[..sent.len()], sent[..]);
        assert_eq!(got[sent.len()], presence);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_backend_is_killed_resyncs_and_listens_again() {
    let Some(store) = database().await else {
        return;
    };
    let notifier = PgNotifier::start(store.pool().clone()).await.unwrap();
    let mut stream = notifier.subscribe().await.unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![(true,)], "one listener backend");
    assert_eq!(next(&mut stream).await, BusSignal::Resync);
    let sent = hints(1..=3);
    notifier.publish(&sent).await.unwrap();
    assert_eq!(next(&mut stream).await, BusSignal::Hints(sent));
}
