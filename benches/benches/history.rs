//! History pages (`GET /v1/rooms/{id}/messages`) through `ChatEngine::history` in one room of
//! 1,000,000 messages: the newest 50, and the 50 before a seq in the middle (`before=500000`),
//! on MemoryStore, SQLite and PostgreSQL (with `CHAT_TEST_POSTGRES_URL`), in one criterion group.
//!
//! Seeding shortcut: a million appends through the store port, one at a time as a room gets them,
//! take far too long on SQLite and PostgreSQL. There the store is opened first (its migrations
//! make the schema), the user and the room are created through the port, and the messages are
//! then written with raw sqlx into the store's own `messages` table: multi-row INSERTs (SQLite:
//! rows of bound values; PostgreSQL: UNNEST over bound arrays) in transactions of 100,000 rows.
//! The rows are those appends would have written: seq and rev 1..=N (a room's rev moves with
//! every append, and nothing here is edited), text messages without mentions, client ids,
//! threads or attachments, an ordinary line of text each, `created_at` a millisecond apart. The
//! room is left as the appends would leave it (`last_seq` = `rev` = N, `last_message_at` the
//! newest message's) and the sender, the room's one member and the reader here, has read and
//! delivered watermarks at N. The search index is NOT written (SQLite's `message_words`/FTS5
//! rows, PostgreSQL's `messages.search` tsvector stay empty): history reads neither, and leaving
//! it out saves most of the seeding time; a PostgreSQL row is a little narrower than a real one
//! for it. After seeding SQLite's WAL is checkpointed and PostgreSQL's tables are vacuumed and
//! analyzed, as a long-lived database would have been by then. MemoryStore is seeded through the
//! port (it is fast), with the same rows. Every run seeds fresh temporary databases; seeding
//! times go to stderr.
//!
//! `cargo bench -p chat-benches --bench history`

// The seeding helpers of the other read benchmarks; the port-driven `seed` is not used here.
#[allow(dead_code)]
mod seed;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::domain::{
    from_micros, micros, MessageBody, MessageId, MessageKind, NewMessage, PageSize, RoomId, UserId,
};
use chat_core::engine::HistoryQuery;
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::ChatEngine;
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

use seed::{engine, rooms, runtime, user};

/// Messages in the room.
const MESSAGES: i64 = 1_000_000;
/// The `before=` anchor of the second page: the middle of the room.
const MIDDLE: i64 = MESSAGES / 2;
/// Rows per INSERT statement on SQLite: 5 bound values a row, under SQLite's 32,766.
const SQLITE_ROWS_PER_STATEMENT: usize = 4_000;
/// Rows per INSERT statement on PostgreSQL (bound as arrays, so no parameter limit applies).
const PG_ROWS_PER_STATEMENT: usize = 50_000;
/// Rows per seeding transaction.
const ROWS_PER_TRANSACTION: usize = 100_000;

fn body(seq: i64) -> String {
    format!("history message {seq}: an ordinary line of chat text")
}

/// The rows to seed, seq 1..=N, the newest created a minute ago.
struct Rows {
    base_micros: i64,
}

impl Rows {
    fn new() -> Rows {
        let now = micros(OffsetDateTime::now_utc()) - 60_000_000;
        Rows {
            base_micros: now - MESSAGES * 1_000,
        }
    }

