//! Building blocks of the `chat-load` load generator, shared by its scenarios:
//!
//! - [`client`] talks to the server (HTTP API and WebSocket), [`users`] signs users in (tokens
//!   minted as the host application, or registration), [`limits`] checks the open-file limits
//!   that bound how many sockets a run may open, [`rng`] picks at random;
//! - [`setup`] creates a messaging run's users, rooms and sockets, [`post`] decides who posts
//!   each message where and how, [`run`] is the setup / send / receive cycle of the messaging
//!   scenarios (`multinode`, `fanout`, `chat`), [`stats`] tallies what was sent and received
//!   and turns it into a report;
//! - [`files`] is the upload and download scenario, [`logins`] the sign-in one, [`idle`] the
//!   idle sockets one, [`history`] the paged reads one.

pub mod client;
pub mod files;
pub mod history;
pub mod idle;
pub mod limits;
pub mod logins;
pub mod post;
pub mod rng;
pub mod run;
pub mod setup;
pub mod stats;
pub mod users;
