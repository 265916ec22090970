//! The HTTP routes (and the web client's pages): one module per resource, each route `request -> engine call -> response`.
//! The filters shared by every route (authentication, bounded JSON bodies, query parameters)
//! live here.

mod accounts;
mod messages;
mod moderation;
pub(crate) mod openapi;
mod ops;
mod reactions;
mod receipts;
mod rooms;
mod search;
mod signals;
pub(crate) mod templates;
mod uploads;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use chat_core::auth::Identity;
use chat_core::domain::PageSize;
use chat_core::{ChatEngine, ChatError, FieldErrors};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use warp::filters::path::FullPath;
use warp::filters::BoxedFilter;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::connections::ClientAddr;
use crate::error::{error_response, reject};
use crate::metrics::Metrics;
use crate::State;

/// Every HTTP route of the API (WebSocket excluded).
pub(crate) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    accounts::routes(state)
        .or(rooms::routes(state))
        .unify()
        .or(messages::routes(state))
        .unify()
        .or(moderation::routes(state))
        .unify()
        .or(reactions::routes(state))
        .unify()
        .or(search::routes(state))
        .unify()
        .or(uploads::routes(state))
        .unify()
        .or(signals::routes(state))
        .unify()
        .or(receipts::routes(state))
        .unify()
        .or(ops::routes(state))
        .unify()
        .or(openapi::routes(state.engine.limits()))
        .unify()
        .or(web::routes())
        .unify()
        .boxed()
}

/// Refuses with `405` a method the route of the path does not answer, before any route looks
/// at the request: a literal path (`/v1/rooms/public`) is not an instance of the template
/// beside it (`/v1/rooms/{id}`), so it must not reach that template's methods and answer
/// `404` for an id that does not parse.
pub(crate) fn known_method() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and_then(|method: Method, path: FullPath| async move {
            match openapi::allowed_methods(templates::template_of(path.as_str())) {
                Some(allowed) if !allowed.split(", ").any(|m| m == method.as_str()) => {
                    Err(reject(ChatError::MethodNotAllowed))
                }
                _ => Ok(()),
            }
        })
        .untuple_one()
}

/// A handler's outcome as a response: the value as JSON with `status`, or the error's shape.
pub(crate) fn respond<T: Serialize>(status: StatusCode, result: Result<T, ChatError>) -> Response {
    match result {
        Ok(value) => warp::reply::with_status(warp::reply::json(&value), status).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `204 No Content`, or the error's shape.
pub(crate) fn no_content(result: Result<(), ChatError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

/// The engine, for handlers.
pub(crate) fn with_engine(
    state: &State,
) -> impl Filter<Extract = (ChatEngine,), Error = std::convert::Infallible> + Clone {
    let engine = state.engine.clone();
    warp::any().map(move || engine.clone())
}

/// The server's metrics, for handlers that count.
pub(crate) fn with_metrics(
    state: &State,
) -> impl Filter<Extract = (std::sync::Arc<Metrics>,), Error = std::convert::Infallible> + Clone {
    let metrics = state.metrics.clone();
    warp::any().map(move || metrics.clone())
}

/// The address of the client's connection, whichever server runs the filter:
/// [`crate::serve`] or `warp::serve`.
pub(crate) fn client_addr(
) -> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|ours: Option<ClientAddr>, warps: Option<SocketAddr>| ours.map(|a| a.0).or(warps))
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub(crate) fn bearer(header: Option<&str>) -> Option<&str> {
    let header = header?;
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The caller, from `Authorization: Bearer <token>`; `401` without a valid token.
pub(crate) fn authenticated(
    state: &State,
) -> impl Filter<Extract = (Identity,), Error = Rejection> + Clone {
    let engine = state.engine.clone();
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let engine = engine.clone();
        async move {
            let token = bearer(header.as_deref()).ok_or_else(|| reject(ChatError::Unauthorized))?;
            engine.authenticate(token).await.map_err(reject)
        }
    })
}

/// A JSON body of at most `max` bytes, read as it streams (so a lying or missing
/// Content-Length cannot make the server buffer more): too large is `413`, malformed JSON
/// `400`, a body of the wrong shape (unknown or missing fields, wrong types) `422` naming the
/// field. The outcome is handed to the handler rather than rejected, because the API checks
/// existence and permission before the body: see [`Body::after`].
pub(crate) fn json_body<T: DeserializeOwned + Send + 'static>(
    max: u64,
) -> impl Filter<Extract = (Body<T>,), Error = Rejection> + Clone {
    limited_body(max)
        .map(|bytes: Result<BytesMut, ChatError>| Body(bytes.and_then(|bytes| parse_json(&bytes))))
}

