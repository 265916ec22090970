//! The store conformance suite of chat-core, run against PostgreSQL: each test on a database of
//! its own, dropped when the test is done. Skipped when `CHAT_TEST_POSTGRES_URL` is not set.

use std::sync::Arc;

use chat_core::ports::Store;
use chat_store_postgres::{PgOptions, PgStore};

/// A fresh store on a temporary database of the server at `CHAT_TEST_POSTGRES_URL`.
async fn make_store() -> Option<Arc<dyn Store>> {
    let Ok(url) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return None;
    };
    let store = PgStore::open_temporary(&url, PgOptions::default())
        .await
        .expect("temporary database");
    Some(Arc::new(store))
}

async fn make_recording_store(channels: Vec<String>) -> Option<Arc<dyn Store>> {
    let url = std::env::var("CHAT_TEST_POSTGRES_URL").ok()?;
    let options = PgOptions {
        event_channels: channels,
        ..PgOptions::default()
    };
    let store = PgStore::open_temporary(&url, options)
        .await
        .expect("temporary database");
    Some(Arc::new(store))
}

chat_core::store_conformance_tests!();
