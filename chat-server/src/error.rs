//! The HTTP face of errors: one function maps every `ChatError` and every warp rejection to a
//! status and the API's error body `{code, message, details?}`.

use std::convert::Infallible;

use chat_core::{ChatError, FieldErrors};
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reject::Reject;
use warp::reply::Response;
use warp::Reply;

/// A `ChatError` travelling as a warp rejection (from filters that run before a handler).
#[derive(Debug)]
pub(crate) struct Rejected(pub(crate) ChatError);

impl Reject for Rejected {}

/// Rejects with a `ChatError`.
pub(crate) fn reject(e: ChatError) -> warp::Rejection {
    warp::reject::custom(Rejected(e))
}

/// The body of every error response, `{code, message, details?}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `range_not_satisfiable`,
    /// `validation_failed`, `rate_limited`, `internal` or `unavailable`.
    #[schema(example = "not_found")]
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// With `validation_failed` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    details: Option<ErrorDetails>,
}

/// What a `422` adds: each invalid field's path and why.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetails {
    /// Field path (`members.1`, `$` for the body itself) -> reason.
    fields: FieldErrors,
}

/// The one mapping of errors to the API's status and code (also used for WebSocket `error`s).
pub(crate) fn status_and_code(e: &ChatError) -> (StatusCode, &'static str) {
    match e {
        ChatError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ChatError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ChatError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ChatError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ChatError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ChatError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ChatError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ChatError::UnsupportedMediaType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        ChatError::RangeNotSatisfiable { .. } => {
            (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
        }
        ChatError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ChatError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ChatError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ChatError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// An error as an HTTP response: its status, and the body `{code, message, details?}`.
pub(crate) fn error_response(e: &ChatError) -> Response {
    let (status, code) = status_and_code(e);
    let details = match e {
        ChatError::Validation(fields) => Some(ErrorDetails {
            fields: fields.clone(),
        }),
        _ => None,
    };
    let body = ErrorBody {
        code,
        message: e.to_string(),
        details,
    };
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    if let ChatError::RateLimited { retry_after_secs } = e {
        if let Ok(value) = retry_after_secs.to_string().parse() {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}

/// Turns what no route answered into the API's error shape.
pub(crate) async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    if let Some(Rejected(e)) = rejection.find::<Rejected>() {
        return Ok(error_response(e));
    }
    if rejection.is_not_found() {
        return Ok(error_response(&ChatError::NotFound));
    }
    let response = if rejection
        .find::<warp::filters::cors::CorsForbidden>()
        .is_some()
    {
        error_response(&ChatError::Forbidden(
            "CORS request from an origin not allowed",
        ))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        error_response(&ChatError::MethodNotAllowed)
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        error_response(&ChatError::PayloadTooLarge)
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        error_response(&ChatError::UnsupportedMediaType)
    } else if let Some(e) = rejection.find::<warp::ws::MissingConnectionUpgrade>() {
        // A plain GET of the WebSocket route.
        error_response(&ChatError::BadRequest(e.to_string()))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        error_response(&ChatError::BadRequest(e.to_string()))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        error_response(&ChatError::BadRequest(e.to_string()))
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        error_response(&ChatError::BadRequest(e.to_string()))
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        error_response(&ChatError::BadRequest(
            "a Content-Length is required".into(),
        ))
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        error_response(&ChatError::BadRequest("bad request".into()))
    };
    Ok(response)
}

/// An error as one line, naming the fields that failed validation (for a socket's `error`
/// frame and an operator's command, which have no field map to fill).
pub(crate) fn one_line(e: &ChatError) -> String {
    match e {
        ChatError::Validation(fields) => fields
            .0
            .iter()
            .map(|(field, reason)| format!("{field}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
