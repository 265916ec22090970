//! Fixtures for the unit tests: a store on a scratch file and a few rows to put in it.

use chat_core::domain::{
    DisplayName, MessageBody, MessageId, MessageKind, NewMessage, NewRoom, Role, RoomId, RoomKind,
    User, UserId, Username, Visibility,
};
use chat_core::ports::{MessageStore, RoomStore, UserStore};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{SqliteOptions, SqliteStore};

/// A store on a new file; the directory lives as long as the returned guard.
pub(crate) async fn scratch() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("chat.db"), SqliteOptions::default())
        .await
        .unwrap();
    (dir, store)
}

pub(crate) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

pub(crate) async fn user(store: &SqliteStore, name: &str) -> UserId {
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
    store: &SqliteStore,
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

pub(crate) async fn post(store: &SqliteStore, room: RoomId, sender: UserId) -> MessageId {
    store
        .append_message(&text(room, sender, Vec::new()))
        .await
        .unwrap()
        .message
        .id
}

/// Posts a text message with this body at `at(10)`.
pub(crate) async fn say(
    store: &SqliteStore,
    room: RoomId,
    sender: UserId,
    body: &str,
) -> MessageId {
    let mut message = text(room, sender, Vec::new());
    message.body = Some(MessageBody::parse(body, 4000).unwrap());
    store.append_message(&message).await.unwrap().message.id
}
