//! This node's Prometheus metrics, written in the text exposition format (0.0.4) by hand: a
//! few gauges, counters and one histogram are a few lines of text, not worth a metrics
//! library and its registry.
//!
//! The WebSocket figures come from the engine's hub and the domain-event figures from its
//! relays and the outbox, which count them already; this module counts what only the server
//! sees (stored sends, write timeouts, HTTP requests).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chat_core::hub::Hub;
use chat_core::ports::OutboxCounts;
use warp::http::{Method, StatusCode};

/// Upper bounds of the latency buckets in seconds (the Prometheus clients' defaults, which
/// suit request latencies from milliseconds to seconds).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The counters of this node's server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    messages_sent: AtomicU64,
    write_timeouts: AtomicU64,
    requests: Mutex<BTreeMap<RequestLabels, Histogram>>,
}

/// The labels of a request's series. Each is one of a fixed set of static strings (methods,
/// route templates, status classes), so the series are bounded whatever clients send, and
/// no label value needs escaping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

/// One latency histogram: the count of each bucket alone (made cumulative when written).
#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// A message was stored (an idempotent replay is not a new message).
    pub(crate) fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket client took no bytes for a whole ping interval and was closed as a slow
    /// consumer.
    pub(crate) fn write_timed_out(&self) {
        self.write_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered with `status` after `elapsed`, on the route `route` (a template).
    pub(crate) fn observe_request(
        &self,
        method: &Method,
        route: &'static str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route,
            status: status_class(status),
        };
        let seconds = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = requests.entry(labels).or_default();
        if let Some(bucket) = BUCKETS.iter().position(|&le| seconds <= le) {
            histogram.buckets[bucket] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Every metric in the text exposition format, the hub's and the event relays' figures
    /// read now.
    pub(crate) fn render(&self, hub: &Hub, events: &EventFigures) -> String {
        let stats = hub.stats();
        let mut out = String::new();
        header(
            &mut out,
            "chat_ws_connections",
            "gauge",
            "WebSocket connections open on this node.",
        );
        let _ = writeln!(out, "chat_ws_connections {}", hub.session_count());
        header(
            &mut out,
            "chat_messages_sent_total",
            "counter",
            "Messages stored through this node (HTTP and WebSocket; idempotent retries not counted).",
        );
        let sent = self.messages_sent.load(Ordering::Relaxed);
        let _ = writeln!(out, "chat_messages_sent_total {sent}");
        header(
            &mut out,
            "chat_ws_deliveries_total",
            "counter",
            "Events queued to this node's WebSocket connections.",
        );
        let deliveries = stats.deliveries.load(Ordering::Relaxed);
        let _ = writeln!(out, "chat_ws_deliveries_total {deliveries}");
        header(
            &mut out,
            "chat_ws_slow_consumers_total",
            "counter",
            "WebSocket connections closed as slow consumers (4008): their event queue was full, \
             or they took no bytes for a ping interval.",
        );
        let full = stats.slow_consumers.load(Ordering::Relaxed);
        let stalled = self.write_timeouts.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "chat_ws_slow_consumers_total{{cause=\"queue_full\"}} {full}\n\
             chat_ws_slow_consumers_total{{cause=\"write_timeout\"}} {stalled}"
        );
        events.render(&mut out);
        let name = "chat_http_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "HTTP request latency, by method, route template and status class.",
        );
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, histogram) in requests.iter() {
            let RequestLabels {
                method,
                route,
                status,
            } = labels;
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (le, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let count = histogram.count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
        out
    }
}

/// What the outbox relays of this node did, and what waits in the outbox.
#[derive(Debug, Default)]
pub(crate) struct EventFigures {
    /// Events the sinks confirmed.
    pub(crate) sent: u64,
    /// Failed attempts to deliver an event.
    pub(crate) failures: u64,
    /// Per sink channel: events pending and given up.
    pub(crate) channels: Vec<(String, OutboxCounts)>,
}

