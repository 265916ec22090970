//! The store itself: its connection pool, how it is opened, and temporary databases.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chat_core::batch::Batcher;
use chat_core::domain::{Appended, NewMessage, RoomId};
use chat_core::ports::NodeId;
use chat_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::error::db;
use crate::messages;
use crate::options::PgOptions;
use crate::outbox::Channels;

/// A [`chat_core::ports::Store`] on a PostgreSQL database, shareable by many server nodes.
///
/// Clones share one connection pool. Every operation is one transaction (or one statement);
/// what must be serialized across nodes, such as the seq of a room's next message, is
/// serialized by row locks in the database, never by anything held in this process. New
/// messages queue per shard of rooms and are committed together, as many as waited (group
/// commit: one WAL flush for the lot); the store runs that batching on the tokio runtime it was
/// opened on.
#[derive(Clone, Debug)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Queues new messages for group commit: one batcher per shard of rooms, so appends to
    /// different rooms commit in parallel while each room's keep their order.
    appenders: Arc<[Appender]>,
    options: PgOptions,
    pub(crate) channels: Arc<Channels>,
    /// The database of a temporary store, dropped with the last clone. Declared after `pool`, so
    /// that the store's own handle on the pool is released first.
    temporary: Option<Arc<TemporaryDatabase>>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// brings its schema up to date.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let connect = PgConnectOptions::from_str(url).map_err(StoreError::backend)?;
        Self::connect_with(connect, options).await
    }

    /// A store on a new database created on the server of `admin_url` (whose user may create
    /// databases) and dropped, with whatever sessions are still connected to it, when the store
    /// and every clone of it are dropped: for tests, demos and embedders' own test suites.
    /// Dropping the last clone blocks the dropping thread until the server has dropped it.
    pub async fn open_temporary(
        admin_url: &str,
        options: PgOptions,
    ) -> Result<PgStore, StoreError> {
        let admin = PgConnectOptions::from_str(admin_url).map_err(StoreError::backend)?;
        // From here on, returning early drops `database`, which drops the database again.
        let database = TemporaryDatabase::create(admin).await?;
        let connect = database.admin.clone().database(&database.name);
        let mut store = Self::connect_with(connect, options).await?;
        store.temporary = Some(Arc::new(database));
        Ok(store)
    }

    /// The connection pool, for components that share it (such as a LISTEN/NOTIFY notifier).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Opens the pool with `connect` and runs the migrations. sqlx's migrator holds an advisory
    /// lock while it runs, so nodes starting together do not apply a migration twice.
    pub(crate) async fn connect_with(
        connect: PgConnectOptions,
        options: PgOptions,
    ) -> Result<PgStore, StoreError> {
        let connect = match options.statement_timeout {
            // Set at connection start-up, so it holds for every statement of every connection.
            Some(timeout) => connect.options([("statement_timeout", timeout.as_millis())]),
            None => connect,
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(db)?;
        sqlx::migrate!()
            .run(&pool)
            .await
            .map_err(StoreError::backend)?;
        let channels = Arc::new(Channels::new(options.event_channels.clone()));
        let appenders = appenders(&pool, None, &options, &channels);
        Ok(PgStore {
            pool,
            appenders,
            options,
            channels,
            temporary: None,
        })
    }

    /// Makes every append NOTIFY its hint, as `node`, inside its own transaction (see
    /// [`crate::connect_node`]).
    pub(crate) fn hint_appends_as(&mut self, node: NodeId) {
        self.appenders = appenders(&self.pool, Some(node), &self.options, &self.channels);
    }

    /// The batcher that appends to `room`.
    pub(crate) fn appender(&self, room: RoomId) -> &Appender {
        let shard = room.0.as_u128() % self.appenders.len() as u128;
        &self.appenders[shard as usize]
    }
}

pub(crate) type Appender = Batcher<NewMessage, Result<Appended, StoreError>>;

fn appenders(
    pool: &PgPool,
    hints_as: Option<NodeId>,
    options: &PgOptions,
    channels: &Arc<Channels>,
) -> Arc<[Appender]> {
    (0..options.append_shards.max(1))
        .map(|_| {
            let pool = pool.clone();
            let channels = channels.clone();
            Batcher::spawn(options.max_append_batch, move |batch| {
                messages::append_batch(pool.clone(), hints_as, channels.clone(), batch)
            })
        })
        .collect()
}

