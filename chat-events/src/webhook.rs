//! The webhook sink: one HTTPS (or HTTP) endpoint, each event `POST`ed on its own and signed.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chat_core::outbox::PendingEvent;
use chat_core::ports::{EventSink, SinkError};
use reqwest::header::CONTENT_TYPE;
use reqwest::{redirect, Client, Url};

use crate::signature::{signature_header, EVENT_ID_HEADER, SIGNATURE_HEADER};
use crate::Error;

/// The shortest secret a webhook is signed with: 256 bits, HMAC-SHA256's own strength.
pub const MIN_SECRET_BYTES: usize = 32;

/// How to reach and sign for one webhook endpoint.
#[derive(Clone)]
pub struct WebhookOptions {
    /// Where events are posted (`https://`; `http://` for a receiver on a trusted network).
    pub url: String,
    /// The HMAC key of `X-Chat-Signature`, at least [`MIN_SECRET_BYTES`] bytes.
    pub secret: Vec<u8>,
    /// How long one request may take, connecting included, before it counts as failed.
    pub timeout: Duration,
    /// Failed attempts after which an event is given up (dead-lettered).
    pub give_up_after: u32,
}

impl WebhookOptions {
    /// The default request timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default number of failed attempts before an event is given up.
    pub const DEFAULT_GIVE_UP_AFTER: u32 = 8;

    /// Options for `url` signed with `secret`, with the default timeout and attempts.
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> WebhookOptions {
        WebhookOptions {
            url: url.into(),
            secret: secret.into(),
            timeout: WebhookOptions::DEFAULT_TIMEOUT,
            give_up_after: WebhookOptions::DEFAULT_GIVE_UP_AFTER,
        }
    }
}

impl std::fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("url", &self.url)
            .field("secret", &"***")
            .field("timeout", &self.timeout)
            .field("give_up_after", &self.give_up_after)
            .finish()
    }
}

/// Delivers events to one URL: a `POST` of each envelope as it was recorded, with
/// `content-type: application/json`, `X-Chat-Event-Id` and `X-Chat-Signature` (see
/// [`verify_signature`](crate::verify_signature)). A 2xx answer delivers the event; any
/// other status, a redirect included, or no answer within the timeout fails it.
pub struct WebhookSink {
    channel: String,
    url: Url,
    secret: Vec<u8>,
    give_up_after: u32,
    client: Client,
}

impl WebhookSink {
    /// A sink for `options.url`; checks the URL and the secret, connects to nothing yet.
    pub fn new(options: WebhookOptions) -> Result<WebhookSink, Error> {
        let url = Url::parse(options.url.trim()).map_err(|e| Error::WebhookUrl(e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => return Err(Error::TlsDisabled("https")),
            other => {
                return Err(Error::WebhookUrl(format!(
                    "the scheme must be http or https, not {other}"
                )))
            }
        }
        if options.secret.len() < MIN_SECRET_BYTES {
            return Err(Error::ShortSecret);
        }
        let client = Client::builder()
            .timeout(options.timeout)
            // A redirect would turn the POST into a GET on some other URL, unsigned for it:
            // the receiver's own URL is the one configured, so a 3xx is a failure.
            .redirect(redirect::Policy::none())
            .build()
            .map_err(Error::HttpClient)?;
        Ok(WebhookSink {
            // The configured text, not the parsed URL's normalised form, names the channel:
            // what an operator wrote is what the outbox and the metrics show.
            channel: format!("webhook:{}", options.url.trim()),
            url,
            secret: options.secret,
            give_up_after: options.give_up_after,
            client,
        })
    }

    /// Posts one event; `Err` says why it was not delivered.
    async fn post(&self, event: &PendingEvent) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, event.id.to_string())
            .header(
                SIGNATURE_HEADER,
                signature_header(&self.secret, now, event.body.as_bytes()),
            )
            .body(event.body.clone())
            .send()
            .await
            // The URL may carry credentials; the channel already names the endpoint.
            .map_err(|e| describe(&e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {status}"))
        }
    }
}

/// An HTTP client error with its causes, which say what actually failed (refused, reset, ...).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer within the timeout".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("channel", &self.channel)
            .field("give_up_after", &self.give_up_after)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    fn channel(&self) -> &str {
        &self.channel
    }

    fn give_up_after(&self) -> Option<u32> {
        Some(self.give_up_after)
    }

    async fn send(&self, events: &[PendingEvent]) -> Result<(), SinkError> {
        // One at a time, in order: a receiver sees each room's events in commit order, and a
        // failure leaves everything after it for the retry.
        for (delivered, event) in events.iter().enumerate() {
            if let Err(reason) = self.post(event).await {
                return Err(SinkError { delivered, reason });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
