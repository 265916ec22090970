//! chat-store-postgres: the PostgreSQL store and LISTEN/NOTIFY notifier for chat-core.
//!
//! Not built yet (issue 3): the crate holds the place in the workspace so the layout of
//! `DESIGN.md` is there from the start. Until it lands, `chat-server` serves on SQLite only.
