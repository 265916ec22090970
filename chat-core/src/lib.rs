//! chat-core: an embeddable chat engine.

pub mod clock;
pub mod domain;
pub mod error;
pub mod memory;
pub mod ports;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{ChatError, FieldErrors, StoreError};
