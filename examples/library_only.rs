//! chat-core with SQLite and no HTTP: an embedding service drives the engine directly.
//!
//! `cargo run -p chat-examples --example library_only`

use std::sync::Arc;

use chat_core::engine::{AddMember, CreateRoom, HistoryQuery, Register, SendMessage};
use chat_core::{ChatEngine, ChatError};
use chat_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // A real SQLite file, in a temporary directory that is removed at the end.
    let store = SqliteStore::open_temporary(SqliteOptions::default()).await?;
    let engine = ChatEngine::builder(Arc::new(store)).build().await?;

    let register = |name: &str| Register {
        username: name.into(),
        password: "a long enough password".into(),
        email: None,
        display_name: None,
    };
    let alice = engine.register(register("alice")).await?;
    let bob = engine.register(register("bob")).await?;

    let room = engine
        .create_room(
            alice.id,
            CreateRoom {
                name: "project".into(),
                topic: Some("what we build".into()),
                visibility: None,
                members: None,
            },
        )
        .await?;
    engine
        .add_member(
            alice.id,
            room.id,
            AddMember {
                user_id: bob.id.to_string(),
                role: None,
            },
        )
        .await?;

    // Bob is live: his session follows every room he is in.
    let mut bob_live = engine.connect(bob.id).await?;
    for text in ["hello bob", "@bob the build is green"] {
        engine
            .send(
                alice.id,
                room.id,
                SendMessage {
                    body: Some(text.into()),
                    ..SendMessage::default()
                },
            )
            .await?;
    }
    for _ in 0..2 {
        let frame = bob_live.next_frame().await.map_err(|e| format!("{e:?}"))?;
        println!("bob's session: {frame}");
    }

    let page = engine
        .history(bob.id, room.id, HistoryQuery::default())
        .await?;
    for m in &page.messages {
        println!(
            "#{} {}: {}",
            m.seq,
            m.sender_id,
            m.body.as_deref().unwrap_or("")
        );
    }

    // The rules hold without any HTTP in front: a stranger cannot read the room.
    let eve = engine.register(register("eve")).await?;
    match engine
        .history(eve.id, room.id, HistoryQuery::default())
        .await
    {
        Err(ChatError::NotFound) => println!("eve cannot see the room"),
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs() {
        super::run().await.expect("the example runs");
    }
}
