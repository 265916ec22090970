//! Log output: human-readable lines by default, JSON objects (one a line) with
//! `CHAT_LOG_FORMAT=json`, filtered by `CHAT_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::{Config, LogFormat};

/// Where log lines go.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Output {
    /// The server's log.
    Stdout,
    /// A command's log, kept apart from what it prints as its result.
    Stderr,
}

/// Installs the process's log subscriber as `config` says.
pub(crate) fn init(config: &Config, output: Output) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, terminal) = match output {
        Output::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        Output::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match config.log_format {
        // Colour codes only help a person at a terminal; log files and collectors want text.
        LogFormat::Text => builder.with_ansi(terminal).init(),
        // Fields at the top level of each object, where collectors look for them.
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}
