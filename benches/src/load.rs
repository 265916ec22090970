//! Building blocks of the `chat-load` load generator, shared by its scenarios: [`client`] talks
//! to the server (HTTP API and WebSocket), [`stats`] tallies what was sent and received and
//! turns it into a report, and [`run`] is the setup / send / receive cycle every scenario uses.

pub mod client;
pub mod run;
pub mod stats;
