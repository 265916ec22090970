//! A bot: a WebSocket client (tokio-tungstenite) that answers whoever mentions it. It signs in
//! with a username and password over HTTP, opens the socket with its token, and replies to
//! every `message.created` that mentions it, with a `client_id` derived from the message it
//! answers, so a reply sent twice (after a reconnect) is stored once.
//!
//! `cargo run -p chat-examples --example bot` starts a chat server of its own, lets a user say
//! `@bot ping` and prints the bot's answer. Against a running server:
//! `CHAT_URL=http://127.0.0.1:8080 CHAT_BOT_USERNAME=bot CHAT_BOT_PASSWORD=... cargo run -p
//! chat-examples --example bot` (the account must exist; the bot runs until stopped).

use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::ChatEngine;
use chat_server::{ApiSettings, ChatApi};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Signs in and returns the access token and the user's id.
async fn sign_in(base: &str, username: &str, password: &str) -> Result<(String, String), BoxError> {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"login": username, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = body["access_token"].as_str().ok_or("no access token")?;
    let id = body["user"]["id"].as_str().ok_or("no user id")?;
    Ok((token.to_owned(), id.to_owned()))
}

/// The bot: answers every message that mentions it until the socket closes.
async fn bot(base: &str, username: &str, password: &str) -> Result<(), BoxError> {
    let (token, me) = sign_in(base, username, password).await?;
    let ws_url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let event: Value = serde_json::from_str(text.as_str())?;
        if event["type"] != "message.created" {
            continue;
        }
        let message = &event["message"];
        let mentioned = message["mentions"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|id| id == me.as_str()));
        if !mentioned || message["sender_id"] == me.as_str() {
            continue;
        }
        let said = message["body"].as_str().unwrap_or_default();
        let reply = json!({
            "type": "message.send",
            "room_id": message["room_id"],
            "body": format!("pong (you said: {said})"),
            "client_id": format!("reply-{}", message["id"].as_str().unwrap_or_default()),
        });
        socket.send(Message::Text(reply.to_string().into())).await?;
    }
    Ok(())
}

/// A server of its own, a user who mentions the bot, and the bot's answer.
async fn demo() -> Result<(), BoxError> {
    let engine = ChatEngine::builder(Arc::new(MemoryStore::new()))
        .build()
        .await?;
    let api = ChatApi::new(engine, ApiSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    // Plain `warp::serve` works too: the API's sockets then use warp's larger buffers.
    let server = tokio::spawn(warp::serve(api.filter()).incoming(listener).run());
    let http = reqwest::Client::new();
    for name in ["bot", "alice"] {
        http.post(format!("{base}/v1/auth/register"))
            .json(&json!({"username": name, "password": "a long enough password"}))
            .send()
            .await?
            .error_for_status()?;
    }
    let (alice, _) = sign_in(&base, "alice", "a long enough password").await?;
    let (_, bot_id) = sign_in(&base, "bot", "a long enough password").await?;
    let room: Value = http
        .post(format!("{base}/v1/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "with a bot", "members": [bot_id]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let room = room["id"].as_str().ok_or("no room id")?.to_owned();
    let bot_task = tokio::spawn({
        let base = base.clone();
        async move { bot(&base, "bot", "a long enough password").await }
    });
    // The bot's socket is open once the server counts its presence as online.
    let presence_url = format!("{base}/v1/presence?user_ids={bot_id}");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let presence: Value = http
                .get(&presence_url)
                .bearer_auth(&alice)
                .send()
                .await?
                .json()
                .await?;
            if presence["presence"][0]["status"] == "online" {
                return Ok::<_, reqwest::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await??;

    http.post(format!("{base}/v1/rooms/{room}/messages"))
        .bearer_auth(&alice)
        .json(&json!({"body": "@bot ping"}))
        .send()
        .await?
        .error_for_status()?;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let page: Value = http
                .get(format!("{base}/v1/rooms/{room}/messages"))
                .bearer_auth(&alice)
                .send()
                .await?
                .json()
                .await?;
            let from_bot = page["messages"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["sender_id"] == bot_id.as_str()))
                .cloned();
            if let Some(message) = from_bot {
                return Ok::<_, reqwest::Error>(message);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await??;
    println!("the bot answered: {}", answer["body"]);
    bot_task.abort();
    server.abort();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match std::env::var("CHAT_URL") {
        Ok(base) => {
            let username = std::env::var("CHAT_BOT_USERNAME").unwrap_or_else(|_| "bot".into());
            let password = std::env::var("CHAT_BOT_PASSWORD")?;
            bot(&base, &username, &password).await
        }
        Err(_) => demo().await,
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs() {
        super::demo().await.expect("the example runs");
    }
}
