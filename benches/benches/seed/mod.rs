//! Seeding for the read benchmarks: stores filled through the store port, as the server
//! fills them, so the indexes are the ones production has. Durability is relaxed while seeding
//! (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`); the reads measured do not
//! depend on it.

use std::sync::Arc;
use std::time::Instant;

use chat_core::domain::{
    DisplayName, MessageBody, MessageId, MessageKind, NewMessage, NewRoom, Role, RoomId, RoomKind,
    User, UserId, Username, Visibility,
};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::{ChatEngine, Limits};
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use futures_util::stream::{self, StreamExt};
use time::OffsetDateTime;
use uuid::Uuid;

/// Appends in flight while seeding.
pub(crate) const SEED_CONCURRENCY: usize = 64;

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The backends to seed; `memory` only where scanning everything is a fair reference.
pub(crate) async fn backends(with_memory: bool) -> Vec<(&'static str, Arc<dyn Store>)> {
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

pub(crate) async fn user(store: &dyn Store, name: &str) -> UserId {
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

pub(crate) async fn rooms(store: &dyn Store, n: usize, members: &[UserId]) -> Vec<RoomId> {
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
pub(crate) async fn seed(
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
                attachment: None,
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

pub(crate) async fn engine(store: Arc<dyn Store>) -> ChatEngine {
    ChatEngine::builder(store)
        .limits(Limits::default())
        .build()
        .await
        .unwrap()
}
