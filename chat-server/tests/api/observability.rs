//! What an operator watches: `/metrics` following the traffic, request ids in responses and in
//! the log, and JSON log lines.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{Program, Remote, TestServer, SECRET};

/// The samples of a text exposition: `name{labels}` -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

async fn metrics(server: &TestServer) -> (String, HashMap<String, f64>) {
    let res = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let parsed = samples(&text);
    (text, parsed)
}

fn sample(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("{series} in {samples:?}"))
}

const SENDS: &str = "chat_http_request_duration_seconds_count{method=\"POST\",\
                     route=\"/v1/rooms/{id}/messages\",status=\"2xx\"}";

#[tokio::test]
async fn metrics_follow_the_traffic() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let (_, before) = metrics(&server).await;
    assert_eq!(sample(&before, "chat_ws_connections"), 0.0);
    assert_eq!(sample(&before, "chat_messages_sent_total"), 0.0);
    assert!(!before.contains_key(SENDS));

    let mut alice_ws = server.ws(&alice.token).await;
    let mut bob_ws = server.ws(&bob.token).await;
    let (_, open) = metrics(&server).await;
    assert_eq!(sample(&open, "chat_ws_connections"), 2.0);

    // Three sends over HTTP, one over the socket, and a retry that stores nothing.
    for body in ["one", "two"] {
        server.send(&alice, &room, body).await;
    }
    let path = format!("/v1/rooms/{room}/messages");
    let once = json!({"body": "three", "client_id": "c-3"});
    let (status, _) = server.post(&path, Some(&alice.token), once.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.post(&path, Some(&alice.token), once).await;
    assert_eq!(status, StatusCode::OK, "a retry");
    alice_ws
        .send(json!({"type": "message.send", "room_id": room, "body": "four", "client_id": "c-4"}))
        .await;
    alice_ws.next_of("ack").await;
    let mut seen = 0;
    while seen < 4 {
        if bob_ws.next().await["type"] == "message.created" {
            seen += 1;
        }
    }
    let (status, _) = server
        .request(
            reqwest::Method::GET,
            &format!("/v1/rooms/{}", uuid::Uuid::new_v4()),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unknown = reqwest::get(format!("{}/no/such/{room}", server.base))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let (text, after) = metrics(&server).await;
    assert_eq!(sample(&after, "chat_messages_sent_total"), 4.0);
    // Each message reached both sockets (and presence and acks add more).
    let delivered =
        sample(&after, "chat_ws_deliveries_total") - sample(&before, "chat_ws_deliveries_total");
    assert!(delivered >= 8.0, "{delivered} deliveries");
    assert_eq!(sample(&after, SENDS), 4.0, "three creations and a retry");
    let le_inf = SENDS
        .replace("_count{", "_bucket{")
        .replace("\"}", "\",le=\"+Inf\"}");
    assert_eq!(sample(&after, &le_inf), 4.0);
    assert_eq!(
        sample(
            &after,
            "chat_http_request_duration_seconds_count{method=\"GET\",\
             route=\"/v1/rooms/{id}\",status=\"4xx\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "chat_http_request_duration_seconds_count{method=\"GET\",\
             route=\"unmatched\",status=\"4xx\"}"
        ),
        1.0
    );
    assert!(!text.contains(&room), "no id makes a label");
    for cause in ["queue_full", "write_timeout"] {
        let series = format!("chat_ws_slow_consumers_total{{cause=\"{cause}\"}}");
        assert_eq!(sample(&after, &series), 0.0, "nobody was cut");
    }

    drop(bob_ws);
    let mut connections = 2.0;
    for _ in 0..100 {
        connections = sample(&metrics(&server).await.1, "chat_ws_connections");
        if connections == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connections, 1.0, "a closed socket leaves the gauge");
}

#[tokio::test]
async fn a_metrics_token_guards_the_metrics() {
    let server = TestServer::start_with(|c| c.metrics_token = Some("metrics-token-1".into())).await;
    let get = |token: Option<&'static str>| {
        let mut req = reqwest::Client::new().get(format!("{}/metrics", server.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    for token in [None, Some("metrics-token-2"), Some("metrics-token-10")] {
        let res = get(token).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    let res = get(Some("metrics-token-1")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("chat_ws_connections 0"));
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .expect("every response has a request id")
            .to_str()
            .unwrap()
            .to_owned()
    };
    let res = http
        .get(format!("{}/health", server.base))
        .header("x-request-id", "edge-7f3a:42/b+c=")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&res), "edge-7f3a:42/b+c=");

    let mut generated = Vec::new();
    for path in ["/health", "/v1/users/me", "/no/such/route"] {
        for sent in [None, Some("has spaces"), Some(&*"x".repeat(129))] {
            let mut req = http.get(format!("{}{path}", server.base));
            if let Some(sent) = sent {
                req = req.header("x-request-id", sent);
            }
            let id = id_of(&req.send().await.unwrap());
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
            generated.push(id);
        }
    }
    let count = generated.len();
    generated.sort();
    generated.dedup();
    assert_eq!(generated.len(), count, "every generated id is new");
}

#[tokio::test]
async fn json_logs_carry_each_request_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut program = Program::start(
        dir.path(),
        &[("CHAT_JWT_SECRET", SECRET), ("CHAT_LOG_FORMAT", "json")],
    );
    let remote = Remote::new(&program.base);
    let user = remote.user("logger").await;
    let res = reqwest::Client::new()
        .get(format!("{}/v1/users/{}", program.base, user.id))
        .bearer_auth(&user.token)
        .header("x-request-id", "json-log-check-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(program.terminate().success());

    let log = program.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("a JSON line: {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["request_id"] == "json-log-check-1")
        .unwrap_or_else(|| panic!("the request's line in {log}"));
    assert_eq!(line["message"], "request");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/v1/users/{id}");
    assert_eq!(line["status"], 200);
    assert!(line["elapsed_ms"].is_number());
}
