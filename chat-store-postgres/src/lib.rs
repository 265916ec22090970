//! chat-store-postgres: the [`chat_core::ports::Store`] on PostgreSQL, shared by many server
//! nodes.
//!
//! ```
//! use chat_core::ports::Store;
//! use chat_store_postgres::{PgOptions, PgStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Any server whose user may create databases, e.g. postgres://postgres@127.0.0.1/postgres.
//! let Ok(url) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
//!     return Ok(());
//! };
//! // A database of its own, dropped with the store; `PgStore::connect` opens one that stays.
//! let store = PgStore::open_temporary(&url, PgOptions::default()).await?;
//! store.ping().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The schema in `migrations/` is applied on connect. Every port method is one transaction;
//! what several nodes must agree on (a room's next seq, a pair's one direct room) is decided by
//! row locks and unique keys in the database, so any number of nodes may share it.

mod accounts;
mod changes;
mod error;
mod messages;
mod moderation;
mod notifier;
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

pub use notifier::{connect_node, PgNotifier};
pub use options::PgOptions;
pub use store::PgStore;

#[async_trait]
impl Store for PgStore {
    #[tracing::instrument(name = "db.ping", skip_all, err)]
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::db)?;
        Ok(())
    }
}
