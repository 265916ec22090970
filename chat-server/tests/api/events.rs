//! Domain events from outside: a real server with real sinks. A webhook receiver started here
//! gets every event type, signed; a RabbitMQ exchange gets them with their routing keys; a
//! broker that goes away loses nothing; and a server killed after a sink took an event but
//! before the outbox marked it sends that event again.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use warp::Filter;

use crate::support::{Program, TestServer, TestUser};

const SECRET: &str = "a webhook secret of at least thirty-two bytes";

/// Every event type of API.md.
const ALL_TYPES: [&str; 15] = [
    "user.created",
    "user.updated",
    "user.deleted",
    "room.created",
    "room.updated",
    "room.deleted",
    "member.joined",
    "member.updated",
    "member.left",
    "message.created",
    "message.updated",
    "message.deleted",
    "reaction.updated",
    "message.read",
    "presence.changed",
];

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Ok,
    /// Takes the event and never answers (the sender times out or dies first).
    Hang,
}

/// A webhook receiver: checks each request's signature and keeps the envelopes it accepted.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    answer: Arc<Mutex<Answer>>,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let answer = Arc::new(Mutex::new(Answer::Ok));
        let (kept, how) = (received.clone(), answer.clone());
        let hook = warp::path!("hook")
            .and(warp::post())
            .and(warp::header::<String>("x-chat-signature"))
            .and(warp::header::<String>("x-chat-event-id"))
            .and(warp::body::bytes())
            .then(move |signature: String, id: String, body: Bytes| {
                let (kept, how) = (kept.clone(), how.clone());
                async move {
                    let verified = chat_events::verify_signature(
                        SECRET.as_bytes(),
                        &signature,
                        &body,
                        SystemTime::now(),
                        Duration::from_secs(300),
                    );
                    if verified.is_err() {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let envelope: Value = serde_json::from_slice(&body).expect("JSON envelope");
                    assert_eq!(envelope["id"], id.as_str(), "X-Chat-Event-Id is the id");
                    kept.lock().unwrap().push(envelope);
                    let answer = *how.lock().unwrap();
                    if answer == Answer::Hang {
                        std::future::pending::<()>().await;
                    }
                    StatusCode::NO_CONTENT
                }
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(warp::serve(hook).incoming(listener).run());
        Receiver {
            url: format!("http://{addr}/hook"),
            received,
            answer,
            task,
        }
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let received = self.received();
                if done(&received) {
                    return received;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            let types: Vec<Value> = self.received().iter().map(|e| e["type"].clone()).collect();
            panic!("{what}: not within 20 s; received {types:?}")
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn types_of(events: &[Value]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn call(server: &TestServer, method: Method, path: &str, user: &TestUser, body: Value) {
    let (status, answer) = server
        .request(method, path, Some(&user.token), Some(&body.to_string()))
        .await;
    assert!(status.is_success(), "{path}: {status} {answer}");
}

/// Makes every kind of change once, through the API.
async fn change_everything(server: &TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    call(
        server,
        Method::PATCH,
        "/v1/users/me",
        &alice,
        json!({"display_name": "Alice"}),
    )
    .await;
    let room = server.room(&alice, &[&bob]).await;
    let at = |rest: &str| format!("/v1/rooms/{room}{rest}");
    call(
        server,
        Method::PATCH,
        &at(""),
        &alice,
        json!({"topic": "events"}),
    )
    .await;
    call(
        server,
        Method::POST,
        &at("/members"),
        &alice,
        json!({"user_id": carol.id}),
    )
    .await;
    let carol_at = at(&format!("/members/{}", carol.id));
    call(
        server,
        Method::PATCH,
        &carol_at,
        &alice,
        json!({"role": "admin"}),
    )
    .await;
    let message = server.send(&alice, &room, "hello @bob").await;
    let message_at = at(&format!("/messages/{}", message["id"].as_str().unwrap()));
    call(
        server,
        Method::PATCH,
        &message_at,
        &alice,
        json!({"body": "hello all"}),
    )
    .await;
    let reaction = format!("{message_at}/reactions/%3Athumbsup%3A");
    call(server, Method::PUT, &reaction, &bob, json!({})).await;
    call(server, Method::POST, &at("/read"), &bob, json!({"seq": 1})).await;
    // Connected (online), then gone (offline).
    drop(server.ws(&bob.token).await);
    call(server, Method::DELETE, &message_at, &alice, json!({})).await;
    call(server, Method::DELETE, &carol_at, &alice, json!({})).await;
    call(server, Method::DELETE, &at(""), &alice, json!({})).await;
    let password = json!({"password": "password-123"});
    call(server, Method::DELETE, "/v1/users/me", &carol, password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_reaches_a_webhook_signed_once_per_id() {
    let receiver = Receiver::start().await;
    let servers = TestServer::on_each_backend_with(|c| {
        c.webhook_urls = vec![receiver.url.clone()];
        c.webhook_secret = Some(SECRET.into());
        c.outbox_poll_ms = 10;
    })
    .await;
    for (backend, server) in servers {
        receiver.received.lock().unwrap().clear();
        change_everything(&server).await;
        let events = receiver
            .wait_until(backend, |events| types_of(events).len() == ALL_TYPES.len())
            .await;
        let expected: HashSet<String> = ALL_TYPES.iter().map(|t| (*t).to_owned()).collect();
        assert_eq!(types_of(&events), expected, "{backend}");
        let mut by_id: HashMap<String, &Value> = HashMap::new();
        for event in &events {
            assert_eq!(event["version"], "1", "{backend}: {event}");
            assert_eq!(event["source"], "chat-server", "{backend}: {event}");
            assert!(event["occurred_at"].is_string(), "{backend}: {event}");
            let id = event["id"].as_str().unwrap().to_owned();
            if let Some(earlier) = by_id.insert(id, event) {
                assert_eq!(earlier, event, "{backend}: a redelivery is the same event");
            }
        }
        let created: Vec<&&Value> = by_id
            .values()
            .filter(|e| e["type"] == "message.created")
            .collect();
        assert_eq!(created.len(), 1, "{backend}: one message, one event");
        assert_eq!(created[0]["payload"]["body"], "hello @bob", "{backend}");
        assert!(created[0]["room_id"].is_string(), "{backend}");
        let read = by_id
            .values()
            .find(|e| e["type"] == "message.read")
            .unwrap();
        assert_eq!(read["payload"]["read_seq"], 1, "{backend}");
        let deleted = by_id
            .values()
            .find(|e| e["type"] == "user.deleted")
            .unwrap();
        assert_eq!(deleted["payload"]["username"], "carol", "{backend}");
        assert!(deleted["payload"]["email"].is_null(), "{backend}");
    }
}

/// A TCP proxy the test can cut (every connection closed, new ones refused) and restore.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Proxy {
            addr,
            target,
            task: Some(tokio::spawn(relay(listener, target))),
        }
    }

    fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.task = Some(tokio::spawn(relay(listener, self.target)));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Accepts and pipes connections; aborting it drops the set, which closes every connection.
async fn relay(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    while let Ok((mut inbound, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// What a consumer got: routing key, envelope, delivery mode.
type Delivery = (String, Value, Option<u8>);
type Deliveries = Arc<Mutex<Vec<Delivery>>>;

/// The broker to test against; `None` (saying so) without `CHAT_TEST_AMQP_URL`.
fn amqp_url() -> Option<String> {
    let url = std::env::var("CHAT_TEST_AMQP_URL").ok();
    if url.is_none() {
        eprintln!("skipped: CHAT_TEST_AMQP_URL is not set");
    }
    url
}

/// A queue bound to every routing key of `exchange`, and what arrives on it.
async fn consume(url: &str, exchange: &str) -> Deliveries {
    use futures_util::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties, ExchangeKind};

    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "events-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let received: Deliveries = Arc::default();
    let kept = received.clone();
    tokio::spawn(async move {
        // The connection lives as long as this task.
        let _connection = connection;
        while let Some(Ok(delivery)) = consumer.next().await {
            let body: Value = serde_json::from_slice(&delivery.data).unwrap();
            let key = delivery.routing_key.to_string();
            let mode = *delivery.properties.delivery_mode();
            kept.lock().unwrap().push((key, body, mode));
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
    });
    received
}

async fn wait_for(received: &Deliveries, what: &str, done: impl Fn(&[Delivery]) -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !done(&received.lock().unwrap()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within 30 s"));
}

fn bodies_of(received: &[Delivery], kind: &str) -> Vec<String> {
    received
        .iter()
        .filter(|(key, _, _)| key == kind)
        .map(|(_, e, _)| e["payload"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_rabbitmq_with_their_routing_keys_and_wait_out_an_outage() {
    let Some(url) = amqp_url() else {
        return;
    };
    let broker: SocketAddr = {
        let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
        let host = authority.rsplit('@').next().unwrap();
        tokio::net::lookup_host(host).await.unwrap().next().unwrap()
    };
    for backend in ["sqlite", "postgres"] {
        let mut proxy = Proxy::start(broker).await;
        let proxied = url.replacen(&broker.to_string(), &proxy.addr.to_string(), 1);
        let exchange = format!("chat.events.test.{}", uuid::Uuid::new_v4().simple());
        let received = consume(&url, &exchange).await;
        let proxied_url = proxied.replace("localhost", "127.0.0.1");
        let tweak = |c: &mut chat_server::Config| {
            c.amqp_url = Some(proxied_url.clone());
            c.amqp_exchange = exchange.clone();
            c.outbox_poll_ms = 10;
        };
        let Some(server) = TestServer::start_on(backend, tweak).await else {
            continue;
        };
        let alice = server.register("alice").await;
        let room = server.room(&alice, &[]).await;
        server.send(&alice, &room, "before").await;
        wait_for(&received, backend, |r| {
            bodies_of(r, "message.created") == ["before"]
        })
        .await;
        for (key, event, mode) in received.lock().unwrap().iter() {
            assert_eq!(event["type"], key.as_str(), "{backend}: routing key = type");
            assert_eq!(*mode, Some(2), "{backend}: persistent");
        }
        let keys: HashSet<String> = received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect();
        for kind in [
            "user.created",
            "room.created",
            "member.joined",
            "message.created",
        ] {
            assert!(keys.contains(kind), "{backend}: {kind} in {keys:?}");
        }

        proxy.cut();
        for text in ["during one", "during two"] {
            server.send(&alice, &room, text).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            bodies_of(&received.lock().unwrap(), "message.created"),
            ["before"],
            "{backend}: nothing gets through while the broker is away"
        );
        let (_, metrics) = server_metrics(&server).await;
        assert!(
            metrics.contains("chat_outbox_pending{channel=\"amqp\"} 2"),
            "{backend}: the events wait in the outbox: {metrics}"
        );
        proxy.restore().await;
        wait_for(&received, backend, |r| {
            bodies_of(r, "message.created").len() >= 3
        })
        .await;
        let mut bodies = bodies_of(&received.lock().unwrap(), "message.created");
        bodies.dedup();
        assert_eq!(
            bodies,
            ["before", "during one", "during two"],
            "{backend}: all of them, in order"
        );
    }
}

async fn server_metrics(server: &TestServer) -> (StatusCode, String) {
    let res = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_before_it_marks_an_event_sent_sends_it_again() {
    let receiver = Receiver::start().await;
    *receiver.answer.lock().unwrap() = Answer::Hang;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CHAT_WEBHOOK_URLS", receiver.url.as_str()),
        ("CHAT_WEBHOOK_SECRET", SECRET),
        (
            "CHAT_JWT_SECRET",
            "a test secret of at least thirty-two bytes",
        ),
    ];
    let mut first = Program::start(dir.path(), &env);
    let (status, _) = reqwest::Client::new()
        .post(format!("{}/v1/auth/register", first.base))
        .json(&json!({"username": "alice", "password": "password-123"}))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let taken = receiver
        .wait_until("the first delivery", |events| !events.is_empty())
        .await;
    assert_eq!(taken[0]["type"], "user.created");
    // The receiver has the event; the server dies before it hears back, so before it marks it.
    first.kill();

    *receiver.answer.lock().unwrap() = Answer::Ok;
    let _second = Program::start(dir.path(), &env);
    let again = receiver
        .wait_until("the redelivery", |events| events.len() >= 2)
        .await;
    assert_eq!(again[1]["id"], taken[0]["id"], "the same event, again");
}
