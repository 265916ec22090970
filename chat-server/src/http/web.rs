//! `GET /` and `GET /web/{asset}`: the web client. It is plain HTML, CSS and JavaScript modules
//! with no build step (`chat-server/web/`), embedded in the binary, so the server serves it from
//! wherever it runs and a browser needs nothing but this server.

use std::sync::Arc;

use chat_core::ChatError;
use sha2::{Digest, Sha256};
use warp::filters::BoxedFilter;
use warp::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::error::error_response;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The page at `/`.
const INDEX: (&str, &str, &[u8]) = ("index.html", HTML, include_bytes!("../../web/index.html"));

/// The files under `/web/`: name, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../../web/app.js")),
    ("api.js", JS, include_bytes!("../../web/api.js")),
    ("chat.js", JS, include_bytes!("../../web/chat.js")),
    ("dialogs.js", JS, include_bytes!("../../web/dialogs.js")),
    ("dom.js", JS, include_bytes!("../../web/dom.js")),
    (
        "message-view.js",
        JS,
        include_bytes!("../../web/message-view.js"),
    ),
    (
        "rooms-view.js",
        JS,
        include_bytes!("../../web/rooms-view.js"),
    ),
    ("socket.js", JS, include_bytes!("../../web/socket.js")),
    ("state.js", JS, include_bytes!("../../web/state.js")),
    (
        "timeline-view.js",
        JS,
        include_bytes!("../../web/timeline-view.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../web/icon.svg"),
    ),
];

/// One file of the client, with the validator browsers revalidate it with.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    etag: HeaderValue,
}

impl Asset {
    fn new(&(_, content_type, bytes): &(&str, &'static str, &'static [u8])) -> Asset {
        let digest = Sha256::digest(bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            content_type,
            bytes,
            etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits in quotes"),
        }
    }

    fn reply(&self, host: Option<&str>, if_none_match: Option<&str>) -> Response {
        let fresh = if_none_match.is_some_and(|given| {
            given.split(',').map(str::trim).any(|tag| {
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == self.etag.as_bytes()
            })
        });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(self.bytes.into());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
            response
        };
        let headers = response.headers_mut();
        headers.insert(ETAG, self.etag.clone());
        // The names carry no version, so a browser asks every time and gets a `304` while the
        // server runs the same build: a new build's client is never mixed with an old one's.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(CONTENT_SECURITY_POLICY, policy(host));
        response
    }
}

/// The client's Content-Security-Policy: its own scripts and styles only (no inline code, so an
/// injected `<script>` or `onclick` would not run), images from this server or fetched into
/// `blob:` URLs, and connections to this server alone, its WebSocket included. Browsers that
/// predate CSP 3 do not count `ws:` as `'self'`, so the socket's origin is named from `Host`.
fn policy(host: Option<&str>) -> HeaderValue {
    let socket = host
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
         connect-src 'self'{socket}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).expect("the policy holds only checked characters")
}

/// `GET /` (the page) and `GET /web/{asset}` (its scripts, styles and icon).
pub(super) fn routes() -> BoxedFilter<(Response,)> {
    let index = Arc::new(Asset::new(&INDEX));
    let assets: Arc<Vec<(&str, Asset)>> = Arc::new(
        ASSETS
            .iter()
            .map(|asset| (asset.0, Asset::new(asset)))
            .collect(),
    );
    let request_headers = || {
        warp::header::optional::<String>("host")
            .and(warp::header::optional::<String>("if-none-match"))
    };
    let page = warp::path::end()
        .and(warp::get())
        .and(request_headers())
        .map(move |host: Option<String>, etag: Option<String>| {
            index.reply(host.as_deref(), etag.as_deref())
        });
    let files = warp::path!("web" / String)
        .and(warp::get())
        .and(request_headers())
        .map(
            move |name: String, host: Option<String>, etag: Option<String>| match assets
                .iter()
                .find(|(n, _)| *n == name)
            {
                Some((_, asset)) => asset.reply(host.as_deref(), etag.as_deref()),
                None => error_response(&ChatError::NotFound),
            },
        );
    page.or(files).unify().boxed()
}
