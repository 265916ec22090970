//! Stopping and starting the server on the same data directory loses nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{seqs, TestServer};

#[tokio::test]
async fn users_rooms_messages_and_tokens_survive_a_restart() {
    let server = TestServer::start_with(|c| c.jwt_secret = None).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    for i in 1..=3 {
        server
            .send(&alice, &room, &format!("before restart {i}"))
            .await;
    }
    let dir = server.stop().await;
    assert!(dir.path().join("chat.db").exists());
    assert!(
        dir.path().join("jwt_secret").exists(),
        "the generated secret is kept"
    );

    let server = TestServer::start_in(dir, |c| c.jwt_secret = None).await;
    let (status, me) = server.get("/v1/users/me", &alice.token).await;
    assert_eq!(status, StatusCode::OK, "an old token still works: {me}");
    assert_eq!(me["id"], alice.id.as_str());
    let history = server.history(&bob, &room).await;
    assert_eq!(seqs(&history), vec![1, 2, 3]);
    assert_eq!(history[0]["body"], "before restart 1");
    let next = server.send(&bob, &room, "after restart").await;
    assert_eq!(next["seq"], 4);
    let token = server.login("alice").await;
    let (status, rooms) = server.get("/v1/rooms", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rooms["rooms"][0]["id"], room.as_str());
    let (status, _) = server
        .post(
            "/v1/auth/register",
            None,
            json!({"username": "alice", "password": "password-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
