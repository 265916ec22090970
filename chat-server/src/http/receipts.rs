//! Receipts and unread counts: `/v1/rooms/{id}/read`, `/delivered`, `/receipts`, `/v1/unread`.

use chat_core::auth::Identity;
use chat_core::domain::RoomId;
use chat_core::engine::MarkSeq;
use chat_core::ChatEngine;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{authenticated, json_body, path_id, query, respond, with_engine, Body, Query};
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    let read = warp::path!("v1" / "rooms" / String / "read")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<MarkSeq>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<MarkSeq>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_post(who.user, room)).await?;
                    engine.mark_read(who.user, room, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let delivered = warp::path!("v1" / "rooms" / String / "delivered")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<MarkSeq>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<MarkSeq>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_post(who.user, room)).await?;
                    engine.mark_delivered(who.user, room, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let receipts = warp::path!("v1" / "rooms" / String / "receipts")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(
            |room: String, engine: ChatEngine, who: Identity, q: Query| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let limit = q.limit()?;
                    engine
                        .receipts(who.user, room, q.text("cursor"), limit)
                        .await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let unread = warp::path!("v1" / "unread")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|engine: ChatEngine, who: Identity| async move {
            respond(StatusCode::OK, engine.unread_summary(who.user).await)
        });
    read.or(delivered)
        .unify()
        .or(receipts)
        .unify()
        .or(unread)
        .unify()
        .boxed()
}
