//! Fixtures shared by the engine test binaries: engines on a `MemoryStore`, seeded users,
//! rooms, and helpers that read a session's frames without hanging.
// Each test binary uses its own subset of the fixtures.
#![allow(dead_code, unused_imports, unused_macros)]

pub(crate) use std::collections::HashSet;
pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use chat_core::clock::ManualClock;
pub(crate) use chat_core::domain::{
    DisplayName, MessageBody, MessageId, MessageKind, NewMessage, PageSize, Role, RoomId, RoomKind,
    Seq, User, UserId, Username,
};
pub(crate) use chat_core::engine::{
    AddMember, CreateRoom, HistoryQuery, Register, SendMessage, SessionEnd, SyncSince,
};
pub(crate) use chat_core::memory::MemoryStore;
pub(crate) use chat_core::notify::InProcessNotifier;
pub(crate) use chat_core::ports::{
    Hint, HintKind, MessageStore, NodeId, Notifier, RoomStore, UserStore,
};
pub(crate) use chat_core::{ChatEngine, ChatError, Limits, Session};
pub(crate) use serde_json::Value;
pub(crate) use time::OffsetDateTime;
pub(crate) use uuid::Uuid;

/// How long a test waits for a frame that must come.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// How long a test waits to be sure that no frame comes.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

pub(crate) fn limits() -> Limits {
    // Tests act far faster than people; the rate limits have tests of their own.
    Limits {
        max_concurrent_hashes: 4,
        send_rate: None,
        failed_login_rate: None,
        ..Default::default()
    }
}

/// One engine on its own store and bus.
pub(crate) async fn engine_with(limits: Limits) -> (ChatEngine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = ChatEngine::builder(store.clone())
        .limits(limits)
        .build()
        .await
        .expect("engine builds");
    (engine, store)
}

pub(crate) async fn engine() -> (ChatEngine, Arc<MemoryStore>) {
    engine_with(limits()).await
}

/// One engine whose clock moves only when told to, so join order is deterministic.
pub(crate) async fn engine_with_clock() -> (ChatEngine, Arc<MemoryStore>, Arc<ManualClock>) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let engine = ChatEngine::builder(store.clone())
        .clock(clock.clone())
        .limits(limits())
        .build()
        .await
        .expect("engine builds");
    (engine, store, clock)
}

/// A "node": an engine on a shared store and a shared bus.
pub(crate) async fn node(
    store: &Arc<MemoryStore>,
    bus: &InProcessNotifier,
    limits: Limits,
) -> ChatEngine {
    ChatEngine::builder(store.clone())
        .notifier(Arc::new(bus.clone()))
        .limits(limits)
        .build()
        .await
        .expect("engine builds")
}

