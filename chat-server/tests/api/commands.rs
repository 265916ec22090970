//! The program's commands, run as an operator runs them: `migrate`, `user create` and
//! `user set-password` on a data directory a server then serves (or is serving), and
//! `--print-config`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{database, Program, Remote, SECRET};

/// Runs `chat-server args` in `dir` with nothing configured but `env`, writing `stdin` to it.
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn login(remote: &Remote, name: &str, password: &str) -> (StatusCode, Value) {
    remote
        .post(
            "/v1/auth/login",
            None,
            json!({"login": name, "password": password}),
        )
        .await
}

/// `migrate`, `user create`, serving, and `user set-password` while it serves, on `env`.
async fn users_made_by_commands_sign_in_over_http(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let migrated = run(dir.path(), env, &["migrate"], "");
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    let created = run(
        dir.path(),
        env,
        &[
            "user",
            "create",
            "--username",
            "carol",
            "--display-name",
            "Carol C.",
            "--email",
            "carol@example.com",
            "--password-stdin",
        ],
        "first password 1\nnot read\n",
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let user: Value = serde_json::from_str(stdout(&created).trim()).expect("the user as JSON");
    assert_eq!(user["username"], "carol");
    assert_eq!(user["display_name"], "Carol C.");
    assert_eq!(user["email"], "carol@example.com");
    let again = run(
        dir.path(),
        env,
        &[
            "user",
            "create",
            "--username",
            "CAROL",
            "--password",
            "12345678",
        ],
        "",
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("username is taken"),
        "{}",
        stderr(&again)
    );

    let mut server_env = env.to_vec();
    // On SQLite nothing carries a command's sign-outs to the server: without a memory of
    // sessions found live, it asks the store on every request.
    server_env.push(("CHAT_SESSION_TRUST_SECS", "0"));
    let mut program = Program::start(dir.path(), &server_env);
    let remote = Remote::new(&program.base);
    let (status, body) = login(&remote, "carol", "first password 1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], user["id"]);
    let token = body["access_token"].as_str().unwrap().to_owned();
    remote.get("/v1/users/me", &token).await;

    let mut set_env = env.to_vec();
    set_env.push(("CHAT_USER_PASSWORD", "second password 2"));
    let set = run(
        dir.path(),
        &set_env,
        &["user", "set-password", "--username", "carol"],
        "",
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let (status, _) = login(&remote, "carol", "first password 1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password fails");
    let res = reqwest::Client::new()
        .get(format!("{}/v1/users/me", program.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the old session is out"
    );
    let (status, body) = login(&remote, "carol", "second password 2").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let unknown = run(
        dir.path(),
        &set_env,
        &["user", "set-password", "--username", "nobody"],
        "",
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no user is named"));
    assert!(program.terminate().success());
}

#[tokio::test]
async fn users_made_by_commands_sign_in_over_http_on_sqlite() {
    users_made_by_commands_sign_in_over_http(&[("CHAT_JWT_SECRET", SECRET)]).await;
}

#[tokio::test]
async fn users_made_by_commands_sign_in_over_http_on_postgres() {
    let Some(db) = database().await else {
        return;
    };
    users_made_by_commands_sign_in_over_http(&[
        ("CHAT_JWT_SECRET", SECRET),
        ("CHAT_DATABASE_URL", &db.url),
    ])
    .await;
}

#[tokio::test]
async fn a_password_set_on_postgres_closes_the_users_sockets_on_a_running_server_at_once() {
    let Some(db) = database().await else {
        return;
    };
    let env = [("CHAT_JWT_SECRET", SECRET), ("CHAT_DATABASE_URL", &db.url)];
    let dir = tempfile::tempdir().unwrap();
    let mut program = Program::start(dir.path(), &env);
    let remote = Remote::new(&program.base);
    let dan = remote.user("dan").await;
    let mut socket = crate::support::Ws::connect(&program.base, &dan.token, None).await;
    let mut set_env = env.to_vec();
    set_env.push(("CHAT_USER_PASSWORD", "a new password"));
    let set = run(
        dir.path(),
        &set_env,
        &["user", "set-password", "--username", "dan"],
        "",
    );
    assert!(set.status.success(), "{}", stderr(&set));
    // The sign-out travels over LISTEN/NOTIFY: well before any periodic check of the session.
    assert_eq!(socket.closed().await, Some(4001));
    assert!(program.terminate().success());
}

#[tokio::test]
async fn print_config_shows_the_settings_with_secrets_masked_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CHAT_JWT_SECRET", SECRET),
        (
            "CHAT_DATABASE_URL",
            "postgres://chat:hunter2-db-password@db.invalid:5432/chat",
        ),
        ("CHAT_METRICS_TOKEN", "metrics-token-not-shown"),
        ("CHAT_LOG_FORMAT", "json"),
        (
            "CHAT_AMQP_URL",
            "amqp://chat:hunter2-amqp-password@broker.invalid:5672/%2f",
        ),
        (
            "CHAT_WEBHOOK_URLS",
            "https://hooks.invalid/a,https://u:hunter2-hook-password@hooks.invalid/b",
        ),
        ("CHAT_WEBHOOK_SECRET", "webhook-secret-not-shown-0123456789"),
    ];
    let output = run(
        dir.path(),
        &env,
        &["--print-config", "--ws-queue", "77"],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    for line in [
        "CHAT_ADDR=127.0.0.1:8080",
        "CHAT_WS_QUEUE=77",
        "CHAT_LOG_FORMAT=json",
        "CHAT_JWT_SECRET=********",
        "CHAT_METRICS_TOKEN=********",
        "CHAT_DATABASE_URL=postgres://chat:********@db.invalid:5432/chat",
        "# CHAT_JWT_AUDIENCE is not set",
        "CHAT_AMQP_URL=amqp://chat:********@broker.invalid:5672/%2f",
        "CHAT_AMQP_EXCHANGE=chat.events",
        "CHAT_WEBHOOK_URLS=https://hooks.invalid/a,https://u:********@hooks.invalid/b",
        "CHAT_WEBHOOK_SECRET=********",
        "CHAT_WEBHOOK_TIMEOUT_SECS=10",
        "CHAT_WEBHOOK_MAX_ATTEMPTS=8",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} in:\n{shown}");
    }
    for secret in [
        SECRET,
        "hunter2-db-password",
        "metrics-token-not-shown",
        "hunter2-amqp-password",
        "hunter2-hook-password",
        "webhook-secret-not-shown",
    ] {
        assert!(!shown.contains(secret), "{secret} in:\n{shown}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "printing the configuration touches nothing"
    );

    let output = run(
        dir.path(),
        &[("CHAT_USER_PASSWORD", "a password not shown")],
        &[
            "user",
            "set-password",
            "--username",
            "erin",
            "--print-config",
        ],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(shown.contains("CHAT_USER_USERNAME=erin\n"), "{shown}");
    assert!(shown.contains("CHAT_USER_PASSWORD=********\n"), "{shown}");
    assert!(shown.contains("CHAT_DATA_DIR=./data\n"), "{shown}");
    assert!(!shown.contains("a password not shown"));
}
