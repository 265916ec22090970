//! `/health`, `/ready` and `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chat_core::{ChatEngine, ChatError};
use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::{bearer, with_engine, with_metrics};
use crate::error::error_response;
use crate::metrics::{EventFigures, Metrics};
use crate::State;

/// `GET /health`: the process answers.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The server's version.
    version: &'static str,
}

/// `GET /ready`: the store answers too.
#[derive(Serialize, ToSchema)]
pub(super) struct Ready {
    /// Always `ready`.
    status: &'static str,
}

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let health = warp::path!("health").and(warp::get()).map(|| {
        warp::reply::json(&Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
        })
        .into_response()
    });
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with_engine(state))
        .then(|engine: ChatEngine| async move {
            match engine.ready().await {
                Ok(()) => warp::reply::json(&Ready { status: "ready" }).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "readiness check failed");
                    error_response(&ChatError::Unavailable)
                }
            }
        });
    let token = state.settings.metrics_token.clone();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_engine(state))
        .and(with_metrics(state))
        .then(
            move |authorization: Option<String>, engine: ChatEngine, metrics: Arc<Metrics>| {
                let token = token.clone();
                async move {
                    if let Some(token) = &token {
                        let given = bearer(authorization.as_deref()).unwrap_or_default();
                        if !same_secret(given.as_bytes(), token.as_bytes()) {
                            return error_response(&ChatError::Unauthorized);
                        }
                    }
                    let relays = engine.relay_stats();
                    let events = EventFigures {
                        sent: relays.sent.load(Ordering::Relaxed),
                        failures: relays.failures.load(Ordering::Relaxed),
                        // The outbox figures are left out, not the whole page, when the store
                        // does not answer: the rest still tells what is going on.
                        channels: engine.outbox_counts().await.unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "reading the outbox for metrics failed");
                            Vec::new()
                        }),
                    };
                    warp::reply::with_header(
                        metrics.render(engine.hub(), &events),
                        "content-type",
                        "text/plain; version=0.0.4; charset=utf-8",
                    )
                    .into_response()
                }
            },
        );
    health.or(ready).unify().or(metrics).unify().boxed()
}

/// Compares a presented secret with the expected one in time that does not depend on where
/// they differ, so the token cannot be guessed byte by byte from response times.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}
