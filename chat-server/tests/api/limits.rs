//! Rate limits from outside: `429 rate_limited` with `Retry-After` over HTTP, an `error` event
//! on the socket, for sends (HTTP and WebSocket together) and failed logins.

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_http_and_the_socket_share_one_budget() {
    let server = TestServer::start_with(|c| {
        c.rate_limits = "on".into();
        c.send_burst = 3;
        c.send_rate_per_sec = 1;
    })
    .await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    let mut ws = server.ws(&alice.token).await;
    for i in 0..2 {
        server.send(&alice, &room, &format!("http {i}")).await;
    }
    ws.send(json!({"type": "message.send", "room_id": room, "client_id": "ws-1", "body": "ws"}))
        .await;
    assert_eq!(ws.next_of("ack").await["client_id"], "ws-1");

    let res = reqwest::Client::new()
        .post(format!("{}/v1/rooms/{room}/messages", server.base))
        .bearer_auth(&alice.token)
        .json(&json!({"body": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");

    ws.send(json!({"type": "message.send", "room_id": room, "client_id": "ws-2", "body": "ws"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (error["code"].as_str(), error["client_id"].as_str()),
        (Some("rate_limited"), Some("ws-2"))
    );
    assert_eq!(
        server.history(&alice, &room).await.len(),
        3,
        "refused sends store nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_and_successes_are_not() {
    let server = TestServer::start_with(|c| {
        c.rate_limits = "on".into();
        c.failed_logins_per_min = 2;
    })
    .await;
    server.register("alice").await;
    for _ in 0..3 {
        server.login("alice").await;
    }
    for _ in 0..2 {
        let (status, _) = server
            .post(
                "/v1/auth/login",
                None,
                json!({"login": "alice", "password": "wrong-guess"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let res = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", server.base))
        .json(&json!({"login": "alice", "password": "password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_opens_at_most_the_connections_allowed() {
    let server = TestServer::start_with(|c| c.max_connections_per_user = 2).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let first = server.ws(&alice.token).await;
    let _second = server.ws(&alice.token).await;
    let mut request = server.ws_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", alice.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(r.headers().get("retry-after").is_some());
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    let _bobs = server.ws(&bob.token).await;
    drop(first);
    // The server notices the closed socket and frees its place.
    let mut opened = None;
    for _ in 0..50 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(request.clone()).await {
            opened = Some(socket);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(opened.is_some(), "a closed connection frees its place");
}
