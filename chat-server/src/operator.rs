//! What an operator does besides serving: applying the store's migrations, creating a user and
//! setting a password. Users are changed through the same engine `serve` builds from the same
//! configuration (its store, uploads and limits), so the engine's rules hold here too.

use chat_core::domain::User;
use chat_core::engine::Register;
use chat_core::{ChatEngine, ChatError};

use crate::{open_backend, open_engine, Config, StartError};

/// Applies the store's migrations (opening the store applies them) and closes it.
pub(crate) async fn migrate(config: &Config) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let (_, _, backend) = open_backend(config, None, Vec::new()).await?;
    backend.close().await;
    Ok(())
}

/// Registers a user, as `POST /v1/auth/register` does.
pub(crate) async fn create_user(config: &Config, input: Register) -> Result<User, StartError> {
    let (engine, _store) = open_engine(config).await?;
    let created = engine.register(input).await;
    finish(engine).await;
    created.map_err(StartError::Refused)
}

/// Sets `username`'s password and signs every session of theirs out (on every node, when the
/// nodes share a bus).
pub(crate) async fn set_password(
    config: &Config,
    username: &str,
    password: &str,
) -> Result<(), StartError> {
    let (engine, _store) = open_engine(config).await?;
    let set = engine.set_password(username, password).await;
    finish(engine).await;
    set.map_err(|e| match e {
        ChatError::NotFound => StartError::Refused(ChatError::BadRequest(format!(
            "no user is named {username:?}"
        ))),
        other => StartError::Refused(other),
    })
}

/// Ends an engine built for one command: its node leaves presence. The store is left open:
/// the engine's background tasks run their first round as it starts and may still be at it,
/// and closing the store under them would fail them loudly. The process exits next, which ends
/// both; what was committed is durable.
async fn finish(engine: ChatEngine) {
    engine.shutdown().await;
}
