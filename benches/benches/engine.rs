//! Engine benchmarks: sending a message through the engine (validation, membership check,
//! append, fan-out) on MemoryStore, SQLite and PostgreSQL, at 1, 8 and 64 concurrent senders,
//! the backends compared in one group. Each sender is a task of its own that posts one message
//! after another into a room of its own, as the many conversations of a real server do (a closed
//! loop: while one commit runs, the other senders' next messages queue for the next, which is
//! what group commit batches); an iteration is one message from each sender. PostgreSQL runs
//! when `CHAT_TEST_POSTGRES_URL` is set.
//! The engine runs without its per-user send rate limit: one user sends every message here, and
//! the default limit would turn all but the first hundred sends into rejections.
//!
//! The same group holds the storage limit beside them: `sqlite_raw_batch` and
//! `postgres_raw_batch` write, per iteration, the rows that `n` appends write (one message into
//! each of `n` rooms) with raw sqlx in ONE transaction, so one commit (one fsync) for all `n`.
//! The database is the store's own: the store is opened on it first, so its migrations made the
//! schema, and the rooms, user and memberships were created through the engine. Per message it
//! runs the statements one message's append needs, without the engine (the SQLite store itself
//! writes a batch with multi-row statements instead, so its engine rows may beat this row): bump the room's `last_seq`/`rev`/
//! `last_message_at` (returning the new seq and rev), insert the `messages` row, index its words
//! (SQLite: the `message_words` row, whose trigger feeds FTS5; PostgreSQL: the `search` tsvector
//! of the row itself) and move the sender's read and delivered watermarks. SQLite uses a separate
//! one-connection pool on the same file with the store's pragmas (WAL, `synchronous` as in
//! `SqliteOptions::default()`, i.e. FULL, foreign keys on) and `BEGIN IMMEDIATE`, as the store's
//! writer does; PostgreSQL uses the pool of a store on a temporary database of its own, dropped
//! at the end. Left out, being no cost of storage: the `client_id` lookup (no message here has
//! one), mentions (none), attachments (none), reading anything back, the engine's checks, events
//! and hints. An engine row divided by the raw row of the same backend and `n` is what the
//! engine costs over the storage it cannot avoid.
//!
//! `sqlite_outbox` and `postgres_outbox` are the stores recording domain events for one channel
//! (every message's outbox row, in its append's transaction; nothing relays them here): beside
//! `sqlite` and `postgres`, what the outbox adds to a send.
//!
//! `cargo bench -p chat-benches --bench engine`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::domain::search::index_text;
use chat_core::domain::{from_micros, micros, RoomId, UserId};
use chat_core::engine::{CreateRoom, Register, SendMessage};
use chat_core::memory::MemoryStore;
use chat_core::ports::Store;
use chat_core::{ChatEngine, Limits};
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

const SENDERS: [usize; 3] = [1, 8, 64];

/// The one outbox channel of the `*_outbox` backends: what recording domain events adds to a
/// send (the rows are written, nothing relays them).
const OUTBOX_CHANNEL: &str = "bench";

const BODY: &str = "a benchmark message of ordinary length";

