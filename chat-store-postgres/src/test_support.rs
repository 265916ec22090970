//! Fixtures for the unit tests: a store on a temporary database, a second node on the same
//! database, and a few rows to put in it.

use chat_core::domain::{
    DisplayName, MessageBody, MessageId, MessageKind, NewMessage, NewRoom, Role, RoomId, RoomKind,
    User, UserId, Username, Visibility,
};
use chat_core::ports::{MessageStore, RoomStore, UserStore};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{PgOptions, PgStore};

/// The server the tests run on, from `CHAT_TEST_POSTGRES_URL`; `None` (and a note saying the
/// test is skipped) when it is not set.
pub(crate) fn admin_url() -> Option<String> {
    let url = std::env::var("CHAT_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
    }
    url
}

/// A store on a database of its own, dropped with it; `None` when there is no server.
pub(crate) async fn scratch() -> Option<PgStore> {
    let url = admin_url()?;
    Some(
        PgStore::open_temporary(&url, PgOptions::default())
            .await
            .expect("temporary database"),
    )
}

/// Another node on the database of `store`: a store with a pool of its own.
pub(crate) async fn second_node(store: &PgStore) -> PgStore {
    let connect = (*store.pool().connect_options()).clone();
    PgStore::connect_with(connect, PgOptions::default())
        .await
        .expect("second node")
}

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

pub(crate) async fn user(store: &PgStore, name: &str) -> UserId {
    let user = User {
        id: UserId(Uuid::new_v4()),
        username: Username::parse(name).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        email: None,
        created_at: at(0),
    };
    store.create_user(&user, "hash").await.unwrap();
    user.id
}

pub(crate) fn new_room(creator: UserId, created_at: OffsetDateTime) -> NewRoom {
    NewRoom {
        id: RoomId(Uuid::new_v4()),
        kind: RoomKind::Group,
        name: "room".into(),
        topic: None,
        visibility: Visibility::Public,
        created_by: creator,
        created_at,
    }
}

pub(crate) async fn room(
    store: &PgStore,
    members: &[UserId],
    created_at: OffsetDateTime,
) -> RoomId {
    let spec = new_room(members[0], created_at);
    let members: Vec<_> = members.iter().map(|&u| (u, Role::Member)).collect();
    store.create_room(&spec, &members).await.unwrap();
    spec.id
}

pub(crate) fn text(room: RoomId, sender: UserId, mentions: Vec<UserId>) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::new_v4()),
        room_id: room,
        sender_id: sender,
        kind: MessageKind::Text,
        body: Some(MessageBody::parse("hello", 100).unwrap()),
        attachment: None,
        client_id: None,
        reply_to: None,
        thread_id: None,
        mentions,
        created_at: at(10),
    }
}

pub(crate) async fn post(store: &PgStore, room: RoomId, sender: UserId) -> MessageId {
    store
        .append_message(&text(room, sender, Vec::new()))
        .await
        .unwrap()
        .message
        .id
}
