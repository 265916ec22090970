//! CORS: browsers on the listed origins may call the API, without credentials; others may not.

use reqwest::{Method, StatusCode};

use crate::support::TestServer;

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/v1/rooms", server.base))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn listed_origins_may_call_the_api_and_others_may_not() {
    let server =
        TestServer::start_with(|c| c.allowed_origins = vec!["https://chat.example/".into()]).await;
    let alice = server.register("alice").await;

    let allowed = preflight(&server, "https://chat.example").await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://chat.example"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );

    let refused = preflight(&server, "https://evil.example").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let res = reqwest::Client::new()
        .get(format!("{}/v1/users/me", server.base))
        .bearer_auth(&alice.token)
        .header("origin", "https://chat.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://chat.example"
    );
}

#[tokio::test]
async fn without_listed_origins_no_cors_headers_are_sent() {
    let server = TestServer::start().await;
    let res = preflight(&server, "https://chat.example").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_origin_that_is_not_one_stops_the_server_from_starting() {
    let mut config = chat_server::Config::defaults();
    config.addr = "127.0.0.1:0".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.allowed_origins = vec!["chat.example/app".into()];
    let Err(err) = chat_server::start(config).await else {
        panic!("a server started with an origin that is not one");
    };
    assert!(err.to_string().contains("CHAT_ALLOWED_ORIGINS"), "{err}");
}
