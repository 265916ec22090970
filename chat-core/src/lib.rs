//! chat-core: an embeddable chat engine.

pub mod auth;
pub mod clock;
pub mod domain;
pub mod engine;
pub mod error;
pub mod events;
pub mod hub;
pub mod memory;
pub mod notify;
pub mod ports;
#[cfg(feature = "testing")]
pub mod testing;

pub use engine::{ChatEngine, ChatEngineBuilder, Limits, Session};
pub use error::{ChatError, FieldErrors, StoreError};
