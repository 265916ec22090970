//! The store conformance suite of chat-core, run against SQLite files.

use std::sync::Arc;

use chat_core::ports::Store;
use chat_store_sqlite::{SqliteOptions, SqliteStore};

/// A fresh store on its own temporary file, removed when the test drops it.
async fn make_store() -> Arc<dyn Store> {
    let store = SqliteStore::open_temporary(SqliteOptions::default())
        .await
        .expect("open store");
    Arc::new(store)
}

async fn make_recording_store(channels: Vec<String>) -> Arc<dyn Store> {
    let options = SqliteOptions {
        event_channels: channels,
        ..SqliteOptions::default()
    };
    Arc::new(
        SqliteStore::open_temporary(options)
            .await
            .expect("open store"),
    )
}

chat_core::store_conformance_tests!();
