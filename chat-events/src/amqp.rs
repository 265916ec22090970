//! The AMQP sink: events published to a durable topic exchange, confirmed by the broker.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::outbox::PendingEvent;
use chat_core::ports::{EventSink, SinkError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};

use crate::Error;

/// How to reach the broker and where to publish.
#[derive(Clone)]
pub struct AmqpOptions {
    /// `amqp://user:password@host:port/vhost` (`%2f` for the default vhost `/`).
    pub url: String,
    /// The topic exchange events are published to; declared durable if missing.
    pub exchange: String,
    /// How long connecting, or publishing one batch until its last confirm, may take.
    pub timeout: Duration,
}

impl AmqpOptions {
    /// The default exchange name.
    pub const DEFAULT_EXCHANGE: &'static str = "chat.events";
    /// The default timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Options for the broker at `url`, with the default exchange and timeout.
    pub fn new(url: impl Into<String>) -> AmqpOptions {
        AmqpOptions {
            url: url.into(),
            exchange: AmqpOptions::DEFAULT_EXCHANGE.into(),
            timeout: AmqpOptions::DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for AmqpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's user info holds the password.
        f.debug_struct("AmqpOptions")
            .field("exchange", &self.exchange)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Publishes each event to a durable topic exchange with the event's type as routing key,
/// as a persistent `application/json` message whose `message_id` is the event's id, and
/// counts it delivered once the broker confirmed it (publisher confirms).
///
/// It connects on the first send, and after any failure drops the connection and connects
/// anew on the next one, so it comes back by itself once a restarted broker is reachable.
/// Events are never given up: they wait in the outbox for the broker.
pub struct AmqpSink {
    uri: AMQPUri,
    exchange: String,
    timeout: Duration,
    /// The open connection, if any; held across a send so batches never interleave.
    link: Mutex<Option<Link>>,
}

/// A connection and the confirming channel publishing on it.
struct Link {
    // Kept so the connection lives as long as its channel (dropping it closes the connection).
    _connection: Connection,
    channel: Channel,
}

impl AmqpSink {
    /// A sink for the broker of `options.url`; checks the settings, connects to nothing yet
    /// (a broker that is down at start only delays delivery).
    pub fn new(options: AmqpOptions) -> Result<AmqpSink, Error> {
        let uri: AMQPUri = options.url.trim().parse().map_err(Error::AmqpUrl)?;
        if uri.scheme == AMQPScheme::AMQPS && !cfg!(feature = "tls") {
            return Err(Error::TlsDisabled("amqps"));
        }
        if options.exchange.is_empty() {
            return Err(Error::EmptyExchange);
        }
        Ok(AmqpSink {
            uri,
            exchange: options.exchange,
            timeout: options.timeout,
            link: Mutex::new(None),
        })
    }

    /// Connects, opens a channel in confirm mode and declares the exchange.
    async fn connect(&self) -> Result<Link, lapin::Error> {
        let properties = ConnectionProperties::default().with_connection_name("chat-events".into());
        let connection = Connection::connect_uri(self.uri.clone(), properties).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(Link {
            _connection: connection,
            channel,
        })
    }

    /// Publishes the events on `channel`, then waits for their confirms in order, all before
    /// `deadline`; returns how many of the first were confirmed, and why the next was not.
    async fn publish(
        &self,
        channel: &Channel,
        events: &[PendingEvent],
        deadline: Instant,
    ) -> Result<(), SinkError> {
        let mut confirms = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            let properties = BasicProperties::default()
                .with_content_type("application/json".into())
                // 2: persistent, written to disk by a durable queue.
                .with_delivery_mode(2)
                .with_message_id(event.id.to_string().into());
            let published = channel.basic_publish(
                self.exchange.as_str().into(),
                event.kind.as_str().into(),
                BasicPublishOptions::default(),
                event.body.as_bytes(),
                properties,
            );
            match timeout_at(deadline, published).await {
                Ok(Ok(confirm)) => confirms.push(confirm),
                Ok(Err(e)) => {
                    failure = Some(format!("publishing failed: {e}"));
                    break;
                }
                Err(_) => {
                    failure = Some(self.too_slow());
                    break;
                }
            }
        }
        // Publishes are pipelined; the broker confirms them in order, and whatever was
        // published before a failure may still have been confirmed.
        let published = confirms.len();
        for (delivered, confirm) in confirms.into_iter().enumerate() {
            let reason = match timeout_at(deadline, confirm).await {
                Ok(Ok(confirmation)) if confirmation.is_ack() => continue,
                Ok(Ok(_)) => "the broker refused the message (nack)".to_owned(),
                Ok(Err(e)) => format!("no confirm: {e}"),
                Err(_) => self.too_slow(),
            };
            return Err(SinkError { delivered, reason });
        }
        match failure {
            Some(reason) => Err(SinkError {
                delivered: published,
                reason,
            }),
            None => Ok(()),
        }
    }

    fn too_slow(&self) -> String {
        format!("the broker did not confirm within {:?}", self.timeout)
    }
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Host and vhost only: the URL's user info holds the password.
        f.debug_struct("AmqpSink")
            .field("host", &self.uri.authority.host)
            .field("port", &self.uri.authority.port)
            .field("vhost", &self.uri.vhost)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventSink for AmqpSink {
    fn channel(&self) -> &str {
        "amqp"
    }

    fn give_up_after(&self) -> Option<u32> {
        None
    }

    async fn send(&self, events: &[PendingEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut link = self.link.lock().await;
        // A connection the broker or the network closed is noticed here, before publishing,
        // so a restarted broker costs no failed batch once its port answers again.
        if link
            .as_ref()
            .is_some_and(|l| !l.channel.status().connected())
        {
            *link = None;
        }
        let channel = match &mut *link {
            Some(open) => open.channel.clone(),
            None => {
                let deadline = Instant::now() + self.timeout;
                let opened = match timeout_at(deadline, self.connect()).await {
                    Ok(Ok(opened)) => opened,
                    Ok(Err(e)) => {
                        return Err(SinkError {
                            delivered: 0,
                            reason: format!("connecting to the broker failed: {e}"),
                        })
                    }
                    Err(_) => {
                        return Err(SinkError {
                            delivered: 0,
                            reason: format!(
                                "connecting to the broker took over {:?}",
                                self.timeout
                            ),
                        })
                    }
                };
                link.insert(opened).channel.clone()
            }
        };
        let result = self
            .publish(&channel, events, Instant::now() + self.timeout)
            .await;
        if result.is_err() {
            // Whatever failed (a nack, a closed channel, a lost connection), the next send
            // starts on a fresh connection rather than guess what state this one is in.
            *link = None;
        }
        result
    }
}

#[cfg(test)]
mod tests;
