//! The event sinks the configuration names: the AMQP broker of `CHAT_AMQP_URL` and one webhook
//! per `CHAT_WEBHOOK_URLS` entry. Every setting is checked here, at start, so a bad one stops
//! the server with a clear error instead of failing each delivery later.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chat_core::ports::EventSink;
use chat_events::{AmqpOptions, AmqpSink, WebhookOptions, WebhookSink, MIN_SECRET_BYTES};

use crate::{Config, StartError};

/// The configured sinks, in a stable order (AMQP, then the webhooks as listed); empty when
/// none is configured.
pub(crate) async fn event_sinks(config: &Config) -> Result<Vec<Arc<dyn EventSink>>, StartError> {
    let bad = |e: String| StartError::Config(e);
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    if let Some(url) = &config.amqp_url {
        let sink = AmqpSink::new(AmqpOptions {
            exchange: config.amqp_exchange.clone(),
            ..AmqpOptions::new(url)
        })
        .map_err(|e| match e {
            chat_events::Error::EmptyExchange => bad(format!("CHAT_AMQP_EXCHANGE: {e}")),
            e => bad(format!("CHAT_AMQP_URL: {}", with_feature_hint(e))),
        })?;
        sinks.push(Arc::new(sink));
    }
    // An empty entry (`a,,b`, a trailing comma) is no URL.
    let urls: Vec<&str> = config
        .webhook_urls
        .iter()
        .map(|url| url.trim())
        .filter(|url| !url.is_empty())
        .collect();
    let secret = match (&config.webhook_secret, urls.is_empty()) {
        (None, true) => return Ok(sinks),
        // A secret with no URL is most likely a misspelt URL setting: nothing would be sent.
        (Some(_), true) => {
            return Err(bad(
                "CHAT_WEBHOOK_SECRET is set but CHAT_WEBHOOK_URLS names no URL".into(),
            ))
        }
        (None, false) => {
            return Err(bad(
                "CHAT_WEBHOOK_URLS needs CHAT_WEBHOOK_SECRET to sign the events".into(),
            ))
        }
        (Some(secret), false) if secret.len() < MIN_SECRET_BYTES => {
            return Err(bad(format!(
                "CHAT_WEBHOOK_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            )))
        }
        (Some(secret), false) => secret,
    };
    let mut seen = HashSet::new();
    for (i, url) in urls.into_iter().enumerate() {
        // Entries are named by position: a URL may carry credentials, and errors get logged.
        let entry = i + 1;
        // Two sinks on one channel would share (and fight over) one outbox queue.
        if !seen.insert(url) {
            return Err(bad(format!(
                "CHAT_WEBHOOK_URLS: entry {entry} repeats an earlier URL"
            )));
        }
        let sink = WebhookSink::new(WebhookOptions {
            timeout: Duration::from_secs(config.webhook_timeout_secs),
            give_up_after: config.webhook_max_attempts,
            ..WebhookOptions::new(url, secret.as_bytes())
        })
        .map_err(|e| {
            bad(format!(
                "CHAT_WEBHOOK_URLS: entry {entry}: {}",
                with_feature_hint(e)
            ))
        })?;
        sinks.push(Arc::new(sink));
    }
    Ok(sinks)
}

/// The error's text; for a URL that needs TLS, with the server's feature that brings it.
fn with_feature_hint(e: chat_events::Error) -> String {
    match e {
        chat_events::Error::TlsDisabled(scheme) => {
            format!("{scheme}:// needs TLS: build chat-server with `--features events-tls`")
        }
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::event_sinks;
    use crate::{Config, StartError};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(args: &[&str]) -> Config {
        Config::try_parse_from([&["chat-server"], args].concat()).unwrap()
    }

    async fn refusal(args: &[&str]) -> String {
        match event_sinks(&config(args)).await {
            Err(StartError::Config(reason)) => reason,
            other => panic!("{args:?} was not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn nothing_configured_is_no_sink() {
        assert!(event_sinks(&config(&[])).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn each_configured_sink_has_its_channel_in_order() {
        let sinks = event_sinks(&config(&[
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "--webhook-urls",
            "http://127.0.0.1:9/a, http://127.0.0.1:9/b,",
            "--webhook-secret",
            SECRET,
            "--webhook-max-attempts",
            "3",
        ]))
        .await
        .unwrap();
        let channels: Vec<&str> = sinks.iter().map(|s| s.channel()).collect();
        assert_eq!(
            channels,
            [
                "amqp",
                "webhook:http://127.0.0.1:9/a",
                "webhook:http://127.0.0.1:9/b"
            ]
        );
        assert_eq!(sinks[0].give_up_after(), None);
        assert_eq!(sinks[1].give_up_after(), Some(3));
    }

    #[tokio::test]
    async fn a_webhook_needs_a_long_enough_secret_and_a_secret_needs_a_webhook() {
        let url = "http://127.0.0.1:9/hook";
        assert!(refusal(&["--webhook-urls", url])
            .await
            .contains("CHAT_WEBHOOK_SECRET"));
        assert!(
            refusal(&["--webhook-urls", url, "--webhook-secret", "short"])
                .await
                .contains("at least 32 bytes")
        );
        assert!(refusal(&["--webhook-secret", SECRET])
            .await
            .contains("CHAT_WEBHOOK_URLS"));
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_showing_them() {
        let reason = refusal(&["--amqp-url", "http://guest:s3cret@127.0.0.1/"]).await;
        assert!(reason.starts_with("CHAT_AMQP_URL"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
        let reason = refusal(&[
            "--webhook-urls",
            "http://127.0.0.1:9/a,ftp://user:s3cret@127.0.0.1/b",
            "--webhook-secret",
            SECRET,
        ])
        .await;
        assert!(reason.contains("entry 2"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
        let reason = refusal(&[
            "--webhook-urls",
            "http://127.0.0.1:9/a,http://127.0.0.1:9/a",
            "--webhook-secret",
            SECRET,
        ])
        .await;
        assert!(reason.contains("repeats"), "{reason}");
        assert!(
            refusal(&["--amqp-url", "amqp://127.0.0.1/%2f", "--amqp-exchange", ""])
                .await
                .starts_with("CHAT_AMQP_EXCHANGE")
        );
    }

    #[cfg(not(feature = "events-tls"))]
    #[tokio::test]
    async fn tls_urls_name_the_feature_that_brings_tls() {
        let reason = refusal(&[
            "--webhook-urls",
            "https://hooks.example/in",
            "--webhook-secret",
            SECRET,
        ])
        .await;
        assert!(reason.contains("events-tls"), "{reason}");
        let reason = refusal(&["--amqp-url", "amqps://broker.example/%2f"]).await;
        assert!(reason.contains("events-tls"), "{reason}");
    }
}