    fn created_at(&self, seq: i64) -> i64 {
        self.base_micros + seq * 1_000
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        let path = std::env::temp_dir().join(format!("chat-bench-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A backend ready to read: its engine, the reader and the room.
struct Seeded {
    name: &'static str,
    engine: ChatEngine,
    reader: UserId,
    room: RoomId,
    /// Keeps a SQLite file's directory until the backend is done with.
    _dir: Option<ScratchDir>,
}

async fn user_and_room(store: &dyn Store) -> (UserId, RoomId) {
    let reader = user(store, "reader").await;
    let room = rooms(store, 1, &[reader]).await[0];
    (reader, room)
}

async fn seed_memory(rows: &Rows) -> Seeded {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (reader, room) = user_and_room(store.as_ref()).await;
    let started = Instant::now();
    for seq in 1..=MESSAGES {
        let appended = store
            .append_message(&NewMessage {
                id: MessageId(Uuid::new_v4()),
                room_id: room,
                sender_id: reader,
                kind: MessageKind::Text,
                body: Some(MessageBody::parse(&body(seq), 4000).unwrap()),
                attachment: None,
                client_id: None,
                reply_to: None,
                thread_id: None,
                mentions: Vec::new(),
                created_at: from_micros(rows.created_at(seq)),
            })
            .await
            .unwrap();
        debug_assert_eq!(appended.message.seq.0, seq);
    }
    eprintln!(
        "memory: seeded {MESSAGES} messages through the port in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Seeded {
        name: "memory",
        engine: engine(store).await,
        reader,
        room,
        _dir: None,
    }
}

/// The room and the sender's watermarks as N appends would have left them.
const SQLITE_ROOM: &str =
    "UPDATE rooms SET last_seq = ?, rev = ?, last_message_at = ? WHERE id = ?";
const SQLITE_WATERMARKS: &str =
    "UPDATE memberships SET read_seq = ?, delivered_seq = ? WHERE room_id = ? AND user_id = ?";

async fn seed_sqlite(rows: &Rows) -> Seeded {
    let dir = ScratchDir::new();
    let path = dir.0.join("chat.db");
    let options = SqliteOptions::default();
    let store = SqliteStore::open(&path, options.clone()).await.unwrap();
    let (reader, room) = user_and_room(&store).await;
    let pool: SqlitePool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .foreign_keys(true)
                .busy_timeout(options.busy_timeout)
                .synchronous(options.synchronous.into()),
        )
        .await
        .unwrap();

    let started = Instant::now();
    // The room and the sender are the same in every row: literals (hex digits only), so a
    // statement binds its rows' own values only.
    let room_hex = room.0.simple().to_string();
    let sender_hex = reader.0.simple().to_string();
    let mut seq: i64 = 1;
    while seq <= MESSAGES {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        let tx_end = (seq + ROWS_PER_TRANSACTION as i64 - 1).min(MESSAGES);
        while seq <= tx_end {
            let end = (seq + SQLITE_ROWS_PER_STATEMENT as i64 - 1).min(tx_end);
            let mut sql = String::from(
                "INSERT INTO messages (room_id, seq, id, sender_id, kind, body, mentions, \
                 created_at, rev) VALUES ",
            );
            for s in seq..=end {
                if s > seq {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(X'{room_hex}', ?, ?, X'{sender_hex}', 'text', ?, '', ?, ?)"
                ));
            }
            let mut insert = sqlx::query(&sql);
            for s in seq..=end {
                insert = insert
                    .bind(s)
                    .bind(Uuid::new_v4())
                    .bind(body(s))
                    .bind(rows.created_at(s))
                    .bind(s);
            }
            insert.execute(&mut *tx).await.unwrap();
            seq = end + 1;
        }
        tx.commit().await.unwrap();
    }
    sqlx::query(SQLITE_ROOM)
        .bind(MESSAGES)
        .bind(MESSAGES)
        .bind(rows.created_at(MESSAGES))
        .bind(room.0)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(SQLITE_WATERMARKS)
        .bind(MESSAGES)
        .bind(MESSAGES)
        .bind(room.0)
        .bind(reader.0)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    eprintln!(
        "sqlite: seeded {MESSAGES} messages with raw INSERTs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Seeded {
        name: "sqlite",
        engine: engine(Arc::new(store)).await,
        reader,
        room,
        _dir: Some(dir),
    }
}

const PG_INSERT: &str = "INSERT INTO messages (room_id, seq, id, sender_id, kind, body, \
     created_at, rev) \
     SELECT $1, r.seq, r.id, $2, 'text', r.body, r.created_at, r.seq \
     FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], $6::timestamptz[]) \
     AS r (seq, id, body, created_at)";
const PG_ROOM: &str =
    "UPDATE rooms SET last_seq = $1, rev = $1, last_message_at = $2 WHERE id = $3";
const PG_WATERMARKS: &str =
    "UPDATE memberships SET read_seq = $1, delivered_seq = $1 WHERE room_id = $2 AND user_id = $3";

async fn seed_postgres(url: &str, rows: &Rows) -> Seeded {
    let store = PgStore::open_temporary(url, PgOptions::default())
        .await
        .unwrap();
    let (reader, room) = user_and_room(&store).await;
    let pool: &PgPool = store.pool();

    let started = Instant::now();
    let mut seq: i64 = 1;
    while seq <= MESSAGES {
        let mut tx = pool.begin().await.unwrap();
        let tx_end = (seq + ROWS_PER_TRANSACTION as i64 - 1).min(MESSAGES);
        while seq <= tx_end {
            let end = (seq + PG_ROWS_PER_STATEMENT as i64 - 1).min(tx_end);
            let seqs: Vec<i64> = (seq..=end).collect();
            let ids: Vec<Uuid> = seqs.iter().map(|_| Uuid::new_v4()).collect();
            let bodies: Vec<String> = seqs.iter().map(|&s| body(s)).collect();
            let times: Vec<OffsetDateTime> = seqs
                .iter()
                .map(|&s| from_micros(rows.created_at(s)))
                .collect();
            sqlx::query(PG_INSERT)
                .bind(room.0)
                .bind(reader.0)
                .bind(seqs)
                .bind(ids)
                .bind(bodies)
                .bind(times)
                .execute(&mut *tx)
                .await
                .unwrap();
            seq = end + 1;
        }
        tx.commit().await.unwrap();
    }
    sqlx::query(PG_ROOM)
        .bind(MESSAGES)
        .bind(from_micros(rows.created_at(MESSAGES)))
        .bind(room.0)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(PG_WATERMARKS)
        .bind(MESSAGES)
        .bind(room.0)
        .bind(reader.0)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE messages, rooms, memberships")
        .execute(pool)
        .await
        .unwrap();
    eprintln!(
        "postgres: seeded {MESSAGES} messages with raw INSERTs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Seeded {
        name: "postgres",
        engine: engine(Arc::new(store)).await,
        reader,
        room,
        _dir: None,
    }
}

/// Reads both pages once and checks they are the ones the benchmark means.
async fn check(s: &Seeded) {
    let newest = s
        .engine
        .history(s.reader, s.room, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(newest.messages.len(), 50, "{}", s.name);
    assert!(newest.has_more);
    let last = newest.messages.last().unwrap();
    assert_eq!(last.seq.0, MESSAGES, "{}", s.name);
    assert_eq!(last.body.as_deref(), Some(body(MESSAGES).as_str()));
    let middle = s
        .engine
        .history(s.reader, s.room, before_middle())
        .await
        .unwrap();
    assert_eq!(middle.messages.len(), 50, "{}", s.name);
    assert_eq!(middle.messages.first().unwrap().seq.0, MIDDLE - 50);
    assert_eq!(middle.messages.last().unwrap().seq.0, MIDDLE - 1);
}

fn before_middle() -> HistoryQuery {
    HistoryQuery {
        before: Some(MIDDLE),
        limit: PageSize::new(50),
        ..HistoryQuery::default()
    }
}

fn history(c: &mut Criterion) {
    let runtime = runtime();
    let postgres = std::env::var("CHAT_TEST_POSTGRES_URL").ok();
    if postgres.is_none() {
        eprintln!("postgres skipped: CHAT_TEST_POSTGRES_URL is not set");
    }
    let rows = Rows::new();
    let mut group = c.benchmark_group("history");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let backends: [Option<&'static str>; 3] = [
        Some("memory"),
        Some("sqlite"),
        postgres.is_some().then_some("postgres"),
    ];
    // One backend at a time, so a million messages are held by one store at once.
    for name in backends.into_iter().flatten() {
        let seeded = runtime.block_on(async {
            let seeded = match name {
                "memory" => seed_memory(&rows).await,
                "sqlite" => seed_sqlite(&rows).await,
                _ => seed_postgres(postgres.as_deref().unwrap(), &rows).await,
            };
            check(&seeded).await;
            seeded
        });
        let newest = HistoryQuery {
            limit: PageSize::new(50),
            ..HistoryQuery::default()
        };
        for (label, query) in [
            ("newest 50".to_owned(), newest),
            (format!("50 before {MIDDLE}"), before_middle()),
        ] {
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.to_async(&runtime).iter(|| async {
                    seeded
                        .engine
                        .history(seeded.reader, seeded.room, query)
                        .await
                        .unwrap()
                })
            });
        }
        drop(seeded);
    }
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
