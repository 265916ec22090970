//! The `chat-server` program itself: starts with nothing configured, stops cleanly on SIGTERM,
//! and starts again on the same data directory with everything in place.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::Program;

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
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
