//! `/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}`: adding and taking back reactions.

use chat_core::auth::Identity;
use chat_core::{ChatEngine, ChatError};
use percent_encoding::percent_decode_str;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::messages::ids;
use super::{authenticated, no_content, with_engine};
use crate::State;

pub(super) fn routes(state: &State) -> BoxedFilter<(Response,)> {
    let path = || warp::path!("v1" / "rooms" / String / "messages" / String / "reactions" / String);
    let add = path()
        .and(warp::put())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, id: String, emoji: String, engine: ChatEngine, who: Identity| async move {
                no_content(react(&engine, who, &room, &id, &emoji, true).await)
            },
        );
    let remove = path()
        .and(warp::delete())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(
            |room: String, id: String, emoji: String, engine: ChatEngine, who: Identity| async move {
                no_content(react(&engine, who, &room, &id, &emoji, false).await)
            },
        );
    add.or(remove).unify().boxed()
}

async fn react(
    engine: &ChatEngine,
    who: Identity,
    room: &str,
    id: &str,
    emoji: &str,
    add: bool,
) -> Result<(), ChatError> {
    let (room, id) = ids(room, id)?;
    // Path segments arrive percent-encoded; bytes that are not UTF-8 name no emoji, and the
    // engine's validation says so in the API's order of checks.
    let emoji = percent_decode_str(emoji)
        .decode_utf8()
        .map(|e| e.into_owned())
        .unwrap_or_default();
    engine.react(who.user, room, id, &emoji, add).await
}
