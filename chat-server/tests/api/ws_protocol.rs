//! The WebSocket protocol's edges: unknown and malformed frames, oversized frames, slow
//! consumers, the subprotocol token, origins and shutdown.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::TestServer;

#[tokio::test]
async fn unknown_and_malformed_frames_get_an_error_and_the_socket_stays_open() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    let mut ws = server.ws(&alice.token).await;
    for frame in [
        "{nope",
        "[]",
        "{\"type\": \"dance\"}",
        "{\"type\": 5}",
        "{\"type\":\"message.send\",\"room_id\":\"x\"}",
    ] {
        ws.stream.send(Message::text(frame)).await.unwrap();
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{frame}: {error}");
        assert!(error["code"].is_string());
    }
    ws.send(
        json!({"type": "message.send", "room_id": room, "client_id": "c", "body": "", "seq": 3}),
    )
    .await;
    assert_eq!(ws.next().await["type"], "error");
    ws.send(json!({"type": "message.send", "room_id": room, "client_id": "c", "body": "   "}))
        .await;
    let error = ws.next().await;
    assert_eq!(
        (error["code"].as_str(), error["client_id"].as_str()),
        (Some("validation_failed"), Some("c"))
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
    assert!(server.history(&alice, &room).await.is_empty());
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let server = TestServer::start_with(|c| c.ws_max_frame_bytes = 1024).await;
    let alice = server.register("alice").await;
    let mut ws = server.ws(&alice.token).await;
    let big = json!({"type": "ping", "pad": "x".repeat(4096)}).to_string();
    ws.stream.send(Message::text(big)).await.unwrap();
    assert_eq!(ws.closed().await, Some(1009));
}

#[tokio::test]
async fn a_socket_that_does_not_read_is_closed_as_a_slow_consumer() {
    const MESSAGES: usize = 2000;
    let server = TestServer::start_with(|c| c.ws_queue = 8).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let mut slow = server.ws_with_receive_buffer(&bob.token, Some(4096)).await;
    let mut fine = server.ws(&bob.token).await;
    // About 8 MB: more than the kernel buffers between the server and the stalled client.
    let body = "y".repeat(3900);
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < MESSAGES {
            if fine.next().await["type"] == "message.created" {
                got += 1;
            }
        }
        got
    });
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let client = reqwest::Client::new();
            let url = format!("{}/v1/rooms/{room}/messages", server.base);
            let token = alice.token.clone();
            let body = body.clone();
            tokio::spawn(async move {
                for _ in 0..MESSAGES / 8 {
                    let res = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({ "body": body }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 201);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    assert_eq!(
        reader.await.unwrap(),
        MESSAGES,
        "the reading socket got everything"
    );
    assert_eq!(slow.closed().await, Some(4008));
}

#[tokio::test]
async fn the_token_may_come_as_a_subprotocol() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mut request = server.ws_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {}", alice.token).parse().unwrap(),
    );
    let (_stream, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_opens_one_socket_once_on_any_backend() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let (status, ticket) = server
            .post("/v1/ws/ticket", Some(&alice.token), json!({}))
            .await;
        assert_eq!(status, 200, "{backend}: {ticket}");
        assert_eq!(ticket["expires_in"], 30);
        let url = format!(
            "{}?ticket={}",
            server.ws_url,
            ticket["ticket"].as_str().unwrap()
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("the ticket opens a socket");
        let ready = loop {
            if let Some(Ok(Message::Text(text))) = futures_util::StreamExt::next(&mut socket).await
            {
                break serde_json::from_str::<serde_json::Value>(&text).unwrap();
            }
        };
        assert_eq!(ready["type"], "ready", "{backend}");
        assert_eq!(ready["user"]["id"], alice.id.as_str());
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 401, "{backend}: a ticket works once")
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
        let forged = format!("{}?ticket={}", server.ws_url, "ab".repeat(32));
        match tokio_tungstenite::connect_async(forged.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
        let (status, _) = server.post("/v1/ws/ticket", None, json!({})).await;
        assert_eq!(status, 401, "{backend}: tickets are for signed-in users");
    }
}

#[tokio::test]
async fn foreign_origins_are_refused_and_listed_ones_allowed() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://chat.example".into()]).await;
    let alice = server.register("alice").await;
    let attempt = |origin: &'static str| {
        let mut request = server.ws_url.as_str().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {}", alice.token).parse().unwrap(),
        );
        headers.insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    match attempt("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(attempt("https://chat.example").await.is_ok());
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let mut ws = server.ws(&alice.token).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(ws.closed().await, Some(1001));
    stopping.await.unwrap();
}

#[tokio::test]
async fn idle_sockets_are_pinged_and_closed_when_they_do_not_answer() {
    let server = TestServer::start_with(|c| c.ws_ping_secs = 1).await;
    let alice = server.register("alice").await;
    let mut answering = server.ws(&alice.token).await;
    let mut silent = server.ws(&alice.token).await;
    // The answering client reads (its library answers pings) for longer than the timeout.
    let started = std::time::Instant::now();
    let mut pinged = false;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        if let Ok(Some(Ok(frame))) = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            futures_util::StreamExt::next(&mut answering.stream),
        )
        .await
        {
            pinged |= frame.is_ping();
        }
    }
    assert!(pinged, "an idle socket is pinged");
    answering.send(json!({"type": "ping"})).await;
    assert_eq!(
        answering.next().await["type"],
        "pong",
        "and stays open while it answers"
    );
    // The silent one never read, so never answered: the server closed it.
    assert_eq!(silent.closed().await, Some(1008));
}