/// A user stored directly (no password hashing).
pub(crate) async fn seed_user(store: &MemoryStore, name: &str) -> UserId {
    let user = User {
        id: UserId(Uuid::new_v4()),
        username: Username::parse(name).expect("valid username"),
        display_name: DisplayName::parse(name).expect("valid display name"),
        email: None,
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .create_user(&user, "not-a-real-hash")
        .await
        .expect("user stored");
    user.id
}

pub(crate) fn register(username: &str, password: &str, email: Option<&str>) -> Register {
    Register {
        username: username.into(),
        password: password.into(),
        email: email.map(Into::into),
        display_name: None,
    }
}

pub(crate) fn room_spec(name: &str, visibility: &str, members: &[UserId]) -> CreateRoom {
    CreateRoom {
        name: name.into(),
        topic: None,
        visibility: Some(visibility.into()),
        members: Some(members.iter().map(|m| m.to_string()).collect()),
    }
}

pub(crate) async fn private_room(engine: &ChatEngine, owner: UserId, members: &[UserId]) -> RoomId {
    engine
        .create_room(owner, room_spec("private", "private", members))
        .await
        .expect("room created")
        .id
}

pub(crate) async fn public_room(engine: &ChatEngine, owner: UserId, members: &[UserId]) -> RoomId {
    engine
        .create_room(owner, room_spec("public", "public", members))
        .await
        .expect("room created")
        .id
}

pub(crate) fn text(body: &str) -> SendMessage {
    SendMessage {
        body: Some(body.into()),
        ..Default::default()
    }
}

pub(crate) fn with_client_id(body: &str, client_id: &str) -> SendMessage {
    SendMessage {
        body: Some(body.into()),
        client_id: Some(client_id.into()),
        ..Default::default()
    }
}

pub(crate) async fn say(engine: &ChatEngine, user: UserId, room: RoomId, body: &str) -> MessageId {
    engine
        .send(user, room, text(body))
        .await
        .expect("message sent")
        .message
        .id
}

pub(crate) fn add(user: UserId, role: Option<&str>) -> AddMember {
    AddMember {
        user_id: user.to_string(),
        role: role.map(Into::into),
    }
}

pub(crate) fn history(before: Option<i64>, after: Option<i64>, limit: Option<i64>) -> HistoryQuery {
    HistoryQuery {
        before,
        after,
        limit: limit.map(|l| PageSize::new(l).expect("valid page size")),
    }
}

pub(crate) fn page(limit: i64) -> PageSize {
    PageSize::new(limit).expect("valid page size")
}

/// The failing fields of a `Validation` error.
pub(crate) fn invalid_fields<T: std::fmt::Debug>(result: Result<T, ChatError>) -> Vec<String> {
    match result {
        Err(ChatError::Validation(fields)) => fields.0.keys().cloned().collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {{
        let result = $result;
        assert!(
            matches!(result, Err($pattern)),
            "expected Err({}), got {:?}",
            stringify!($pattern),
            result
        );
    }};
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// The next frame of the rooms' streams, parsed; fails the test instead of hanging. Presence
/// frames (users connecting and leaving) are skipped: their own tests check them.
pub(crate) async fn next(session: &mut Session) -> Value {
    loop {
        let frame = next_any(session).await;
        if kind(&frame) != "presence" {
            return frame;
        }
    }
}

/// The next frame of any kind, parsed.
pub(crate) async fn next_any(session: &mut Session) -> Value {
    let frame = tokio::time::timeout(WAIT, session.next_frame())
        .await
        .expect("timed out waiting for a frame")
        .expect("the session ended");
    serde_json::from_str(&frame).expect("frames are JSON")
}

/// Asserts that no frame but presence arrives for a while.
pub(crate) async fn assert_quiet(session: &mut Session) {
    while let Ok(frame) = tokio::time::timeout(QUIET, session.next_frame()).await {
        let parsed: Value = match &frame {
            Ok(json) => serde_json::from_str(json).expect("frames are JSON"),
            Err(end) => panic!("expected no frame, the session ended: {end:?}"),
        };
        assert_eq!(kind(&parsed), "presence", "expected no frame, got {parsed}");
    }
}

pub(crate) fn kind(frame: &Value) -> &str {
    frame["type"].as_str().expect("frames have a type")
}

pub(crate) fn frame_room(frame: &Value) -> String {
    let room = match kind(frame) {
        "message.created" | "message.updated" => &frame["message"]["room_id"],
        _ => &frame["room_id"],
    };
    room.as_str()
        .expect("room frames name their room")
        .to_owned()
}

/// Asserts a `message.created` of `room` and returns its seq and body.
pub(crate) fn created(frame: &Value, room: RoomId) -> (i64, String) {
    assert_eq!(kind(frame), "message.created", "unexpected frame {frame}");
    assert_eq!(
        frame_room(frame),
        room.to_string(),
        "frame of another room: {frame}"
    );
    let seq = frame["message"]["seq"]
        .as_i64()
        .expect("messages have a seq");
    let body = frame["message"]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (seq, body)
}

pub(crate) async fn next_created(session: &mut Session, room: RoomId) -> (i64, String) {
    let frame = next(session).await;
    created(&frame, room)
}

pub(crate) fn assert_member_joined(frame: &Value, room: RoomId, user: UserId) {
    assert_eq!(kind(frame), "member.joined", "unexpected frame {frame}");
    assert_eq!(frame["room_id"], room.to_string());
    assert_eq!(frame["member"]["user"]["id"], user.to_string());
}

pub(crate) fn assert_member_left(frame: &Value, room: RoomId, user: UserId) {
    assert_eq!(kind(frame), "member.left", "unexpected frame {frame}");
    assert_eq!(frame["room_id"], room.to_string());
    assert_eq!(frame["user_id"], user.to_string());
}

pub(crate) fn parse_frames(frames: &[Arc<str>]) -> Vec<Value> {
    frames
        .iter()
        .map(|f| serde_json::from_str(f).expect("frames are JSON"))
        .collect()
}