impl EventFigures {
    fn render(&self, out: &mut String) {
        header(
            out,
            "chat_events_sent_total",
            "counter",
            "Domain events this node's relays delivered (confirmed by their sink).",
        );
        let _ = writeln!(out, "chat_events_sent_total {}", self.sent);
        header(
            out,
            "chat_event_delivery_failures_total",
            "counter",
            "Failed attempts of this node's relays to deliver a domain event.",
        );
        let _ = writeln!(out, "chat_event_delivery_failures_total {}", self.failures);
        for (name, help, pick) in [
            (
                "chat_outbox_pending",
                "Domain events waiting in the outbox, per sink channel.",
                (|c: &OutboxCounts| c.pending) as fn(&OutboxCounts) -> u64,
            ),
            (
                "chat_outbox_dead",
                "Domain events given up after too many failed deliveries, per sink channel                  (until pruned).",
                |c: &OutboxCounts| c.dead,
            ),
        ] {
            header(out, name, "gauge", help);
            for (channel, counts) in &self.channels {
                let channel = channel_label(channel);
                let _ = writeln!(out, "{name}{{channel=\"{channel}\"}} {}", pick(counts));
            }
        }
    }
}

/// A channel as a label value: a webhook URL without its query or credentials (which may hold
/// secrets), escaped for the exposition format.
fn channel_label(channel: &str) -> String {
    let without_query = channel.split(['?', '#']).next().unwrap_or_default();
    // Credentials sit in the authority, before its last `@`.
    let shown = match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => without_query.to_owned(),
            }
        }
        None => without_query.to_owned(),
    };
    shown
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric's `# HELP` and `# TYPE` lines.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The method as a label: the standard ones by name, any other as `other` (clients may invent
/// methods; each must not become a series).
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `2xx`, `4xx`, ...: the class, since single statuses add series without telling more.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_labels_show_no_secrets_and_are_escaped() {
        assert_eq!(channel_label("amqp"), "amqp");
        assert_eq!(
            channel_label("webhook:https://user:pw@hooks.example/in?token=s3cret"),
            "webhook:https://hooks.example/in"
        );
        assert_eq!(
            channel_label("webhook:http://hooks.example/a@b"),
            "webhook:http://hooks.example/a@b"
        );
        assert_eq!(channel_label("a\"b"), "a\\\"b");
    }

    #[test]
    fn a_histogram_is_cumulative_and_counts_every_request() {
        let metrics = Metrics::default();
        let route = "/v1/rooms/{id}";
        for ms in [3, 7, 7, 20_000] {
            metrics.observe_request(
                &Method::GET,
                route,
                StatusCode::OK,
                Duration::from_millis(ms),
            );
        }
        metrics.observe_request(
            &Method::from_bytes(b"BREW").unwrap(),
            route,
            StatusCode::IM_A_TEAPOT,
            Duration::from_millis(1),
        );
        let events = EventFigures {
            sent: 7,
            failures: 2,
            channels: vec![(
                "webhook:https://hooks.example/in?token=secret".into(),
                OutboxCounts {
                    pending: 3,
                    dead: 1,
                },
            )],
        };
        let text = metrics.render(&Hub::new(8), &events);
        let series = |labels: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(labels)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{labels} in {text}"))
                .to_owned()
        };
        assert_eq!(series("chat_events_sent_total"), "7");
        assert_eq!(series("chat_event_delivery_failures_total"), "2");
        let channel = "{channel=\"webhook:https://hooks.example/in\"}";
        assert_eq!(series(&format!("chat_outbox_pending{channel}")), "3");
        assert_eq!(series(&format!("chat_outbox_dead{channel}")), "1");
        let get = "method=\"GET\",route=\"/v1/rooms/{id}\",status=\"2xx\"";
        let b = "chat_http_request_duration_seconds_bucket";
        assert_eq!(series(&format!("{b}{{{get},le=\"0.005\"}}")), "1");
        assert_eq!(series(&format!("{b}{{{get},le=\"0.01\"}}")), "3");
        assert_eq!(series(&format!("{b}{{{get},le=\"10\"}}")), "3");
        assert_eq!(series(&format!("{b}{{{get},le=\"+Inf\"}}")), "4");
        assert_eq!(
            series(&format!(
                "chat_http_request_duration_seconds_count{{{get}}}"
            )),
            "4"
        );
        let sum: f64 = series(&format!("chat_http_request_duration_seconds_sum{{{get}}}"))
            .parse()
            .unwrap();
        assert!((sum - 20.017).abs() < 1e-9, "{sum}");
        assert_eq!(
            series(
                "chat_http_request_duration_seconds_count{method=\"other\",\
                 route=\"/v1/rooms/{id}\",status=\"4xx\"}"
            ),
            "1"
        );
        assert_eq!(series("chat_ws_connections"), "0");
    }
}
