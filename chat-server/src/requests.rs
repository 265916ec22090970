//! What every HTTP request passes through: a request id (the caller's `X-Request-Id` when it
//! is a sane one, else a new one) echoed in the response, one log line, and the latency
//! histogram.

use std::sync::Arc;
use std::time::Instant;

use warp::filters::path::FullPath;
use warp::filters::BoxedFilter;
use warp::http::header::ALLOW;
use warp::http::{HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::Filter;

use crate::http::openapi::allowed_methods;
use crate::http::templates::template_of;
use crate::metrics::Metrics;

const HEADER: &str = "x-request-id";

/// The longest request id taken from a caller.
const MAX_ID_LEN: usize = 128;

/// `api` with request ids, a log line per request and latency metrics.
pub(crate) fn observed(
    api: BoxedFilter<(Response,)>,
    metrics: Arc<Metrics>,
) -> BoxedFilter<(Response,)> {
    let incoming = warp::header::value(HEADER)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::any()
        .map(Instant::now)
        .and(warp::method())
        .and(warp::path::full())
        .and(incoming)
        .and(api)
        .map(
            move |started: Instant,
                  method: Method,
                  path: FullPath,
                  incoming: Option<HeaderValue>,
                  mut response: Response| {
                let elapsed = started.elapsed();
                let id = incoming.filter(is_sane).unwrap_or_else(new_id);
                let route = template_of(path.as_str());
                let status = response.status();
                metrics.observe_request(&method, route, status, elapsed);
                tracing::info!(
                    request_id = id.to_str().unwrap_or_default(),
                    method = %method,
                    route,
                    path = path.as_str(),
                    status = status.as_u16(),
                    elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                    "request"
                );
                response.headers_mut().insert(HEADER, id);
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    if let Some(allowed) = allowed_methods(route) {
                        response
                            .headers_mut()
                            .insert(ALLOW, HeaderValue::from_static(allowed));
                    }
                }
                response
            },
        )
        .boxed()
}

/// Whether a caller's request id is one to keep: 1-128 characters that are safe in a log line
/// and a header (letters, digits and `-_.:/+=@`), so no caller can forge log lines through it.
fn is_sane(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

/// A new request id: a random UUID in 32 hex digits.
fn new_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    HeaderValue::from_str(&id).expect("hex digits make a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_kept() {
        for kept in [
            "abc",
            "4bf92f35-77b3-4da6",
            "trace:1/2+3=4@x_y.z",
            &"a".repeat(128),
        ] {
            assert!(is_sane(&HeaderValue::from_str(kept).unwrap()), "{kept}");
        }
        for refused in ["", "a b", "a\"b", "line\tbreak", "ü", &"a".repeat(129)] {
            let value = HeaderValue::from_bytes(refused.as_bytes()).unwrap();
            assert!(!is_sane(&value), "{refused}");
        }
        let fresh = new_id();
        assert!(is_sane(&fresh));
        assert_eq!(fresh.len(), 32);
        assert_ne!(new_id(), fresh);
    }
}
