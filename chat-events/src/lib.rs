//! chat-events: where chat-core's domain events go once recorded in the outbox (API.md,
//! "Domain events"). Two [`EventSink`](chat_core::ports::EventSink)s, each only delivering:
//! the engine's relay decides when, retries with backoff and dead-letters.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use chat_core::ports::EventSink;
//! use chat_events::{AmqpOptions, AmqpSink, WebhookOptions, WebhookSink};
//!
//! # fn main() -> Result<(), chat_events::Error> {
//! // Published to the durable topic exchange `chat.events` with the event type as routing
//! // key; bind a queue with `message.*` to get every message event.
//! let amqp = AmqpSink::new(AmqpOptions::new("amqp://guest:guest@127.0.0.1:5672/%2f"))?;
//! // POSTed, signed with the secret (receivers check it with `verify_signature`).
//! let webhook = WebhookSink::new(WebhookOptions {
//!     timeout: Duration::from_secs(5),
//!     ..WebhookOptions::new("http://127.0.0.1:3000/chat-events", "a secret of at least 32 bytes!!!")
//! })?;
//! let sinks: Vec<Arc<dyn EventSink>> = vec![Arc::new(amqp), Arc::new(webhook)];
//! # let _ = sinks;
//! # Ok(())
//! # }
//! ```
//!
//! - [`AmqpSink`] (channel `amqp`): persistent `application/json` messages whose
//!   `message_id` is the event id, counted delivered once the broker confirmed them
//!   (publisher confirms). It connects on first use and anew after any failure, so it outlives
//!   broker restarts; its events are never given up.
//! - [`WebhookSink`] (channel `webhook:<url>`, one per URL): a `POST` of each envelope, as
//!   recorded, with `X-Chat-Event-Id` and `X-Chat-Signature: t=<unix seconds>,v1=<hex
//!   HMAC-SHA256 of "<t>.<body>">`; a 2xx delivers, anything else or the timeout fails, and an
//!   event is given up after [`WebhookOptions::give_up_after`] failed attempts (8 by default).
//!   [`verify_signature`] is the receiving side's check.
//!
//! Delivery is at least once: consumers dedupe by the event id. `https://` webhooks and
//! `amqps://` brokers need the `tls` feature (rustls with aws-lc-rs).

mod amqp;
mod error;
mod signature;
mod webhook;

pub use amqp::{AmqpOptions, AmqpSink};
pub use error::Error;
pub use signature::{verify_signature, EVENT_ID_HEADER, SIGNATURE_HEADER};
pub use webhook::{WebhookOptions, WebhookSink, MIN_SECRET_BYTES};
