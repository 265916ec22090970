//! chat-store-sqlite: the [`chat_core::ports::Store`] on one SQLite file, the embedded default.
//!
//! ```
//! use chat_core::ports::Store;
//! use chat_store_sqlite::{SqliteOptions, SqliteStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(&dir.path().join("chat.db"), SqliteOptions::default()).await?;
//! store.ping().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The file is opened in WAL mode with foreign keys on; the schema in `migrations/` is applied
//! on open. All writes share one connection, so SQLite never arbitrates between writers of this
//! process; reads use a pool of read-only connections.

mod accounts;
mod appends;
mod error;
mod messages;
mod moderation;
mod options;
mod outbox;
mod presence;
mod query;
mod reactions;
mod receipts;
mod rooms;
mod schema;
mod search;
mod sessions;
mod store;
#[cfg(test)]
mod test_support;
mod tickets;
mod uploads;
mod users;

use async_trait::async_trait;
use chat_core::ports::Store;
use chat_core::StoreError;

pub use options::{SqliteOptions, Synchronous};
pub use store::SqliteStore;

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(name = "db.ping", skip_all, err)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(error::db)?;
        Ok(())
    }
}
