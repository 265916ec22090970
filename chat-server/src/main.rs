//! `chat-server`: serves the chat API, and runs an operator's commands (`chat-server --help`);
//! every setting is a flag or a `CHAT_*` variable.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    chat_server::cli::run().await
}