/// A database created for one temporary store, dropped when the last clone of it goes.
struct TemporaryDatabase {
    /// How to reach the server as the user who created it.
    admin: PgConnectOptions,
    name: String,
}

impl TemporaryDatabase {
    async fn create(admin: PgConnectOptions) -> Result<TemporaryDatabase, StoreError> {
        let name = format!("chat_tmp_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin).await.map_err(db)?;
        // A database name cannot be a bound parameter; this one is a prefix and hex digits.
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        let database = TemporaryDatabase { admin, name };
        conn.close().await.map_err(db)?;
        Ok(database)
    }

    async fn drop_database(&self) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        // FORCE ends the sessions still connected: the pool's connections, which dropping a
        // pool does not close gracefully, and those of a pool someone else kept a clone of.
        let drop = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        sqlx::query(&drop).execute(&mut conn).await?;
        conn.close().await
    }
}

impl Drop for TemporaryDatabase {
    fn drop(&mut self) {
        // `Drop` cannot await, and it usually runs on a tokio worker thread, where blocking on a
        // future panics ("cannot start a runtime from within a runtime") or, on a current-thread
        // runtime, would starve the very connection it waits for. A fresh OS thread with a
        // current-thread runtime of its own may block; joining it means the database is gone
        // when the store is, so a test suite leaves nothing behind even if the process exits
        // right after.
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(self.drop_database())
                        .map_err(|e| e.to_string())
                })
                .join()
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(database = %self.name, %error, "temporary database not dropped");
            }
            Err(_) => {
                tracing::warn!(database = %self.name, "dropping the temporary database panicked");
            }
        }
    }
}

impl fmt::Debug for TemporaryDatabase {
    // The connect options hold the admin password; the name is all that identifies it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chat_core::ports::Store;

    use super::*;
    use crate::test_support::admin_url;

    async fn database_exists(admin_url: &str, name: &str) -> bool {
        let mut conn = PgConnection::connect(admin_url).await.unwrap();
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        exists
    }

    async fn current_database(store: &PgStore) -> String {
        let (name,): (String,) = sqlx::query_as("SELECT current_database()")
            .fetch_one(store.pool())
            .await
            .unwrap();
        name
    }

    #[tokio::test]
    async fn a_temporary_database_is_dropped_with_the_last_clone() {
        let Some(url) = admin_url() else { return };
        let store = PgStore::open_temporary(&url, PgOptions::default())
            .await
            .unwrap();
        let name = current_database(&store).await;
        assert!(name.starts_with("chat_tmp_"), "{name}");
        // A pool kept by someone else does not keep the database alive.
        let kept_pool = store.pool().clone();
        let clone = store.clone();
        drop(store);
        clone.ping().await.unwrap();
        assert!(database_exists(&url, &name).await);
        drop(clone);
        assert!(!database_exists(&url, &name).await);
        drop(kept_pool);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_temporary_database_is_dropped_from_a_current_thread_runtime() {
        let Some(url) = admin_url() else { return };
        let store = PgStore::open_temporary(&url, PgOptions::default())
            .await
            .unwrap();
        let name = current_database(&store).await;
        drop(store);
        assert!(!database_exists(&url, &name).await);
    }

    #[tokio::test]
    async fn the_statement_timeout_holds_for_every_connection() {
        let Some(url) = admin_url() else { return };
        let options = PgOptions {
            statement_timeout: Some(Duration::from_millis(1500)),
            ..PgOptions::default()
        };
        let store = PgStore::open_temporary(&url, options).await.unwrap();
        let (timeout,): (String,) = sqlx::query_as("SHOW statement_timeout")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(timeout, "1500ms");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        // Port 1 on the loopback interface refuses connections; no server is needed.
        let options = PgOptions {
            acquire_timeout: Duration::from_millis(500),
            ..PgOptions::default()
        };
        let result = PgStore::connect("postgres://postgres@127.0.0.1:1/chat", options).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }
}
