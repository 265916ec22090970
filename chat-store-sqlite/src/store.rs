//! The store itself: its two connection pools and how they are opened.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chat_core::batch::Batcher;
use chat_core::domain::{Appended, NewMessage};
use chat_core::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Sqlite, Transaction};

use crate::appends;
use crate::error::db;
use crate::options::SqliteOptions;
use crate::outbox::Channels;
use crate::search;

/// A [`chat_core::ports::Store`] on one SQLite file.
///
/// Writes go through a pool of exactly one connection, so SQLite never sees two writers on this
/// file and a transaction never fails to upgrade its lock; reads run in parallel on read-only
/// connections, which WAL mode lets proceed while a write is in progress. New messages queue
/// for that connection and are committed together, as many as waited (group commit: one fsync
/// for the lot), so concurrent senders share the cost of durability instead of queueing for it.
/// The store runs that batching on the tokio runtime it was opened on.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    pub(crate) appender: Batcher<NewMessage, Result<Appended, StoreError>>,
    pub(crate) channels: Arc<Channels>,
    /// The directory of a temporary store, removed when the last clone is dropped.
    temporary: Option<Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating it, and its directory, when missing) the database file at `path` and
    /// brings its schema up to date.
    pub async fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        Self::with_connect_options(SqliteConnectOptions::new().filename(path), options).await
    }

    /// A store on a new file in a temporary directory that is removed when the store (and every
    /// clone of it) is dropped: for tests, demos and embedders' own test suites.
    pub async fn open_temporary(options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut store = Self::open(&dir.path().join("chat.db"), options).await?;
        store.temporary = Some(Arc::new(dir));
        Ok(store)
    }

    /// Like [`SqliteStore::open`], from a `sqlite:` URL such as `sqlite://./data/chat.db` or
    /// `sqlite:/var/lib/chat/chat.db`.
    pub async fn connect(url: &str, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::from_str(url).map_err(StoreError::backend)?;
        Self::with_connect_options(connect, options).await
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn with_connect_options(
        connect: SqliteConnectOptions,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = connect.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                // Runs once at start-up, before any connection exists: blocking here is harmless.
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            }
        }
        let connect = connect
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            .synchronous(options.synchronous.into());

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // The one connection stays open for the store's lifetime, so a write after an idle
            // spell does not pay for reopening the file and re-running its pragmas.
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                connect
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(db)?;
        sqlx::migrate!()
            .run(&writer)
            .await
            .map_err(StoreError::backend)?;

        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(db)?;
        let channels = Arc::new(Channels::new(options.event_channels));
        let appender = Batcher::spawn(options.max_append_batch, {
            let writer = writer.clone();
            let channels = channels.clone();
            move |batch| appends::append_batch(writer.clone(), channels.clone(), batch)
        });
        let store = SqliteStore {
            writer,
            reader,
            appender,
            channels,
            temporary: None,
        };
        // Part of bringing the schema up to date: the search index of a database from before it.
        search::backfill(&store).await?;
        Ok(store)
    }

    /// Starts a write transaction that holds the write lock from its first statement, so a
    /// transaction that reads before it writes never has to upgrade its lock.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    /// Starts a read transaction: the queries in it see one snapshot of the database.
    pub(crate) async fn read(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.reader.begin().await.map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use chat_core::ports::{Store, UserStore};

    use super::*;
    use crate::options::Synchronous;
    use crate::test_support::{scratch, user};

    async fn pragma(pool: &SqlitePool, name: &str) -> String {
        let (value,): (String,) =
            sqlx::query_as(&format!("SELECT CAST({name} AS TEXT) FROM pragma_{name}"))
                .fetch_one(pool)
                .await
                .unwrap();
        value
    }

    #[tokio::test]
    async fn a_url_opens_a_new_file_in_a_new_directory_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}/nested/chat.db", dir.path().display());
        let options = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::connect(&url, options).await.unwrap();
        store.ping().await.unwrap();
        assert!(dir.path().join("nested/chat.db").exists());
        assert_eq!(pragma(&store.writer, "journal_mode").await, "wal");
        assert_eq!(pragma(&store.reader, "foreign_keys").await, "1");
        // 1 is NORMAL.
        assert_eq!(pragma(&store.writer, "synchronous").await, "1");
    }

    #[tokio::test]
    async fn reopening_keeps_the_data() {
        let (dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        store.close().await;
        let store = SqliteStore::open(&dir.path().join("chat.db"), SqliteOptions::default())
            .await
            .unwrap();
        assert!(store.user(alice).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn the_reader_pool_cannot_write() {
        let (_dir, store) = scratch().await;
        let write = sqlx::query("DELETE FROM users")
            .execute(&store.reader)
            .await;
        assert!(write.is_err());
    }
}
