//! The conformance suite against `MemoryStore`.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::ports::Store;

async fn make_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

async fn make_recording_store(channels: Vec<String>) -> Arc<dyn Store> {
    Arc::new(MemoryStore::with_event_channels(channels))
}

chat_core::store_conformance_tests!();
