//! `chat-server`: serves the chat API; every setting is a flag or a `CHAT_*` variable.

use std::io::IsTerminal;
use std::process::ExitCode;

use chat_server::Config;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")))
        // Colour codes only help a person at a terminal; log files and collectors want text.
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let server = match chat_server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "chat-server could not start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %server.addr(), "chat-server listening on http://{}", server.addr());
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or SIGTERM (what service managers send).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C still works");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
