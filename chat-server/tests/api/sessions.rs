//! Sign-in sessions: logout, refresh-token reuse and password changes revoke tokens over HTTP
//! and for new sockets, and close the sockets already open, on every backend.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{TestServer, Ws};

/// A full sign-in: the login body, with access and refresh tokens.
async fn sign_in(server: &TestServer, login: &str, password: &str) -> Value {
    let (status, body) = server
        .post(
            "/v1/auth/login",
            None,
            json!({"login": login, "password": password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn access(login: &Value) -> &str {
    login["access_token"].as_str().unwrap()
}

async fn refresh(server: &TestServer, login: &Value) -> (StatusCode, Value) {
    server
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await
}

async fn me_status(server: &TestServer, token: &str) -> StatusCode {
    server.get("/v1/users/me", token).await.0
}

/// The status with which the server refuses a WebSocket upgrade with this token.
async fn refused_upgrade(server: &TestServer, token: &str) -> u16 {
    let mut request = server.ws_url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_session_everywhere_and_only_it() {
    for (backend, server) in TestServer::on_each_backend().await {
        logout_on(backend, server).await;
    }
}

async fn logout_on(backend: &str, server: TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let phone = sign_in(&server, "alice", "password-123").await;
    let laptop = sign_in(&server, "alice", "password-123").await;
    let mut phone_ws = server.ws(access(&phone)).await;
    let mut laptop_ws = server.ws(access(&laptop)).await;
    let (_, ticket) = server
        .post("/v1/ws/ticket", Some(access(&phone)), json!({}))
        .await;

    let (status, body) = server.post("/v1/auth/logout", None, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: {body}");
    let (status, body) = server
        .post("/v1/auth/logout", Some(access(&phone)), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{backend}: {body}");

    assert_eq!(phone_ws.closed().await, Some(4001), "{backend}");
    assert_eq!(
        me_status(&server, access(&phone)).await,
        StatusCode::UNAUTHORIZED,
        "{backend}: the access token is revoked"
    );
    let (status, body) = refresh(&server, &phone).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "{backend}: the refresh token is revoked: {body}"
    );
    assert_eq!(
        refused_upgrade(&server, access(&phone)).await,
        401,
        "{backend}"
    );
    let by_ticket = format!(
        "{}?ticket={}",
        server.ws_url,
        ticket["ticket"].as_str().unwrap()
    );
    match tokio_tungstenite::connect_async(by_ticket.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 401, "{backend}: a ticket of a revoked session")
        }
        other => panic!("{backend}: expected 401, got {:?}", other.map(|_| ())),
    }
    let (status, _) = server
        .post("/v1/auth/logout", Some(access(&phone)), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{backend}: once is enough"
    );

    // The other session is untouched: its token, its refresh token and its socket.
    assert_eq!(me_status(&server, access(&laptop)).await, StatusCode::OK);
    server.send(&bob, &room, "still there?").await;
    let created = laptop_ws.next_of("message.created").await;
    assert_eq!(created["message"]["body"], "still there?", "{backend}");
    let (status, body) = refresh(&server, &laptop).await;
    assert_eq!(status, StatusCode::OK, "{backend}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_revokes_its_whole_session() {
    for (backend, server) in TestServer::on_each_backend().await {
        reuse_on(backend, server).await;
    }
}

async fn reuse_on(backend: &str, server: TestServer) {
    server.register("carol").await;
    let first = sign_in(&server, "carol", "password-123").await;
    let other = sign_in(&server, "carol", "password-123").await;
    let (status, second) = refresh(&server, &first).await;
    assert_eq!(status, StatusCode::OK, "{backend}: {second}");
    let mut ws = server.ws(access(&second)).await;

    let (status, body) = refresh(&server, &first).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{backend}: a refresh token works once: {body}"
    );
    for (what, token) in [("first", access(&first)), ("rotated", access(&second))] {
        assert_eq!(
            me_status(&server, token).await,
            StatusCode::UNAUTHORIZED,
            "{backend}: the {what} access token of the session"
        );
    }
    let (status, _) = refresh(&server, &second).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{backend}: the rotated refresh token"
    );
    assert_eq!(ws.closed().await, Some(4001), "{backend}");
    assert_eq!(
        me_status(&server, access(&other)).await,
        StatusCode::OK,
        "{backend}: the user's other session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_signs_out_every_other_session() {
    for (backend, server) in TestServer::on_each_backend().await {
        password_change_on(backend, server).await;
    }
}

async fn password_change_on(backend: &str, server: TestServer) {
    server.register("dave").await;
    let here = sign_in(&server, "dave", "password-123").await;
    let there = sign_in(&server, "dave", "password-123").await;
    let mut there_ws = server.ws(access(&there)).await;
    let path = "/v1/users/me/password";

    for (body, field) in [
        (
            json!({"current_password": "wrong-password", "new_password": "a new password"}),
            "current_password",
        ),
        (
            json!({"current_password": "password-123", "new_password": "short"}),
            "new_password",
        ),
        (
            json!({"current_password": "password-123", "new_password": "a new password", "user_id": "x"}),
            "user_id",
        ),
    ] {
        let (status, error) = server.post(path, Some(access(&here)), body).await;
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
    let (status, _) = server
        .post(
            path,
            None,
            json!({"current_password": "password-123", "new_password": "a new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_status(&server, access(&there)).await,
        StatusCode::OK,
        "{backend}: refused changes sign nobody out"
    );

    let (status, body) = server
        .post(
            path,
            Some(access(&here)),
            json!({"current_password": "password-123", "new_password": "a new password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{backend}: {body}");
    assert_eq!(there_ws.closed().await, Some(4001), "{backend}");
    assert_eq!(
        me_status(&server, access(&there)).await,
        StatusCode::UNAUTHORIZED,
        "{backend}"
    );
    assert_eq!(refresh(&server, &there).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_status(&server, access(&here)).await,
        StatusCode::OK,
        "{backend}: the current session goes on"
    );
    let (status, _) = refresh(&server, &here).await;
    assert_eq!(status, StatusCode::OK, "{backend}");
    let (status, _) = server
        .post(
            "/v1/auth/login",
            None,
            json!({"login": "dave", "password": "password-123"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{backend}: the old password"
    );
    sign_in(&server, "dave", "a new password").await;
    let mut ws = Ws::connect(&server.base, access(&here), None).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}
