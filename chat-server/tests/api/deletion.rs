//! Account deletion over HTTP and the WebSocket, on every backend: the account is gone at
//! once, its messages read as tombstones, its rooms live on, its username stays taken for the
//! quarantine.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestServer;
use crate::uploads::{png, upload_to};

async fn delete_me(server: &TestServer, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    server
        .request(Method::DELETE, "/v1/users/me", token, Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_is_gone_and_leaves_tombstones() {
    for (backend, server) in TestServer::on_each_backend().await {
        deletion_on(backend, server).await;
    }
}

async fn deletion_on(backend: &str, server: TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let room = server.room(&alice, &[&bob, &carol]).await;
    server.send(&alice, &room, "hello").await;
    server.send(&bob, &room, "hi alice").await;
    let (status, upload) = upload_to(&server.base, &alice.token, "a.png", png(100)).await;
    assert_eq!(status, StatusCode::CREATED, "{backend}: {upload}");
    let (_, login) = server
        .post(
            "/v1/auth/login",
            None,
            json!({"login": "alice", "password": "password-123"}),
        )
        .await;
    let other_session = login["access_token"].as_str().unwrap().to_owned();
    let mut alices_ws = server.ws(&other_session).await;
    let mut bobs_ws = server.ws(&bob.token).await;

    let body = |password: &str| json!({ "password": password }).to_string();
    let (status, _) = delete_me(&server, None, &body("password-123")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}");
    for (bad, field) in [
        (body("wrong-password"), "password"),
        (
            json!({"password": "password-123", "hard": true}).to_string(),
            "hard",
        ),
    ] {
        let (status, error) = delete_me(&server, Some(&alice.token), &bad).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{backend}: {error}"
        );
        assert!(
            error["details"]["fields"][field].is_string(),
            "{backend}: {error}"
        );
    }
    let (status, error) = delete_me(&server, Some(&alice.token), "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: {error}");
    let (status, _) = server.get("/v1/users/me", &alice.token).await;
    assert_eq!(status, StatusCode::OK, "{backend}: refusals change nothing");

    let (status, body_after) = delete_me(&server, Some(&alice.token), &body("password-123")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{backend}: {body_after}");

    assert_eq!(alices_ws.closed().await, Some(4001), "{backend}");
    for token in [&alice.token, &other_session] {
        let (status, _) = server.get("/v1/users/me", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}");
    }
    let (status, _) = server
        .post(
            "/v1/auth/login",
            None,
            json!({"login": "alice", "password": "password-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: no sign-in");
    let (status, _) = server
        .get(&format!("/v1/users/{}", alice.id), &bob.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: nobody finds it");
    let upload_path = format!("/v1/uploads/{}", upload["id"].as_str().unwrap());
    let (status, _) = server.get(&upload_path, &bob.token).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{backend}: its uploads are gone"
    );

    let deleted = bobs_ws.next_of("message.deleted").await;
    assert_eq!(deleted["room_id"], room.as_str(), "{backend}");
    let left = bobs_ws.next_of("member.left").await;
    assert_eq!(
        (left["room_id"].as_str(), left["user_id"].as_str()),
        (Some(room.as_str()), Some(alice.id.as_str())),
        "{backend}"
    );
    let said: Vec<(bool, Value)> = server
        .history(&bob, &room)
        .await
        .iter()
        .map(|m| (m["deleted"].as_bool().unwrap(), m["body"].clone()))
        .collect();
    assert_eq!(
        said,
        [(true, Value::Null), (false, json!("hi alice"))],
        "{backend}"
    );
    let (status, members) = server
        .get(&format!("/v1/rooms/{room}/members"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{backend}: the room lives on");
    let mut roles: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    roles.sort();
    // Both joined when the room was made; the tie between them is broken by id.
    assert_eq!(
        (members["members"].as_array().unwrap().len(), roles),
        (2, vec!["member", "owner"]),
        "{backend}: one of the two members took it over: {members}"
    );

    let (status, error) = server
        .post(
            "/v1/auth/register",
            None,
            json!({"username": "alice", "password": "password-123"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{backend}: the username is quarantined: {error}"
    );
}

#[tokio::test]
async fn without_a_quarantine_the_username_is_free_at_once() {
    let server = TestServer::start_with(|c| c.username_quarantine_days = 0).await;
    let alice = server.register("alice").await;
    let (status, _) = delete_me(
        &server,
        Some(&alice.token),
        &json!({"password": "password-123"}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let again = server.register("alice").await;
    assert_ne!(again.id, alice.id);
}
