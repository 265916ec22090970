use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chat_core::outbox::{EventType, PendingEvent};
use chat_core::ports::EventSink;
use warp::http::{HeaderMap, StatusCode};
use warp::Filter;

use super::{WebhookOptions, WebhookSink};
use crate::{verify_signature, Error};

const SECRET: &[u8] = b"a webhook secret of at least 32 bytes";

/// What the receiver got: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on a random local port answering the n-th request (from 1) with `answer(n)`,
/// after `delay`; returns its URL and what it received.
async fn receiver(answer: fn(usize) -> StatusCode, delay: Duration) -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let route = warp::post()
        .and(warp::path("hook"))
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(move |headers: HeaderMap, body: bytes::Bytes| {
            let log = log.clone();
            async move {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push((headers, body.to_vec()));
                    log.len()
                };
                tokio::time::sleep(delay).await;
                warp::reply::with_status("", answer(n))
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}/hook"), received)
}

fn events(n: usize) -> Vec<PendingEvent> {
    (0..n)
        .map(|i| {
            let id = uuid::Uuid::new_v4();
            PendingEvent {
                id,
                kind: EventType::MessageCreated,
                body: serde_json::json!({"id": id, "type": "message.created", "n": i}).to_string(),
                attempts: 0,
            }
        })
        .collect()
}

fn sink(url: &str, timeout: Duration) -> WebhookSink {
    WebhookSink::new(WebhookOptions {
        timeout,
        ..WebhookOptions::new(url, SECRET)
    })
    .unwrap()
}

#[tokio::test]
async fn each_event_is_posted_in_order_signed_with_its_id() {
    let (url, received) = receiver(|_| StatusCode::NO_CONTENT, Duration::ZERO).await;
    let sink = sink(&url, Duration::from_secs(5));
    assert_eq!(sink.channel(), format!("webhook:{url}"));
    assert_eq!(sink.give_up_after(), Some(8));
    let batch = events(3);
    sink.send(&batch).await.unwrap();

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 3);
    for ((headers, body), event) in received.iter().zip(&batch) {
        assert_eq!(body, event.body.as_bytes());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-chat-event-id"], event.id.to_string().as_str());
        let signature = headers["x-chat-signature"].to_str().unwrap();
        verify_signature(
            SECRET,
            signature,
            body,
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(
            verify_signature(
                b"not the secret",
                signature,
                body,
                SystemTime::now(),
                Duration::from_secs(60)
            ),
            Err(Error::SignatureMismatch)
        ));
    }
}

#[tokio::test]
async fn a_failing_answer_stops_the_batch_counting_what_was_delivered() {
    let (url, received) = receiver(
        |n| match n {
            3 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        },
        Duration::ZERO,
    )
    .await;
    let error = sink(&url, Duration::from_secs(5))
        .send(&events(5))
        .await
        .unwrap_err();
    assert_eq!(error.delivered, 2);
    assert!(error.reason.contains("500"), "{}", error.reason);
    // Nothing after the failed event was tried: it comes again, in order, in the retry.
    assert_eq!(received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails() {
    let (url, received) = receiver(|_| StatusCode::MOVED_PERMANENTLY, Duration::ZERO).await;
    let error = sink(&url, Duration::from_secs(5))
        .send(&events(2))
        .await
        .unwrap_err();
    assert_eq!(error.delivered, 0);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_fails_the_event() {
    let (url, _) = receiver(|_| StatusCode::OK, Duration::from_secs(30)).await;
    let sink = sink(&url, Duration::from_millis(300));
    let error = tokio::time::timeout(Duration::from_secs(10), sink.send(&events(2)))
        .await
        .expect("the sink's own timeout ends the request")
        .unwrap_err();
    assert_eq!(error.delivered, 0);
    assert!(error.reason.contains("timeout"), "{}", error.reason);
}

#[tokio::test]
async fn an_unreachable_receiver_fails_at_once() {
    // Port 9 (discard) has no listener here: the connection is refused.
    let error = sink("http://127.0.0.1:9/hook", Duration::from_secs(5))
        .send(&events(1))
        .await
        .unwrap_err();
    assert_eq!(error.delivered, 0);
}

#[test]
fn bad_urls_and_short_secrets_are_refused() {
    for url in ["not a url", "ftp://hooks.example/in"] {
        assert!(matches!(
            WebhookSink::new(WebhookOptions::new(url, SECRET)),
            Err(Error::WebhookUrl(_))
        ));
    }
    assert!(matches!(
        WebhookSink::new(WebhookOptions::new(
            "http://hooks.example/in",
            &b"short"[..]
        )),
        Err(Error::ShortSecret)
    ));
}

#[test]
fn the_debug_form_leaves_the_secret_out() {
    let options = WebhookOptions::new("http://hooks.example/in", SECRET);
    let shown = format!("{options:?}");
    assert!(
        !shown.contains(&format!("{:?}", SECRET.to_vec())),
        "{shown}"
    );
}

#[test]
fn https_needs_the_tls_feature() {
    let built = WebhookSink::new(WebhookOptions::new("https://hooks.example/in", SECRET));
    if cfg!(feature = "tls") {
        assert!(built.is_ok());
    } else {
        assert!(matches!(built, Err(Error::TlsDisabled("https"))));
    }
}
