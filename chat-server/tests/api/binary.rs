//! The `chat-server` program itself: starts with nothing configured, stops cleanly on SIGTERM,
//! starts again on the same data directory with everything in place, and logs no secret.

use reqwest::StatusCode;
use serde_json::{json, Value};

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Program, Remote, SECRET};

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    Remote::new(base).post(path, token, body).await
}

#[tokio::test]
async fn the_program_starts_with_no_configuration_and_restarts_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut program = Program::start(dir.path(), &[]);
    let base = program.base.clone();
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let (status, _) = post(
        &base,
        "/v1/auth/register",
        None,
        json!({"username": "alice", "password": "password-123"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, login) = post(
        &base,
        "/v1/auth/login",
        None,
        json!({"login": "alice", "password": "password-123"}),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (_, room) = post(&base, "/v1/rooms", Some(&token), json!({"name": "notes"})).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &base,
        &format!("/v1/rooms/{room}/messages"),
        Some(&token),
        json!({"body": "remember me"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(program.terminate().success(), "SIGTERM is a clean exit");
    assert!(dir.path().join("data/chat.db").exists());
    assert!(dir.path().join("data/jwt_secret").exists());

    let mut program = Program::start(dir.path(), &[]);
    let res = reqwest::Client::new()
        .get(format!("{}/v1/rooms/{room}/messages", program.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the old token works after a restart"
    );
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["messages"][0]["body"], "remember me");
    assert!(program.terminate().success());
}

#[tokio::test]
async fn no_password_token_ticket_or_secret_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Debug level: what an operator turns on to chase a problem must not leak either.
    let mut program = Program::start(
        dir.path(),
        &[("CHAT_LOG", "debug"), ("CHAT_JWT_SECRET", SECRET)],
    );
    let remote = Remote::new(&program.base);
    let password = "password-123";
    let user = remote.user("logcheck").await;
    let (_, login) = remote
        .post(
            "/v1/auth/login",
            None,
            json!({"login": "logcheck", "password": password}),
        )
        .await;
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = remote
        .post("/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    remote.get("/v1/users/me", &user.token).await;
    let (_, ticket) = remote
        .post("/v1/ws/ticket", Some(&user.token), json!({}))
        .await;
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let ws = program.base.replacen("http://", "ws://", 1);
    for url in [
        format!("{ws}/v1/ws?ticket={ticket}"),
        format!("{ws}/v1/ws?token={}", user.token),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(url.into_client_request().unwrap())
            .await
            .expect("the socket opens");
        socket.close(None).await.unwrap();
    }
    // A refused token is logged no more than an accepted one.
    let (status, _) = remote
        .post(
            "/v1/rooms",
            Some("not-a-token-but-secret-looking"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(program.terminate().success());

    let log = program.log();
    assert!(log.contains("/v1/ws/ticket"), "requests are logged: {log}");
    for (what, secret) in [
        ("password", password),
        ("access token", user.token.as_str()),
        ("refresh token", refresh.as_str()),
        (
            "new refresh token",
            refreshed["refresh_token"].as_str().unwrap(),
        ),
        (
            "new access token",
            refreshed["access_token"].as_str().unwrap(),
        ),
        ("ticket", ticket.as_str()),
        ("JWT secret", SECRET),
        ("refused token", "not-a-token-but-secret-looking"),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log");
    }
}
