//! A host application's tokens over HTTP and the WebSocket, the audience of the server's own
//! tokens, and settings that must stop the server at start.

use std::path::PathBuf;

use chat_server::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{TestServer, TestUser, SECRET};

const HOST_ISSUER: &str = "https://host.example";

/// The test key pairs of chat-core (made with `openssl genpkey` for the tests only).
fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../chat-core/tests/keys/{name}"))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn host_token(claims: &Value) -> String {
    let private = std::fs::read(key_file("ed_private.pem")).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        claims,
        &EncodingKey::from_ed_pem(&private).unwrap(),
    )
    .unwrap()
}

fn host_claims(sub: &str) -> Value {
    json!({
        "sub": sub, "iss": HOST_ISSUER, "aud": "chat",
        "iat": now(), "exp": now() + 600, "preferred_username": "hilda",
    })
}

fn with_host(c: &mut Config) {
    c.host_jwt_public_key = Some(key_file("ed_public.pem"));
    c.host_jwt_issuer = Some(HOST_ISSUER.into());
    c.host_jwt_audience = Some("chat".into());
}

#[tokio::test]
async fn a_host_token_signs_its_user_in_over_http_and_the_socket() {
    let server = TestServer::start_with(with_host).await;
    let token = host_token(&host_claims("u-1"));
    let (status, me) = server.get("/v1/users/me", &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "hilda");
    let (_, again) = server
        .get("/v1/users/me", &host_token(&host_claims("u-1")))
        .await;
    assert_eq!(again["id"], me["id"], "found again by issuer and subject");

    // The provisioned user chats like anyone: a room with a registered user, live delivery.
    let hilda = TestUser {
        id: me["id"].as_str().unwrap().to_owned(),
        token,
    };
    let ivan = server.register("ivan").await;
    let room = server.room(&ivan, &[&hilda]).await;
    let mut socket = server.ws(&hilda.token).await;
    server.send(&ivan, &room, "hello hilda").await;
    assert_eq!(
        socket.next_of("message.created").await["message"]["body"],
        "hello hilda"
    );
    // No password signs a provisioned user in.
    let (status, _) = server
        .post(
            "/v1/auth/login",
            None,
            json!({"login": "hilda", "password": "password-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The host owns the account: it signs its user out and deletes it, not the chat API.
    let (status, _) = server
        .post("/v1/auth/logout", Some(&hilda.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            "/v1/users/me",
            Some(&hilda.token),
            Some(r#"{"password": "password-123"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.get("/v1/users/me", &hilda.token).await;
    assert_eq!(status, StatusCode::OK, "nothing changed");
}

#[tokio::test]
async fn host_tokens_with_the_wrong_issuer_audience_or_algorithm_are_401() {
    let server = TestServer::start_with(with_host).await;
    let mut spoiled = Vec::new();
    for (field, value) in [
        ("iss", json!("https://evil.example")),
        ("aud", json!("another-service")),
        ("exp", json!(now() - 60)),
    ] {
        let mut c = host_claims("u-2");
        c[field] = value;
        spoiled.push((format!("{field} spoiled"), host_token(&c)));
    }
    let mut no_aud = host_claims("u-2");
    no_aud.as_object_mut().unwrap().remove("aud");
    spoiled.push(("no aud".into(), host_token(&no_aud)));
    // HS256 keyed with the public key file's bytes: the confusion pinning prevents.
    let public = std::fs::read(key_file("ed_public.pem")).unwrap();
    spoiled.push((
        "HS256 with the public key".into(),
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &host_claims("u-2"),
            &EncodingKey::from_secret(&public),
        )
        .unwrap(),
    ));
    for (what, token) in spoiled {
        let (status, body) = server.get("/v1/users/me", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["code"], "unauthorized", "{what}");
    }
    let (status, found) = server
        .get("/v1/users?q=hilda", &server.register("judy").await.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found["users"],
        json!([]),
        "no refused token provisioned anyone"
    );
}

#[tokio::test]
async fn with_an_audience_the_servers_own_tokens_carry_and_need_it() {
    let server = TestServer::start_with(|c| c.jwt_audience = Some("chat-api".into())).await;
    let kim = server.register("kim").await;
    let (status, _) = server.get("/v1/users/me", &kim.token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a token the server issued has the audience"
    );
    let forged = |aud: Option<&str>| {
        let mut c = json!({"sub": kim.id, "iss": "chat-server", "jti": "j",
                           "iat": now(), "exp": now() + 600,
                           "sid": crate::support::session_of(&kim.token)});
        if let Some(aud) = aud {
            c["aud"] = json!(aud);
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    for aud in [None, Some("another-api")] {
        let (status, _) = server.get("/v1/users/me", &forged(aud)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "aud {aud:?}");
    }
    let (status, _) = server.get("/v1/users/me", &forged(Some("chat-api"))).await;
    assert_eq!(status, StatusCode::OK);
}

/// A change to a server's settings.
type Tweak = dyn Fn(&mut Config);

#[tokio::test]
async fn half_configured_or_unusable_host_settings_stop_the_start() {
    let cases: Vec<(&str, Box<Tweak>)> = vec![
        (
            "CHAT_HOST_JWT_SECRET",
            Box::new(|c| {
                c.host_jwt_secret = Some(SECRET.into());
                c.host_jwt_issuer = Some(HOST_ISSUER.into());
            }),
        ),
        (
            "CHAT_HOST_JWT_ISSUER",
            Box::new(|c| {
                with_host(c);
                c.host_jwt_issuer = Some("chat-server".into());
            }),
        ),
        (
            "CHAT_JWT_AUDIENCE",
            Box::new(|c| c.jwt_audience = Some(String::new())),
        ),
        (
            "audience",
            Box::new(|c| {
                with_host(c);
                c.host_jwt_audience = Some(String::new());
            }),
        ),
        (
            "issuer without a key",
            Box::new(|c| c.host_jwt_issuer = Some(HOST_ISSUER.into())),
        ),
        (
            "key without an issuer",
            Box::new(|c| c.host_jwt_public_key = Some(key_file("ed_public.pem"))),
        ),
        (
            "a short secret",
            Box::new(|c| {
                c.host_jwt_secret = Some("short".into());
                c.host_jwt_issuer = Some(HOST_ISSUER.into());
            }),
        ),
        (
            "a private key",
            Box::new(|c| {
                c.host_jwt_public_key = Some(key_file("ed_private.pem"));
                c.host_jwt_issuer = Some(HOST_ISSUER.into());
            }),
        ),
        (
            "a missing key file",
            Box::new(|c| {
                c.host_jwt_public_key = Some(key_file("no-such-key.pem"));
                c.host_jwt_issuer = Some(HOST_ISSUER.into());
            }),
        ),
        (
            "an algorithm the key cannot do",
            Box::new(|c| {
                with_host(c);
                c.host_jwt_algorithm = Some("RS256".into());
            }),
        ),
    ];
    for (what, tweak) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_path_buf();
        config.database_url = None;
        config.jwt_secret = Some(SECRET.into());
        tweak(&mut config);
        match chat_server::start(config).await {
            Ok(server) => {
                server.shutdown().await;
                panic!("{what}: the server started");
            }
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("HOST") || e.contains("host") || e.contains("CHAT_JWT"),
                    "{what}: {e}"
                );
            }
        }
    }
}
