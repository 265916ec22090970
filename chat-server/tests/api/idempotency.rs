//! A repeated `client_id` stores one message, over HTTP, over WebSocket and concurrently.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{seqs, TestServer};

#[tokio::test]
async fn a_client_id_repeated_over_http_stores_one_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    let path = format!("/v1/rooms/{room}/messages");
    let (first, original) = server
        .post(
            &path,
            Some(&alice.token),
            json!({"body": "once", "client_id": "k1"}),
        )
        .await;
    assert_eq!(first, StatusCode::CREATED);
    let (second, again) = server
        .post(
            &path,
            Some(&alice.token),
            json!({"body": "a retry with another body", "client_id": "k1"}),
        )
        .await;
    assert_eq!(second, StatusCode::OK);
    assert_eq!(again, original);
    assert_eq!(seqs(&server.history(&alice, &room).await), vec![1]);
}

#[tokio::test]
async fn a_client_id_repeated_over_the_socket_and_http_stores_one_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    let mut ws = server.ws(&alice.token).await;
    let frame =
        json!({"type": "message.send", "room_id": room, "client_id": "k2", "body": "hello"});
    ws.send(frame.clone()).await;
    let first = ws.next_of("ack").await;
    ws.send(frame).await;
    let second = ws.next_of("ack").await;
    assert_eq!(first["message"], second["message"]);
    let (status, over_http) = server
        .post(
            &format!("/v1/rooms/{room}/messages"),
            Some(&alice.token),
            json!({"body": "hello", "client_id": "k2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(over_http, first["message"]);
    // The duplicate was not announced again: the next frame after a ping is the pong.
    let queued = ws.drain().await;
    assert!(
        queued
            .iter()
            .filter(|f| f["type"] == "message.created")
            .count()
            <= 1,
        "{queued:?}"
    );
    assert_eq!(seqs(&server.history(&alice, &room).await), vec![1]);
}

#[tokio::test]
async fn concurrent_sends_with_one_client_id_store_one_message() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    let path = format!("/v1/rooms/{room}/messages");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", server.base);
        let token = alice.token.clone();
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("attempt {i}"), "client_id": "same"}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body["id"].as_str().unwrap().to_owned())
        }));
    }
    let mut ws = server.ws(&alice.token).await;
    ws.send(
        json!({"type": "message.send", "room_id": room, "client_id": "same", "body": "ws attempt"}),
    )
    .await;
    let ack = ws.next_of("ack").await;
    let mut created = 0;
    for task in tasks {
        let (status, id) = task.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}"
        );
        created += usize::from(status == StatusCode::CREATED);
        assert_eq!(id, ack["message"]["id"].as_str().unwrap());
    }
    assert!(created <= 1);
    assert_eq!(seqs(&server.history(&alice, &room).await), vec![1]);
}
