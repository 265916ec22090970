//! Read and delivered watermarks, receipt events and unread counts.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::TestServer;

#[tokio::test]
async fn watermarks_move_forward_only_and_unread_counts_follow() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = server.room(&alice, &[&bob]).await;
    for i in 1..=4 {
        server.send(&alice, &room, &format!("m{i}")).await;
    }
    let (_, mention) = server
        .post(
            &format!("/v1/rooms/{room}/messages"),
            Some(&alice.token),
            json!({"body": "@bob see this"}),
        )
        .await;
    assert_eq!(mention["mentions"][0], bob.id.as_str());
    let mut alice_ws = server.ws(&alice.token).await;

    let (_, unread) = server.get("/v1/unread", &bob.token).await;
    assert_eq!(unread["total"], 5);
    assert_eq!(unread["rooms"][0]["room_id"], room.as_str());
    assert_eq!(
        (
            unread["rooms"][0]["unread_count"].as_i64(),
            unread["rooms"][0]["mention_count"].as_i64()
        ),
        (Some(5), Some(1))
    );

    let read = |seq: Value| {
        let server = &server;
        let token = bob.token.clone();
        let path = format!("/v1/rooms/{room}/read");
        async move {
            server
                .post(&path, Some(&token), json!({ "seq": seq }))
                .await
        }
    };
    let (status, state) = read(json!(2)).await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(
        state,
        json!({"read_seq": 2, "delivered_seq": 2, "unread_count": 3})
    );
    let receipt = alice_ws.next_of("receipt").await;
    assert_eq!(
        (receipt["user_id"].as_str(), receipt["read_seq"].as_i64()),
        (Some(bob.id.as_str()), Some(2))
    );

    // Whatever order reads arrive in, the watermark never moves back.
    let (_, back) = read(json!(1)).await;
    assert_eq!(back["read_seq"], 2);
    let (_, past) = read(json!(1000)).await;
    assert_eq!(
        past,
        json!({"read_seq": 5, "delivered_seq": 5, "unread_count": 0}),
        "clamped to last_seq"
    );
    let (_, unread) = server.get("/v1/unread", &bob.token).await;
    assert_eq!(unread, json!({"total": 0, "rooms": []}));

    // Delivered moves on its own and never passes the last seq either.
    server.send(&alice, &room, "m6").await;
    let (status, delivered) = server
        .post(
            &format!("/v1/rooms/{room}/delivered"),
            Some(&bob.token),
            json!({"seq": 9}),
        )
        .await;
    assert_eq!(
        (status, delivered),
        (StatusCode::OK, json!({"delivered_seq": 6}))
    );
    let (_, receipts) = server
        .get(&format!("/v1/rooms/{room}/receipts"), &alice.token)
        .await;
    let bobs = receipts["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (bobs["read_seq"].as_i64(), bobs["delivered_seq"].as_i64()),
        (Some(5), Some(6))
    );
    assert!(bobs["read_at"].is_string());
    assert!(receipts["next_cursor"].is_null());

    // Over the socket too; bad input changes nothing.
    let mut bob_ws = server.ws(&bob.token).await;
    bob_ws
        .send(json!({"type": "read", "room_id": room, "seq": 6}))
        .await;
    let receipt = loop {
        let frame = alice_ws.next_of("receipt").await;
        if frame["read_seq"] == 6 {
            break frame;
        }
    };
    assert_eq!(receipt["delivered_seq"], 6);
    let (status, body) = server
        .post(
            &format!("/v1/rooms/{room}/read"),
            Some(&bob.token),
            json!({"seq": -1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/read"),
            Some(&eve.token),
            json!({"seq": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(&format!("/v1/rooms/{room}/receipts"), &eve.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, rooms) = server.get("/v1/rooms", &bob.token).await;
    assert_eq!(rooms["rooms"][0]["membership"]["read_seq"], 6);
    assert_eq!(rooms["rooms"][0]["membership"]["unread_count"], 0);
}

#[tokio::test]
async fn concurrent_reads_in_any_order_end_at_the_highest() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    for i in 1..=30 {
        server.send(&alice, &room, &format!("m{i}")).await;
    }
    let mut tasks = Vec::new();
    for seq in (1..=30).rev().chain(1..=30) {
        let (url, token) = (
            format!("{}/v1/rooms/{room}/read", server.base),
            bob.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "seq": seq }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()["read_seq"]
                .as_i64()
                .unwrap()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap() >= 1);
    }
    let (_, unread) = server.get("/v1/unread", &bob.token).await;
    assert_eq!(unread["total"], 0);
    let (_, receipts) = server
        .get(&format!("/v1/rooms/{room}/receipts"), &bob.token)
        .await;
    let bobs = receipts["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bobs["read_seq"], 30);
}

#[tokio::test]
async fn settings_pin_archive_and_mute_rooms_for_the_caller_only() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let older = server.room(&alice, &[&bob]).await;
    let newer = server.room(&alice, &[&bob]).await;
    let noisy = server.room(&alice, &[&bob]).await;
    let put = |room: &str, body: Value| {
        let path = format!("/v1/rooms/{room}/settings");
        let token = bob.token.clone();
        let server = &server;
        async move {
            server
                .request(
                    reqwest::Method::PUT,
                    &path,
                    Some(&token),
                    Some(&body.to_string()),
                )
                .await
        }
    };
    let (status, membership) = put(&older, json!({"pinned": true})).await;
    assert_eq!(status, StatusCode::OK, "{membership}");
    assert_eq!(
        (
            membership["pinned"].as_bool(),
            membership["muted"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let (_, muted) = put(&noisy, json!({"muted": true, "archived": true})).await;
    assert_eq!(
        (muted["muted"].as_bool(), muted["archived"].as_bool()),
        (Some(true), Some(true))
    );
    server.send(&alice, &noisy, "ping").await;
    server.send(&alice, &newer, "hello").await;

    let ids = |body: &Value| -> Vec<String> {
        body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, listed) = server.get("/v1/rooms", &bob.token).await;
    assert_eq!(
        ids(&listed),
        vec![older.clone(), newer.clone()],
        "pinned first; archived hidden"
    );
    let (_, all) = server
        .get("/v1/rooms?include_archived=true", &bob.token)
        .await;
    assert_eq!(ids(&all), vec![older.clone(), newer.clone(), noisy.clone()]);
    let (_, unread) = server.get("/v1/unread", &bob.token).await;
    assert_eq!(
        unread["total"], 1,
        "the muted room's message is left out of the total"
    );
    assert_eq!(
        unread["rooms"].as_array().unwrap().len(),
        2,
        "but listed with its count"
    );
    let (_, alices) = server.get("/v1/rooms", &alice.token).await;
    assert!(alices["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["membership"]["pinned"] == false));

    let (status, _) = put(&older, json!({"pinned": "yes"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let eve = server.register("eve").await;
    let (status, _) = server
        .request(
            reqwest::Method::PUT,
            &format!("/v1/rooms/{older}/settings"),
            Some(&eve.token),
            Some("{}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
