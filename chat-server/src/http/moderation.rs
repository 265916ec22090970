//! Blocks (`/v1/users/me/blocks/*`), bans (`/v1/rooms/{id}/bans/*`) and room deletion.

use chat_core::auth::Identity;
use chat_core::domain::{RoomId, UserId};
use chat_core::ChatEngine;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{authenticated, no_content, path_id, query, respond, with_engine, Query};
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let block = warp::path!("v1" / "users" / "me" / "blocks" / String)
        .and(warp::put())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |user: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.block_user(who.user, path_id(&user)?).await };
                no_content(result.await)
            },
        );
    let unblock = warp::path!("v1" / "users" / "me" / "blocks" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |user: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.unblock_user(who.user, path_id(&user)?).await };
                no_content(result.await)
            },
        );
    let blocks = warp::path!("v1" / "users" / "me" / "blocks")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                let limit = q.limit()?;
                engine.blocks(who.user, q.text("cursor"), limit).await
            };
            respond(StatusCode::OK, result.await)
        });
    let bans = warp::path!("v1" / "rooms" / String / "bans")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(
            |room: String, engine: ChatEngine, who: Identity, q: Query| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let limit = q.limit()?;
                    engine.bans(who.user, room, q.text("cursor"), limit).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let unban = warp::path!("v1" / "rooms" / String / "bans" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, user: String, engine: ChatEngine, who: Identity| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let user: UserId = path_id(&user)?;
                    engine.unban(who.user, room, user).await
                };
                no_content(result.await)
            },
        );
    let delete_room = warp::path!("v1" / "rooms" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.delete_room(who.user, path_id(&room)?).await };
                no_content(result.await)
            },
        );
    block
        .or(unblock)
        .unify()
        .or(blocks)
        .unify()
        .or(bans)
        .unify()
        .or(unban)
        .unify()
        .or(delete_room)
        .unify()
        .boxed()
}
