//! `/v1/rooms/{id}/messages/*`: sending, reading, editing and deleting messages, and threads.

use std::sync::Arc;

use chat_core::auth::Identity;
use chat_core::domain::{MessageId, RoomId};
use chat_core::engine::{EditMessage, HistoryQuery, SendMessage, ThreadQuery};
use chat_core::ChatEngine;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{
    authenticated, json_body, no_content, path_id, query, respond, with_engine, with_metrics, Body,
    Query,
};
use crate::metrics::Metrics;
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    let send = warp::path!("v1" / "rooms" / String / "messages")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<SendMessage>(max))
        .and(with_metrics(state))
        .then(
            |room: String,
             engine: ChatEngine,
             who: Identity,
             input: Body<SendMessage>,
             metrics: Arc<Metrics>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_send(who.user, room)).await?;
                    engine.send(who.user, room, input).await
                };
                match result.await {
                    // A repeated client id answers 200 with the original: nothing was created.
                    Ok(sent) if !sent.created => respond(StatusCode::OK, Ok(sent.message)),
                    Ok(sent) => {
                        metrics.message_sent();
                        respond(StatusCode::CREATED, Ok(sent.message))
                    }
                    Err(e) => respond::<()>(StatusCode::OK, Err(e)),
                }
            },
        );
    let history = warp::path!("v1" / "rooms" / String / "messages")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(
            |room: String, engine: ChatEngine, who: Identity, q: Query| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let query = HistoryQuery {
                        before: q.int("before")?,
                        after: q.int("after")?,
                        limit: Some(q.limit()?),
                    };
                    engine.history(who.user, room, query).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let one = warp::path!("v1" / "rooms" / String / "messages" / String)
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, id: String, engine: ChatEngine, who: Identity| async move {
                let result = async {
                    let (room, id) = ids(&room, &id)?;
                    engine.message(who.user, room, id).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let edit = warp::path!("v1" / "rooms" / String / "messages" / String)
        .and(warp::patch())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<EditMessage>(max))
        .then(
            |room: String,
             id: String,
             engine: ChatEngine,
             who: Identity,
             input: Body<EditMessage>| async move {
                let result = async {
                    let (room, id) = ids(&room, &id)?;
                    let check = async { engine.may_edit(who.user, room, id).await.map(drop) };
                    let input = input.after(check).await?;
                    engine.edit_message(who.user, room, id, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let delete = warp::path!("v1" / "rooms" / String / "messages" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, id: String, engine: ChatEngine, who: Identity| async move {
                let result = async {
                    let (room, id) = ids(&room, &id)?;
                    engine.delete_message(who.user, room, id).await
                };
                no_content(result.await)
            },
        );
    let thread = warp::path!("v1" / "rooms" / String / "messages" / String / "thread")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(
            |room: String, id: String, engine: ChatEngine, who: Identity, q: Query| async move {
                let result = async {
                    let (room, id) = ids(&room, &id)?;
                    let query = ThreadQuery {
                        after: q.int("after")?,
                        limit: Some(q.limit()?),
                    };
                    engine.thread(who.user, room, id, query).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    send.or(history)
        .unify()
        .or(one)
        .unify()
        .or(edit)
        .unify()
        .or(delete)
        .unify()
        .or(thread)
        .unify()
        .boxed()
}

/// A room id and a message id from a path.
pub(super) fn ids(room: &str, id: &str) -> Result<(RoomId, MessageId), chat_core::ChatError> {
    Ok((path_id(room)?, path_id(id)?))
}
