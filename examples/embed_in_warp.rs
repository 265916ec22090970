//! Mounting the chat API in an existing warp application that signs its users in itself: the
//! application's own tokens work for the chat (the user is created on first use), beside its
//! own routes, on one port.
//!
//! `cargo run -p chat-examples --example embed_in_warp` runs a short session against itself and
//! exits; with `-- --serve` it keeps serving on 127.0.0.1:8090 (try
//! `curl localhost:8090/shop/login/alice`, then the chat API with that token).

use std::net::SocketAddr;
use std::sync::Arc;

use chat_core::auth::host::{HostKey, HostTokens};
use chat_core::memory::MemoryStore;
use chat_core::ChatEngine;
use chat_server::{ApiSettings, ChatApi};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use warp::{Filter, Reply as _};

/// The application's own signing secret (from its configuration, in real life).
const SHOP_SECRET: &[u8] = b"the shop's own token secret, at least 32 bytes";
/// The `iss` of the application's tokens.
const SHOP_ISSUER: &str = "https://shop.example";

/// What the application's login hands out: its own JWT, which the chat accepts as it is.
fn shop_token(user: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "sub": format!("shop-user-{user}"),
        "iss": SHOP_ISSUER,
        "iat": now,
        "exp": now + 3600,
        "preferred_username": user,
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SHOP_SECRET),
    )
}

/// The application: its own routes and the chat API, as one warp filter.
async fn app(
) -> Result<warp::filters::BoxedFilter<(warp::reply::Response,)>, Box<dyn std::error::Error>> {
    let host = HostTokens::new(
        HostKey::Secret(SHOP_SECRET.to_vec()),
        None,
        SHOP_ISSUER,
        None,
    )?;
    let engine = ChatEngine::builder(Arc::new(MemoryStore::new()))
        .host_tokens(host)
        .build()
        .await?;
    let chat = ChatApi::new(engine, ApiSettings::default());
    let login = warp::path!("shop" / "login" / String)
        .and(warp::get())
        .map(|user: String| match shop_token(&user) {
            Ok(token) => warp::reply::json(&json!({ "token": token })).into_response(),
            Err(_) => warp::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        });
    Ok(login.or(chat.filter()).unify().boxed())
}

/// A short session against the running application: log in at the shop, chat with that token.
async fn session(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let login = |user: &'static str| {
        let http = http.clone();
        let url = format!("{base}/shop/login/{user}");
        async move {
            let body: Value = http.get(url).send().await?.json().await?;
            Ok::<_, reqwest::Error>(body["token"].as_str().unwrap_or_default().to_owned())
        }
    };
    let alice = login("alice").await?;
    let bob = login("bob").await?;
    let me = |token: String| {
        let http = http.clone();
        let url = format!("{base}/v1/users/me");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await?
                .json::<Value>()
                .await
        }
    };
    let alice_user = me(alice.clone()).await?;
    let bob_user = me(bob.clone()).await?;
    println!(
        "the shop's tokens sign in {} and {} to the chat",
        alice_user["username"], bob_user["username"]
    );
    let room: Value = http
        .post(format!("{base}/v1/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "orders", "members": [bob_user["id"]]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let room_id = room["id"].as_str().unwrap_or_default();
    http.post(format!("{base}/v1/rooms/{room_id}/messages"))
        .bearer_auth(&alice)
        .json(&json!({"body": "your order has shipped"}))
        .send()
        .await?
        .error_for_status()?;
    let history: Value = http
        .get(format!("{base}/v1/rooms/{room_id}/messages"))
        .bearer_auth(&bob)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("bob reads: {}", history["messages"][0]["body"]);
    Ok(())
}

async fn run(serve: bool) -> Result<(), Box<dyn std::error::Error>> {
    let addr = if serve {
        "127.0.0.1:8090"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    // `chat_server::serve` is `warp::serve` with smaller WebSockets for the chat; an
    // application with WebSocket routes of its own keeps `warp::serve` (see its docs).
    let app = app().await?;
    let server = tokio::spawn(chat_server::serve(listener, app, std::future::pending()));
    if serve {
        println!("serving on http://{addr}");
        server.await?;
        return Ok(());
    }
    let outcome = session(addr).await;
    server.abort();
    outcome
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(std::env::args().any(|a| a == "--serve")).await
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs() {
        super::run(false).await.expect("the example runs");
    }
}
