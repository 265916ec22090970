//! `/health` and `/ready`.

use chat_core::ChatEngine;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::with_engine;
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let health = warp::path!("health").and(warp::get()).map(|| {
        warp::reply::json(&json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
            .into_response()
    });
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with_engine(state))
        .then(|engine: ChatEngine| async move {
            match engine.ready().await {
                Ok(()) => warp::reply::json(&json!({"status": "ready"})).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "readiness check failed");
                    crate::error::error_response(&chat_core::ChatError::Unavailable)
                }
            }
        });
    health.or(ready).unify().boxed()
}
