//! chat-core: an embeddable chat engine. Users, rooms, memberships, messages and live
//! sessions, with the rules of who may do what, behind narrow ports for storage, blob storage
//! and the bus between server nodes. No SQL, no HTTP: hosts plug in adapters.
//!
//! ```
//! use std::sync::Arc;
//! use chat_core::engine::{CreateRoom, Register, SendMessage};
//! use chat_core::{memory::MemoryStore, ChatEngine};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), chat_core::ChatError> {
//! let engine = ChatEngine::builder(Arc::new(MemoryStore::new())).build().await?;
//! let alice = engine
//!     .register(Register {
//!         username: "alice".into(),
//!         password: "correct horse battery".into(),
//!         email: None,
//!         display_name: None,
//!     })
//!     .await?;
//! let room = engine
//!     .create_room(alice.id, CreateRoom { name: "notes".into(), topic: None, visibility: None, members: None })
//!     .await?;
//! let mut live = engine.connect(alice.id).await?;
//! let sent = engine
//!     .send(alice.id, room.id, SendMessage { body: Some("hello".into()), ..Default::default() })
//!     .await?;
//! assert_eq!(sent.message.seq.0, 1);
//! // The session hears about its own message as every other member's would.
//! let frame = live.next_frame().await.expect("a live frame");
//! assert!(frame.contains("message.created"));
//! # Ok(())
//! # }
//! ```
//!
//! The map: [`domain`] (types that cannot hold invalid values), [`ports`] (what adapters
//! implement), [`engine`] (the rules), [`hub`] (fan-out to this node's sessions), [`auth`]
//! (passwords and tokens), [`memory`] and [`notify`] (in-process adapters), [`batch`] (group
//! commit for store adapters), and, with the
//! `testing` feature, `testing::store_conformance_tests!` for new store adapters.

pub mod auth;
pub mod batch;
pub mod blobs;
pub mod clock;
pub mod domain;
pub mod engine;
pub mod error;
pub mod events;
pub mod hub;
pub mod memory;
pub mod notify;
pub mod outbox;
pub mod ports;
pub mod rate;
#[cfg(feature = "testing")]
pub mod testing;

pub use engine::{ChatEngine, ChatEngineBuilder, Limits, Session};
pub use error::{ChatError, FieldErrors, StoreError};
