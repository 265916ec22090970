//! Benchmarks of the chat engine: criterion benches in `benches/`, and the `chat-load` load
//! generator (`src/bin/chat-load.rs`) that drives running `chat-server` processes over HTTP
//! and WebSocket, built from the modules in [`load`].

pub mod load;
