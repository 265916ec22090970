//! Building blocks of the `chat-load` load generator, shared by its scenarios: [`client`] talks
//! to the server (HTTP API and WebSocket), [`stats`] tallies what was sent and received and
//! turns it into a report, [`run`] is the setup / send / receive cycle of the messaging
//! scenarios, [`files`] the upload and download scenario, and [`logins`] the sign-in one.

pub mod client;
pub mod files;
pub mod logins;
pub mod run;
pub mod stats;