struct Setup {
    engine: ChatEngine,
    user: UserId,
    rooms: Vec<RoomId>,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let limits = Limits {
        send_rate: None,
        ..Limits::default()
    };
    let engine = ChatEngine::builder(store)
        .limits(limits)
        .build()
        .await
        .unwrap();
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

async fn backends(postgres: Option<&str>) -> Vec<(&'static str, Arc<dyn Store>)> {
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
        (
            "sqlite_outbox",
            Arc::new(
                SqliteStore::open_temporary(SqliteOptions {
                    event_channels: vec![OUTBOX_CHANNEL.into()],
                    ..SqliteOptions::default()
                })
                .await
                .unwrap(),
            ),
        ),
    ];
    if let Some(url) = postgres {
        for (name, channels) in [
            ("postgres", Vec::new()),
            ("postgres_outbox", vec![OUTBOX_CHANNEL.to_owned()]),
        ] {
            let options = PgOptions {
                max_connections: 70,
                event_channels: channels,
                ..PgOptions::default()
            };
            let store = PgStore::open_temporary(url, options).await.unwrap();
            backends.push((name, Arc::new(store)));
        }
    }
    backends
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

/// A database with the store's schema, written with raw statements.
enum RawDb {
    Sqlite {
        pool: SqlitePool,
        store: SqliteStore,
        _dir: ScratchDir,
    },
    Postgres {
        pool: PgPool,
        store: PgStore,
    },
}

/// The raw baseline: the database, and the user and rooms the engine created in it.
struct Raw {
    db: RawDb,
    setup: Setup,
}

/// A store on a SQLite file of its own (migrations run on open), and a second pool on the same
/// file opened as the store opens its writer.
async fn raw_sqlite() -> Raw {
    let dir = ScratchDir::new();
    let path = dir.0.join("chat.db");
    let options = SqliteOptions::default();
    let store = SqliteStore::open(&path, options.clone()).await.unwrap();
    let setup = setup(Arc::new(store.clone())).await;
    let connect = SqliteConnectOptions::new()
        .filename(&path)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout)
        .synchronous(options.synchronous.into())
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(connect)
        .await
        .unwrap();
    Raw {
        db: RawDb::Sqlite {
            pool,
            store,
            _dir: dir,
        },
        setup,
    }
}

/// A store on a temporary PostgreSQL database of its own (migrations run on open, the database
/// is dropped with the store), written to through its pool.
async fn raw_postgres(url: &str) -> Raw {
    let store = PgStore::open_temporary(url, PgOptions::default())
        .await
        .unwrap();
    let setup = setup(Arc::new(store.clone())).await;
    Raw {
        db: RawDb::Postgres {
            pool: store.pool().clone(),
            store,
        },
        setup,
    }
}

const SQLITE_BUMP: &str = "UPDATE rooms SET last_seq = last_seq + 1, rev = rev + 1, \
     last_message_at = ? WHERE id = ? RETURNING last_seq, rev";
const SQLITE_INSERT: &str = "INSERT INTO messages (room_id, seq, id, sender_id, kind, body, \
     client_id, reply_to, thread_id, mentions, created_at, rev, attachment_id) \
     VALUES (?, ?, ?, ?, 'text', ?, NULL, NULL, NULL, '', ?, ?, NULL)";
const SQLITE_WORDS: &str = "INSERT INTO message_words (room_id, seq, words) VALUES (?, ?, ?) \
     ON CONFLICT (room_id, seq) DO UPDATE SET words = excluded.words";
const SQLITE_WATERMARKS: &str = "UPDATE memberships SET read_seq = MAX(read_seq, ?), \
     delivered_seq = MAX(delivered_seq, ?) WHERE room_id = ? AND user_id = ?";

const PG_BUMP: &str = "UPDATE rooms SET last_seq = last_seq + 1, rev = rev + 1, \
     last_message_at = $1 WHERE id = $2 RETURNING last_seq, rev";
const PG_INSERT: &str = "INSERT INTO messages (room_id, seq, id, sender_id, kind, body, \
     client_id, reply_to, thread_id, mentions, created_at, rev, search, attachment_id) \
     VALUES ($1, $2, $3, $4, 'text', $5, NULL, NULL, NULL, '{}'::uuid[], $6, $7, \
     array_to_tsvector(string_to_array($8, ' ')), NULL)";
const PG_WATERMARKS: &str = "UPDATE memberships SET read_seq = GREATEST(read_seq, $1), \
     delivered_seq = GREATEST(delivered_seq, $1) WHERE room_id = $2 AND user_id = $3";

