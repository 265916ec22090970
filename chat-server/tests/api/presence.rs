//! Presence: online with a live connection, away on request, offline when the last one closes;
//! changes reach the users who share a room, and nobody else.

use reqwest::{Method, StatusCode};

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connections_and_reaches_room_mates_only() {
    for (_, server) in TestServer::on_each_backend().await {
        presence_follows_connections_and_reaches_room_mates_only_on(server).await;
    }
}

async fn presence_follows_connections_and_reaches_room_mates_only_on(server: TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    server.room(&alice, &[&bob]).await;
    let mut bob_ws = server.ws(&bob.token).await;
    let mut eve_ws = server.ws(&eve.token).await;

    let query = format!("/v1/presence?user_ids={},{}", alice.id, bob.id);
    let (_, before) = server.get(&query, &bob.token).await;
    let statuses = |body: &serde_json::Value| -> Vec<(String, String)> {
        body["presence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["user_id"].as_str().unwrap().to_owned(),
                    p["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert!(statuses(&before).contains(&(alice.id.clone(), "offline".into())));
    assert!(statuses(&before).contains(&(bob.id.clone(), "online".into())));

    let alice_ws = server.ws(&alice.token).await;
    let online = bob_ws.next_of("presence").await;
    assert_eq!(
        (online["user_id"].as_str(), online["status"].as_str()),
        (Some(alice.id.as_str()), Some("online"))
    );
    assert!(online["last_seen"].is_string());

    let (status, me) = server
        .request(
            Method::PUT,
            "/v1/users/me/presence",
            Some(&alice.token),
            Some(r#"{"status":"away"}"#),
        )
        .await;
    assert_eq!(
        (status, me["status"].as_str()),
        (StatusCode::OK, Some("away"))
    );
    assert_eq!(bob_ws.next_of("presence").await["status"], "away");
    let (_, mine) = server.get("/v1/users/me/presence", &alice.token).await;
    assert_eq!(mine["status"], "away");

    drop(alice_ws);
    let offline = bob_ws.next_of("presence").await;
    assert_eq!(
        (offline["user_id"].as_str(), offline["status"].as_str()),
        (Some(alice.id.as_str()), Some("offline"))
    );
    let (_, after) = server.get(&query, &bob.token).await;
    assert!(statuses(&after).contains(&(alice.id.clone(), "offline".into())));

    assert!(
        eve_ws.drain().await.iter().all(|f| f["type"] != "presence"),
        "eve shares no room"
    );
    let (status, _) = server
        .request(
            Method::PUT,
            "/v1/users/me/presence",
            Some(&alice.token),
            Some(r#"{"status":"busy"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Ids and commas only: an empty item (also `user_ids=`, found by schemathesis) or a space
    // is no id.
    let padded = format!("/v1/presence?user_ids={},%20{}", alice.id, bob.id);
    for path in [
        "/v1/presence?user_ids=nope",
        "/v1/presence?user_ids=",
        &padded,
    ] {
        let (status, _) = server.get(path, &bob.token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    let many: Vec<String> = (0..101).map(numbered_id).collect();
    let (status, _) = server
        .get(
            &format!("/v1/presence?user_ids={}", many.join(",")),
            &bob.token,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn numbered_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}