/// A request body of at most `max` bytes, read as it streams (with or without a
/// Content-Length, which is checked first when there is one): too large is `413`.
pub(crate) fn limited_body(
    max: u64,
) -> impl Filter<Extract = (Result<BytesMut, ChatError>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .then(move |length: Option<u64>, body| async move {
            if length.is_some_and(|l| l > max) {
                return Err(ChatError::PayloadTooLarge);
            }
            read_limited(body, max).await
        })
}

/// A request body as parsed, or why it could not be.
#[derive(Debug)]
pub(crate) struct Body<T>(Result<T, ChatError>);

impl<T> Body<T> {
    /// The body, where no other check comes first (routes without a resource in their path).
    pub(crate) fn get(self) -> Result<T, ChatError> {
        self.0
    }

    /// The body, after `check` (the engine's existence and permission check for the path's
    /// resource) has passed: an unreadable body sent to a room the caller cannot see is `404`,
    /// not `422`.
    pub(crate) async fn after<F>(self, check: F) -> Result<T, ChatError>
    where
        F: std::future::Future<Output = Result<(), ChatError>>,
    {
        match self.0 {
            Ok(body) => Ok(body),
            Err(e) => {
                check.await?;
                Err(e)
            }
        }
    }
}

async fn read_limited<S, B>(body: S, max: u64) -> Result<BytesMut, ChatError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|_| ChatError::BadRequest("the request body could not be read".into()))?;
        if bytes.len() as u64 + chunk.remaining() as u64 > max {
            return Err(ChatError::PayloadTooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            bytes.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(bytes)
}

/// Parses a JSON body, telling malformed JSON (`400`) from a wrong shape (`422`).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ChatError> {
    // Syntax first, so a body that is not JSON at all is `400` whatever its shape.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ChatError::BadRequest("malformed JSON".into()))?;
    if !value.is_object() {
        return Err(ChatError::field("$", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(
        |e: serde_path_to_error::Error<serde_json::Error>| ChatError::Validation(shape_error(&e)),
    )
}

/// Names the field a shape error is about: the path to it, plus the field serde names in
/// "unknown field `x`" and "missing field `x`".
fn shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldErrors {
    use serde_path_to_error::Segment;
    let mut path: Vec<String> = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    let message = e.inner().to_string();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    // serde_path_to_error's path already ends at an unknown field, but stops before a missing one.
    let reason = if named("unknown field `").is_some() {
        "unknown field".to_owned()
    } else if let Some(field) = named("missing field `") {
        path.push(field);
        "is required".to_owned()
    } else {
        // serde_json appends " at line L column C"; the field path says where already.
        message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned()
    };
    let field = if path.is_empty() {
        "$".to_owned()
    } else {
        path.join(".")
    };
    FieldErrors::one(field, reason)
}

/// A request's query parameters.
pub(crate) fn query() -> impl Filter<Extract = (Query,), Error = Rejection> + Clone {
    warp::query::<HashMap<String, String>>().map(Query)
}

/// Query parameters, parsed strictly: a value that does not parse is `400`.
#[derive(Debug)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    /// A parameter as text.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An integer parameter.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ChatError> {
        self.text(name)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| ChatError::BadRequest(format!("{name} must be an integer")))
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`).
    pub(crate) fn bool(&self, name: &str, default: bool) -> Result<bool, ChatError> {
        match self.text(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ChatError::BadRequest(format!(
                "{name} must be true or false"
            ))),
        }
    }

    /// The page size: default 50, clamped to 100, below 1 is `400`.
    pub(crate) fn limit(&self) -> Result<PageSize, ChatError> {
        match self.int("limit")? {
            None => Ok(PageSize::DEFAULT),
            Some(n) => PageSize::new(n)
                .ok_or_else(|| ChatError::BadRequest("limit must be at least 1".into())),
        }
    }
}

/// An id in a path; one that does not parse names nothing, so it is `404`.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, ChatError> {
    raw.parse().map_err(|_| ChatError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        members: Vec<String>,
    }

    fn field_of(bytes: &[u8]) -> (String, String) {
        match parse_json::<Body>(bytes) {
            Err(ChatError::Validation(f)) => f.0.into_iter().next().unwrap(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_tell_syntax_from_shape() {
        assert!(matches!(
            parse_json::<Body>(b"{"),
            Err(ChatError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b""),
            Err(ChatError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"{} x"),
            Err(ChatError::BadRequest(_))
        ));
        assert_eq!(field_of(br#"{"name":"a","seq":1}"#).0, "seq");
        assert_eq!(field_of(br#"{}"#), ("name".into(), "is required".into()));
        assert_eq!(field_of(br#"{"name":5}"#).0, "name");
        assert_eq!(
            field_of(br#"{"name":"a","members":["x",3]}"#).0,
            "members.1"
        );
        assert_eq!(field_of(br#"[1]"#).0, "$");
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
