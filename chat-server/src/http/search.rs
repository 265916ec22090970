//! `GET /v1/search`: full-text search of the caller's rooms.

use chat_core::auth::Identity;
use chat_core::engine::SearchMessages;
use chat_core::{ChatEngine, ChatError};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{authenticated, query, respond, with_engine, Query};
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    warp::path!("v1" / "search")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                let room_id = q
                    .text("room_id")
                    .map(|r| {
                        r.parse()
                            .map_err(|_| ChatError::BadRequest("room_id must be a room id".into()))
                    })
                    .transpose()?;
                let input = SearchMessages {
                    q: q.text("q").unwrap_or_default().to_owned(),
                    room_id,
                    cursor: q.text("cursor").map(str::to_owned),
                    limit: Some(q.limit()?),
                };
                engine.search(who.user, input).await
            };
            respond(StatusCode::OK, result.await)
        })
        .boxed()
}