impl Raw {
    /// One message from `self.setup.user` into each of `rooms`, all in one transaction.
    async fn insert_batch(&self, rooms: &[RoomId]) {
        let user = self.setup.user;
        match &self.db {
            RawDb::Sqlite { pool, .. } => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                for room in rooms {
                    let now = micros(OffsetDateTime::now_utc());
                    let (seq, rev): (i64, i64) = sqlx::query_as(SQLITE_BUMP)
                        .bind(now)
                        .bind(room.0)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(SQLITE_INSERT)
                        .bind(room.0)
                        .bind(seq)
                        .bind(Uuid::new_v4())
                        .bind(user.0)
                        .bind(BODY)
                        .bind(now)
                        .bind(rev)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(SQLITE_WORDS)
                        .bind(room.0)
                        .bind(seq)
                        .bind(index_text(BODY))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(SQLITE_WATERMARKS)
                        .bind(seq)
                        .bind(seq)
                        .bind(room.0)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
            RawDb::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.unwrap();
                for room in rooms {
                    // Microseconds, the precision the store keeps.
                    let now = from_micros(micros(OffsetDateTime::now_utc()));
                    let (seq, rev): (i64, i64) = sqlx::query_as(PG_BUMP)
                        .bind(now)
                        .bind(room.0)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(PG_INSERT)
                        .bind(room.0)
                        .bind(seq)
                        .bind(Uuid::new_v4())
                        .bind(user.0)
                        .bind(BODY)
                        .bind(now)
                        .bind(rev)
                        .bind(index_text(BODY))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query(PG_WATERMARKS)
                        .bind(seq)
                        .bind(room.0)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
    }

    /// How many messages the rooms hold: what the iterations wrote, to check they all landed.
    async fn message_count(&self) -> i64 {
        let (n,): (i64,) = match &self.db {
            RawDb::Sqlite { pool, .. } => sqlx::query_as("SELECT COUNT(*) FROM messages")
                .fetch_one(pool)
                .await
                .unwrap(),
            RawDb::Postgres { pool, .. } => sqlx::query_as("SELECT COUNT(*) FROM messages")
                .fetch_one(pool)
                .await
                .unwrap(),
        };
        n
    }

    async fn close(self) {
        match self.db {
            RawDb::Sqlite { pool, store, _dir } => {
                pool.close().await;
                store.close().await;
            }
            // Dropping the last clone of the store drops its database.
            RawDb::Postgres { pool, store } => {
                drop(pool);
                drop(self.setup);
                drop(store);
            }
        }
    }
}

fn send(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let postgres = std::env::var("CHAT_TEST_POSTGRES_URL").ok();
    if postgres.is_none() {
        eprintln!("postgres skipped: CHAT_TEST_POSTGRES_URL is not set");
    }
    let mut group = c.benchmark_group("engine_send");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (name, store) in runtime.block_on(backends(postgres.as_deref())) {
        let s = runtime.block_on(setup(store));
        for senders in SENDERS {
            group.throughput(Throughput::Elements(senders as u64));
            group.bench_with_input(BenchmarkId::new(name, senders), &senders, |b, &n| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (engine, user) = (s.engine.clone(), s.user);
                    let rooms = s.rooms[..n].to_vec();
                    async move {
                        let start = Instant::now();
                        let senders: Vec<_> = rooms
                            .into_iter()
                            .map(|room| {
                                let engine = engine.clone();
                                tokio::spawn(async move {
                                    for _ in 0..iters {
                                        let message = SendMessage {
                                            body: Some(BODY.into()),
                                            ..SendMessage::default()
                                        };
                                        engine.send(user, room, message).await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for sender in senders {
                            sender.await.unwrap();
                        }
                        start.elapsed()
                    }
                })
            });
        }
    }

    let mut raws = vec![("sqlite_raw_batch", runtime.block_on(raw_sqlite()))];
    if let Some(url) = &postgres {
        raws.push(("postgres_raw_batch", runtime.block_on(raw_postgres(url))));
    }
    for (name, raw) in raws {
        runtime.block_on(raw.insert_batch(&raw.setup.rooms[..1]));
        assert_eq!(runtime.block_on(raw.message_count()), 1);
        for senders in SENDERS {
            group.throughput(Throughput::Elements(senders as u64));
            group.bench_with_input(BenchmarkId::new(name, senders), &senders, |b, &n| {
                b.to_async(&runtime)
                    .iter(|| raw.insert_batch(&raw.setup.rooms[..n]))
            });
        }
        runtime.block_on(raw.close());
    }
    group.finish();
}

criterion_group!(benches, send);
criterion_main!(benches);
