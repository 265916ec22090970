//! The `chat-server` program itself: starts with nothing configured, stops cleanly on SIGTERM,
//! and starts again on the same data directory with everything in place.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

struct Program {
    child: Child,
    base: String,
}

impl Program {
    /// Runs the binary in `dir` (its `./data` is `dir/data`), on a free port.
    fn start(dir: &std::path::Path) -> Program {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .current_dir(dir)
            .env_clear()
            .env("CHAT_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server logs where it listens")
                .unwrap();
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Program { child, base }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // A failing test must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let mut program = Program::start(dir.path());
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

    let mut program = Program::start(dir.path());
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
