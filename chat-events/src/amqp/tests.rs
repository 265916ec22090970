//! Against a real RabbitMQ, named by `CHAT_TEST_AMQP_URL` (skipped without it), except the
//! failures to connect, which need no broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::outbox::{EventType, PendingEvent};
use chat_core::ports::EventSink;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{AmqpOptions, AmqpSink};
use crate::Error;

/// The test broker's URL, or `None` (with a note) when none is configured.
fn broker() -> Option<String> {
    match std::env::var("CHAT_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipped: CHAT_TEST_AMQP_URL is not set");
            None
        }
    }
}

fn event(kind: EventType) -> PendingEvent {
    let id = uuid::Uuid::new_v4();
    PendingEvent {
        id,
        kind,
        body: serde_json::json!({"id": id, "type": kind.as_str()}).to_string(),
        attempts: 0,
    }
}

/// A consumer's view of a fresh exchange: a queue bound to it with `pattern`, deleted with
/// the test's connection, and the exchange deleted by [`Consumer::finish`].
struct Consumer {
    _connection: Connection,
    channel: Channel,
    exchange: String,
    queue: String,
}

impl Consumer {
    async fn bind(url: &str, pattern: &str) -> Consumer {
        let exchange = format!("chat.events.test.{}", uuid::Uuid::new_v4());
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        // Declared as the sink declares it, so whichever comes first, the other agrees.
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions::exclusive().auto_delete(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = queue.name().as_str().to_owned();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                pattern.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Consumer {
            _connection: connection,
            channel,
            exchange,
            queue,
        }
    }

    /// Every message waiting in the queue, in order.
    async fn drain(&self) -> Vec<lapin::message::Delivery> {
        let mut got = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            got.push(message.delivery);
        }
        got
    }

    async fn finish(self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
}

fn sink(url: &str, exchange: &str) -> AmqpSink {
    AmqpSink::new(AmqpOptions {
        exchange: exchange.into(),
        timeout: Duration::from_secs(5),
        ..AmqpOptions::new(url)
    })
    .unwrap()
}

#[tokio::test]
async fn a_batch_is_published_persistent_with_type_as_routing_key_in_order() {
    let Some(url) = broker() else { return };
    let consumer = Consumer::bind(&url, "message.*").await;
    let sink = sink(&url, &consumer.exchange);
    assert_eq!(sink.channel(), "amqp");
    assert_eq!(sink.give_up_after(), None);
    let batch = [
        event(EventType::MessageCreated),
        event(EventType::RoomCreated),
        event(EventType::MessageUpdated),
        event(EventType::MessageDeleted),
        event(EventType::MessageCreated),
    ];
    sink.send(&batch).await.unwrap();

    let got = consumer.drain().await;
    // `room.created` does not match `message.*`; the others arrive in the order sent.
    let expected: Vec<&PendingEvent> = batch
        .iter()
        .filter(|e| e.kind != EventType::RoomCreated)
        .collect();
    assert_eq!(got.len(), expected.len());
    for (delivery, event) in got.iter().zip(expected) {
        assert_eq!(delivery.routing_key.as_str(), event.kind.as_str());
        assert_eq!(delivery.data, event.body.as_bytes());
        let properties = &delivery.properties;
        assert_eq!(
            properties.message_id().as_ref().map(|id| id.as_str()),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(properties.delivery_mode(), &Some(2));
        assert_eq!(
            properties.content_type().as_ref().map(|t| t.as_str()),
            Some("application/json")
        );
    }
    consumer.finish().await;
}

#[tokio::test]
async fn an_unreachable_broker_fails_with_nothing_delivered() {
    // Nothing listens on port 1 here: the connection is refused.
    let sink = sink("amqp://guest:guest@127.0.0.1:1/%2f", "chat.events");
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        sink.send(&[event(EventType::UserCreated)]),
    )
    .await
    .expect("a refused connection fails at once")
    .unwrap_err();
    assert_eq!(error.delivered, 0);
}

#[test]
fn settings_are_checked_when_the_sink_is_made() {
    assert!(matches!(
        AmqpSink::new(AmqpOptions::new("http://127.0.0.1/")),
        Err(Error::AmqpUrl(_))
    ));
    assert!(matches!(
        AmqpSink::new(AmqpOptions {
            exchange: String::new(),
            ..AmqpOptions::new("amqp://127.0.0.1/%2f")
        }),
        Err(Error::EmptyExchange)
    ));
    let amqps = AmqpSink::new(AmqpOptions::new("amqps://broker.example/%2f"));
    if cfg!(feature = "tls") {
        assert!(amqps.is_ok());
    } else {
        assert!(matches!(amqps, Err(Error::TlsDisabled("amqps"))));
    }
}

#[tokio::test]
async fn a_broker_that_never_answers_fails_within_the_timeout() {
    // A listener that accepts and stays silent: the AMQP handshake never completes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let sink = AmqpSink::new(AmqpOptions {
        timeout: Duration::from_millis(500),
        ..AmqpOptions::new(format!("amqp://guest:guest@{addr}/%2f"))
    })
    .unwrap();
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        sink.send(&[event(EventType::UserCreated)]),
    )
    .await
    .expect("the sink's own timeout ends the attempt")
    .unwrap_err();
    assert_eq!(error.delivered, 0);
    silent.abort();
}

/// A TCP proxy to the broker that the test can take down (closing every connection through
/// it and refusing new ones, as a restarting broker does) and bring up again on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            upstream,
            accept: None,
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
                connections.lock().unwrap().push(relay);
            }
        }));
    }

    /// Closes every connection and the listening port.
    fn down(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    async fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// `url` with its host and port replaced by `127.0.0.1:port`.
fn through(url: &str, port: u16) -> (String, String) {
    let uri: AMQPUri = url.parse().unwrap();
    let upstream = format!("{}:{}", uri.authority.host, uri.authority.port);
    let user = &uri.authority.userinfo;
    let vhost = uri.vhost.replace('/', "%2f");
    let proxied = format!(
        "amqp://{}:{}@127.0.0.1:{port}/{vhost}",
        user.username, user.password
    );
    (upstream, proxied)
}

#[tokio::test]
async fn the_sink_reconnects_by_itself_after_its_connection_is_lost() {
    let Some(url) = broker() else { return };
    let consumer = Consumer::bind(&url, "#").await;
    let (upstream, _) = through(&url, 0);
    let mut proxy = Proxy::start(upstream).await;
    let (_, proxied) = through(&url, proxy.port);
    let sink = sink(&proxied, &consumer.exchange);

    let first = event(EventType::MessageCreated);
    sink.send(std::slice::from_ref(&first)).await.unwrap();

    // The broker is gone: sends fail at once, nothing counted delivered.
    proxy.down();
    let lost = event(EventType::MessageUpdated);
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        sink.send(std::slice::from_ref(&lost)),
    )
    .await
    .expect("a lost connection fails the send")
    .unwrap_err();
    assert_eq!(error.delivered, 0);

    // It is back: the next send reconnects and delivers.
    proxy.up().await;
    let again = [lost.clone(), event(EventType::MessageDeleted)];
    sink.send(&again).await.unwrap();

    let got: Vec<String> = consumer
        .drain()
        .await
        .iter()
        .map(|d| String::from_utf8(d.data.clone()).unwrap())
        .collect();
    assert_eq!(
        got,
        [&first, &again[0], &again[1]].map(|e| e.body.clone()),
        "each event once, in order"
    );
    proxy.down();
    consumer.finish().await;
}
