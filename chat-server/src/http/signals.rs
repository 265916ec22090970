//! Ephemeral signals: typing indicators (`/v1/rooms/{id}/typing`).

use chat_core::auth::Identity;
use chat_core::domain::RoomId;
use chat_core::engine::Typing;
use chat_core::ChatEngine;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::{authenticated, json_body, no_content, path_id, with_engine, Body};
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let max = state.settings.max_body_bytes;
    warp::path!("v1" / "rooms" / String / "typing")
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
        )
        .boxed()
}
