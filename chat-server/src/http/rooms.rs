//! `/v1/rooms/*` and `/v1/dms`: rooms, members and direct rooms.

use chat_core::auth::Identity;
use chat_core::domain::{RoomId, UserId};
use chat_core::engine::{AddMember, ChangeRole, CreateRoom, RoomSettings, UpdateRoom};
use chat_core::ChatEngine;
use serde::Deserialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{
    authenticated, json_body, no_content, path_id, query, respond, with_engine, Body, Query,
};
use crate::State;

/// The other user of a direct room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenDirect {
    #[schema(value_type = chat_core::domain::UserId)]
    user_id: String,
}

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    let create = warp::path!("v1" / "rooms")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<CreateRoom>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<CreateRoom>| async move {
                let result = async { engine.create_room(who.user, input.get()?).await };
                respond(StatusCode::CREATED, result.await)
            },
        );
    let list = warp::path!("v1" / "rooms")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                let archived = q.bool("include_archived", false)?;
                let limit = q.limit()?;
                engine
                    .rooms(who.user, archived, q.text("cursor"), limit)
                    .await
            };
            respond(StatusCode::OK, result.await)
        });
    let public = warp::path!("v1" / "rooms" / "public")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(|engine: ChatEngine, who: Identity, q: Query| async move {
            let result = async {
                let limit = q.limit()?;
                let text = q.text("q").unwrap_or("");
                engine
                    .public_rooms(who.user, text, q.text("cursor"), limit)
                    .await
            };
            respond(StatusCode::OK, result.await)
        });
    let get = warp::path!("v1" / "rooms" / String)
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.room(who.user, path_id(&room)?).await };
                respond(StatusCode::OK, result.await)
            },
        );
    let update = warp::path!("v1" / "rooms" / String)
        .and(warp::patch())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<UpdateRoom>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<UpdateRoom>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_update_room(who.user, room)).await?;
                    engine.update_room(who.user, room, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let stats = warp::path!("v1" / "rooms" / String / "stats")
        .and(warp::get())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.room_stats(who.user, path_id(&room)?).await };
                respond(StatusCode::OK, result.await)
            },
        );
    let join = warp::path!("v1" / "rooms" / String / "join")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.join(who.user, path_id(&room)?).await };
                respond(StatusCode::OK, result.await)
            },
        );
    let leave = warp::path!("v1" / "rooms" / String / "leave")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, engine: ChatEngine, who: Identity| async move {
                let result = async { engine.leave(who.user, path_id(&room)?).await };
                no_content(result.await)
            },
        );
    let members = warp::path!("v1" / "rooms" / String / "members")
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
                        .members(who.user, room, q.text("cursor"), limit)
                        .await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let add_member = warp::path!("v1" / "rooms" / String / "members")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<AddMember>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<AddMember>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let check = async { engine.may_add_members(who.user, room).await.map(drop) };
                    engine
                        .add_member(who.user, room, input.after(check).await?)
                        .await
                };
                respond(StatusCode::CREATED, result.await)
            },
        );
    let remove_member = warp::path!("v1" / "rooms" / String / "members" / String)
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(query())
        .then(
            |room: String, user: String, engine: ChatEngine, who: Identity, q: Query| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let user: UserId = path_id(&user)?;
                    if q.bool("ban", false)? {
                        engine.ban_member(who.user, room, user).await
                    } else {
                        engine.remove_member(who.user, room, user).await
                    }
                };
                no_content(result.await)
            },
        );
    let change_role = warp::path!("v1" / "rooms" / String / "members" / String)
        .and(warp::patch())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<ChangeRole>(max))
        .then(
            |room: String,
             user: String,
             engine: ChatEngine,
             who: Identity,
             input: Body<ChangeRole>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let user: UserId = path_id(&user)?;
                    let check = async {
                        engine
                            .may_change_roles(who.user, room, user)
                            .await
                            .map(drop)
                    };
                    let input = input.after(check).await?;
                    engine.change_role(who.user, room, user, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let settings = warp::path!("v1" / "rooms" / String / "settings")
        .and(warp::put())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<RoomSettings>(max))
        .then(
            |room: String, engine: ChatEngine, who: Identity, input: Body<RoomSettings>| async move {
                let result = async {
                    let room: RoomId = path_id(&room)?;
                    let input = input.after(engine.may_post(who.user, room)).await?;
                    engine.update_settings(who.user, room, input).await
                };
                respond(StatusCode::OK, result.await)
            },
        );
    let direct = warp::path!("v1" / "dms")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .and(json_body::<OpenDirect>(max))
        .then(
            |engine: ChatEngine, who: Identity, input: Body<OpenDirect>| async move {
                let result = async { engine.open_direct(who.user, &input.get()?.user_id).await };
                match result.await {
                    Ok(direct) => {
                        let status = if direct.created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        };
                        respond(status, Ok(direct.room))
                    }
                    Err(e) => respond::<()>(StatusCode::OK, Err(e)),
                }
            },
        );
    create
        .or(list)
        .unify()
        .or(public)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(stats)
        .unify()
        .or(join)
        .unify()
        .or(leave)
        .unify()
        .or(members)
        .unify()
        .or(add_member)
        .unify()
        .or(remove_member)
        .unify()
        .or(change_role)
        .unify()
        .or(settings)
        .unify()
        .or(direct)
        .unify()
        .boxed()
}
