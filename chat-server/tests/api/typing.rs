//! Typing indicators reach the room's members, not outsiders, and end on their own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_members_only_and_expires() {
    for (_, server) in TestServer::on_each_backend().await {
        typing_reaches_members_only_and_expires_on(server).await;
    }
}

async fn typing_reaches_members_only_and_expires_on(server: TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = server.room(&alice, &[&bob]).await;
    let mut bob_ws = server.ws(&bob.token).await;
    let mut eve_ws = server.ws(&eve.token).await;

    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/typing"),
            Some(&alice.token),
            json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let started = bob_ws.next().await;
    assert_eq!(started["type"], "typing");
    assert_eq!(
        (started["user_id"].as_str(), started["typing"].as_bool()),
        (Some(alice.id.as_str()), Some(true))
    );
    assert_eq!(started["room_id"], room.as_str());

    // Nobody renews it: it ends by itself after the typing lifetime.
    let ended = tokio::time::timeout(Duration::from_secs(9), bob_ws.next())
        .await
        .expect("typing ends");
    assert_eq!(
        (ended["type"].as_str(), ended["typing"].as_bool()),
        (Some("typing"), Some(false))
    );

    // Over the socket too, and an explicit stop is announced at once.
    let mut alice_ws = server.ws(&alice.token).await;
    alice_ws
        .send(json!({"type": "typing", "room_id": room, "typing": true}))
        .await;
    assert_eq!(bob_ws.next().await["typing"], true);
    alice_ws
        .send(json!({"type": "typing", "room_id": room, "typing": false}))
        .await;
    assert_eq!(bob_ws.next().await["typing"], false);

    assert!(
        eve_ws.drain().await.is_empty(),
        "an outsider hears no typing"
    );
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/typing"),
            Some(&eve.token),
            json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/typing"),
            Some(&alice.token),
            json!({"typing": "yes"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
