//! Benchmarks of the chat engine; see `benches/` (criterion). The load generator arrives with
//! the performance work (issue 7).
