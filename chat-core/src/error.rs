//! The errors of the ports (`StoreError`) and of the engine (`ChatError`).

use std::collections::BTreeMap;

use serde::Serialize;

/// What a storage port can fail with. Lookups that find nothing return `Ok(None)`, not an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row an update or delete names does not exist (any more).
    #[error("not found")]
    NotFound,
    /// A unique key is taken; `constraint` is one of [`crate::ports::constraint`].
    #[error("conflict on {constraint}")]
    Conflict {
        /// The name of the violated unique key.
        constraint: &'static str,
    },
    /// The backend cannot be reached now; the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Any other backend failure.
    #[error("storage failure: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Field path -> reason, as returned in `details.fields` of a `422`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    /// One field's error.
    pub fn one(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, reason);
        errors
    }

    /// Records a field's error (the first reason per field wins).
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| reason.into());
    }

    /// Whether no field failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when no field failed, else the `ChatError::Validation` of all of them.
    pub fn into_result(self) -> Result<(), ChatError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ChatError::Validation(self))
        }
    }
}

/// What an engine operation can fail with; the variants map 1:1 onto the API's error codes.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// `bad_request`: the request cannot be understood (e.g. `before` with `after`).
    #[error("{0}")]
    BadRequest(String),
    /// `unauthorized`: missing, invalid or expired credentials.
    #[error("invalid credentials")]
    Unauthorized,
    /// `forbidden`: the resource is visible but the action is not allowed for this user.
    #[error("{0}")]
    Forbidden(&'static str),
    /// `not_found`: unknown, or not visible to the caller.
    #[error("not found")]
    NotFound,
    /// `method_not_allowed`: the path exists, the method does not (raised by HTTP hosts).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// `conflict`: duplicate username/email, already a member, ...
    #[error("{0}")]
    Conflict(&'static str),
    /// `payload_too_large`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// `unsupported_media_type`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// `range_not_satisfiable`: a `Range` that covers none of a file of `size` bytes.
    #[error("the range covers none of the file")]
    RangeNotSatisfiable {
        /// The file's size in bytes.
        size: u64,
    },
    /// `validation_failed` with the failing fields.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// `rate_limited`: retry after the given number of seconds.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// `unavailable`: storage is down; retry.
    #[error("storage unavailable")]
    Unavailable,
    /// `internal`: a bug or backend failure; details are logged, never returned.
    #[error("internal error")]
    Internal,
}

impl ChatError {
    /// A validation error on one field.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ChatError::Validation(FieldErrors::one(field, reason))
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ChatError::NotFound,
            StoreError::Conflict { .. } => ChatError::Conflict("conflict"),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "storage unavailable");
                ChatError::Unavailable
            }
            StoreError::Backend(e) => {
                tracing::error!(error = %e, "storage failure");
                ChatError::Internal
            }
        }
    }
}

/// Collects a validation result into [`FieldErrors`] under a field name.
pub trait FieldCheck<T> {
    /// The value when valid; otherwise records the reason under `field` and returns `None`.
    fn check(self, errors: &mut FieldErrors, field: &str) -> Option<T>;
}

impl<T, E: std::fmt::Display> FieldCheck<T> for Result<T, E> {
    fn check(self, errors: &mut FieldErrors, field: &str) -> Option<T> {
        self.map_err(|reason| errors.add(field, reason.to_string()))
            .ok()
    }
}
