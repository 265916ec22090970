//! Ephemeral signals: typing indicators (`/v1/rooms/{id}/typing`) and presence
//! (`/v1/users/me/presence`, `/v1/presence`).

use chat_core::auth::Identity;
use chat_core::domain::{RoomId, UserId};
use chat_core::engine::{Presence, SetPresence, Typing};
use chat_core::{ChatEngine, ChatError};
use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{
    authenticated, json_body, no_content, path_id, query, respond, with_engine, Body, Query,
};
use crate::State;

/// The presence of the users asked for; unknown ids are left out.
#[derive(Serialize, ToSchema)]
pub(super) struct PresenceList {
    presence: Vec<Presence>,
}

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    let typing = warp::path!("v1" / "rooms" / String / "typing")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<Typing>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<Typing>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_post(who.user, room)).await?;
                    engine.typing(who.user, room, input).await
                };
                no_content(result.await)
            },
        );
    let my_presence = warp::path!("v1" / "users" / "me" / "presence")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|engine: ChatEngine, who: Identity| async move {
            respond(StatusCode::OK, engine.my_presence(who.user).await)
        });
    let set_presence = warp::path!("v1" / "users" / "me" / "presence")
        .and(warp::put())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<SetPresence>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<SetPresence>| async move {
                let result = async { engine.set_presence(who.user, input.get()?).await };
                respond(StatusCode::OK, result.await)
            },
        );
    let presence = warp::path!("v1" / "presence")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                // Ids separated by commas, nothing else: `user_ids=` names no one, so it is
                // refused like any other list item that is not an id.
                let users = match q.text("user_ids") {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(|id| {
                            id.parse::<UserId>().map_err(|_| {
                                ChatError::BadRequest(format!("user_ids: {id:?} is not a user id"))
                            })
                        })
                        .collect::<Result<Vec<UserId>, ChatError>>()?,
                };
                let presence = engine.presence(who.user, &users).await?;
                Ok(PresenceList { presence })
            };
            respond(StatusCode::OK, result.await)
        });
    typing
        .or(my_presence)
        .unify()
        .or(set_presence)
        .unify()
        .or(presence)
        .unify()
        .boxed()
}
