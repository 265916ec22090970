//! A client that was away reconnects, syncs from its last seq and misses nothing.

use serde_json::json;

use crate::support::{seqs, TestServer};

#[tokio::test]
async fn a_reconnecting_client_syncs_exactly_what_it_missed() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let mut bob_ws = server.ws(&bob.token).await;
    for i in 1..=5 {
        server.send(&alice, &room, &format!("before {i}")).await;
    }
    let mut last_seen = 0;
    for _ in 0..5 {
        let frame = bob_ws.next_of("message.created").await;
        last_seen = frame["message"]["seq"].as_i64().unwrap();
    }
    assert_eq!(last_seen, 5);
    drop(bob_ws);

    for i in 1..=30 {
        server.send(&alice, &room, &format!("while away {i}")).await;
    }
    let mut bob_ws = server.ws(&bob.token).await;
    bob_ws
        .send(json!({"type": "sync", "rooms": { room.clone(): last_seen }}))
        .await;
    let mut replayed = Vec::new();
    let synced = loop {
        let frame = bob_ws.next().await;
        match frame["type"].as_str() {
            Some("message.created") => replayed.push(frame["message"].clone()),
            Some("synced") => break frame,
            _ => panic!("unexpected frame {frame}"),
        }
    };
    assert_eq!(seqs(&replayed), (6..=35).collect::<Vec<i64>>());
    assert_eq!(replayed[0]["body"], "while away 1");
    let state = &synced["rooms"][room.as_str()];
    assert_eq!(state["last_seq"], 35);
    assert_eq!(state["complete"], true);

    // Live delivery goes on after the replay, without repeating anything.
    server.send(&alice, &room, "live again").await;
    let next = bob_ws.next_of("message.created").await;
    assert_eq!(next["message"]["seq"], 36);
}

#[tokio::test]
async fn ready_tells_where_each_room_stands() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    server.send(&alice, &room, "one").await;
    server.send(&alice, &room, "two").await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{}?token={}",
            server.ws_url, alice.token
        ))
        .unwrap();
    request.headers_mut().remove("authorization");
    let (mut stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let ready = futures_util::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(ready.to_text().unwrap()).unwrap();
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user"]["id"], alice.id.as_str());
    let rooms = ready["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["room_id"], room.as_str());
    assert_eq!(
        (rooms[0]["last_seq"].as_i64(), rooms[0]["read_seq"].as_i64()),
        (Some(2), Some(2))
    );
}
