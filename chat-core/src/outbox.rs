//! Domain events for other services (API.md, "Domain events"): what a change is called, and the
//! envelope it travels in. Stores record envelopes in the same transaction as the change they
//! describe (when a sink is configured), one row per delivery channel; the relay
//! ([`crate::engine`]) hands them to each channel's [`EventSink`](crate::ports::EventSink).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Emoji, Member, Message, MessageId, Reaction, ReactionEdit, Rev, Room, RoomId, Seq, User, UserId,
};

/// What the envelope's `source` says.
pub const SOURCE: &str = "chat-server";

/// The envelope's `version`.
pub const VERSION: &str = "1";

/// The kinds of domain events; the name is the AMQP routing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A user registered or was provisioned; payload: User without email.
    #[serde(rename = "user.created")]
    UserCreated,
    /// A user's profile changed; payload: User without email.
    #[serde(rename = "user.updated")]
    UserUpdated,
    /// An account was deleted; payload: the User (without email) it was.
    #[serde(rename = "user.deleted")]
    UserDeleted,
    /// A room (group or direct) was created; payload: Room.
    #[serde(rename = "room.created")]
    RoomCreated,
    /// A room's details changed; payload: Room.
    #[serde(rename = "room.updated")]
    RoomUpdated,
    /// A room was deleted; payload: the Room it was.
    #[serde(rename = "room.deleted")]
    RoomDeleted,
    /// A user became a member; payload: Member.
    #[serde(rename = "member.joined")]
    MemberJoined,
    /// A member's role changed; payload: Member.
    #[serde(rename = "member.updated")]
    MemberUpdated,
    /// A membership ended; payload: the Member it was.
    #[serde(rename = "member.left")]
    MemberLeft,
    /// A message was posted; payload: Message.
    #[serde(rename = "message.created")]
    MessageCreated,
    /// A message was edited; payload: Message.
    #[serde(rename = "message.updated")]
    MessageUpdated,
    /// A message was deleted; payload: its tombstone (a Message).
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    /// A reaction was added or taken back; payload: as the `reaction.updated` frame.
    #[serde(rename = "reaction.updated")]
    ReactionUpdated,
    /// A member's read watermark moved; payload: `{user_id, read_seq}`.
    #[serde(rename = "message.read")]
    MessageRead,
    /// A user's presence changed; payload: Presence.
    #[serde(rename = "presence.changed")]
    PresenceChanged,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 15] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::RoomCreated,
        EventType::RoomUpdated,
        EventType::RoomDeleted,
        EventType::MemberJoined,
        EventType::MemberUpdated,
        EventType::MemberLeft,
        EventType::MessageCreated,
        EventType::MessageUpdated,
        EventType::MessageDeleted,
        EventType::ReactionUpdated,
        EventType::MessageRead,
        EventType::PresenceChanged,
    ];

    /// The name, as in API.md (`message.created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::RoomCreated => "room.created",
            EventType::RoomUpdated => "room.updated",
            EventType::RoomDeleted => "room.deleted",
            EventType::MemberJoined => "member.joined",
            EventType::MemberUpdated => "member.updated",
            EventType::MemberLeft => "member.left",
            EventType::MessageCreated => "message.created",
            EventType::MessageUpdated => "message.updated",
            EventType::MessageDeleted => "message.deleted",
            EventType::ReactionUpdated => "reaction.updated",
            EventType::MessageRead => "message.read",
            EventType::PresenceChanged => "presence.changed",
        }
    }

    /// The type with this name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One domain event as other services receive it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per event; consumers dedupe by it (delivery is at least once).
    pub id: Uuid,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Always [`VERSION`].
    pub version: String,
    /// When the change was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Always [`SOURCE`].
    pub source: String,
    /// The room, for every room event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// The user the event is about or by, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The object the HTTP API returns for the subject.
    pub payload: serde_json::Value,
}

impl Envelope {
    /// A new event with a fresh id, recorded now.
    pub fn new(
        kind: EventType,
        room_id: Option<RoomId>,
        user_id: Option<UserId>,
        payload: &impl Serialize,
    ) -> Envelope {
        Envelope {
            id: Uuid::new_v4(),
            kind,
            version: VERSION.into(),
            occurred_at: OffsetDateTime::now_utc(),
            source: SOURCE.into(),
            room_id,
            user_id,
            // Domain types serialize infallibly (no maps with non-string keys).
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }

    /// A `user.*` event: the user without email.
    pub fn of_user(kind: EventType, user: &User) -> Envelope {
        Envelope::new(kind, None, Some(user.id), &user.clone().public())
    }

    /// A `room.*` event.
    pub fn of_room(kind: EventType, room: &Room) -> Envelope {
        Envelope::new(kind, Some(room.id), None, room)
    }

    /// A `member.*` event.
    pub fn of_member(kind: EventType, member: &Member) -> Envelope {
        Envelope::new(kind, Some(member.room_id), Some(member.user.id), member)
    }

    /// A `message.*` event (a deletion's payload is the tombstone).
    pub fn of_message(kind: EventType, message: &Message) -> Envelope {
        Envelope::new(
            kind,
            Some(message.room_id),
            Some(message.sender_id),
            message,
        )
    }

    /// A `reaction.updated` event: what the `reaction.updated` frame says.
    pub fn of_reaction(edit: &ReactionEdit, message: &Message) -> Envelope {
        Envelope::new(
            EventType::ReactionUpdated,
            Some(message.room_id),
            Some(edit.user_id),
            &ReactionPayload {
                room_id: message.room_id,
                message_id: message.id,
                rev: message.rev,
                user_id: edit.user_id,
                emoji: &edit.emoji,
                added: edit.add,
                reactions: &message.reactions,
            },
        )
    }

    /// A `message.read` event.
    pub fn of_read(room: RoomId, user: UserId, read_seq: Seq) -> Envelope {
        Envelope::new(
            EventType::MessageRead,
            Some(room),
            Some(user),
            &ReadPayload {
                user_id: user,
                read_seq,
            },
        )
    }

    /// The JSON body sinks send.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The payload of `reaction.updated`.
#[derive(Serialize)]
struct ReactionPayload<'a> {
    room_id: RoomId,
    message_id: MessageId,
    rev: Rev,
    user_id: UserId,
    emoji: &'a Emoji,
    added: bool,
    reactions: &'a [Reaction],
}

/// The payload of `message.read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPayload {
    /// Who read.
    pub user_id: UserId,
    /// Their read watermark now.
    pub read_seq: Seq,
}

/// An event waiting in the outbox for one channel, as the relay hands it to a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// The envelope's id.
    pub id: Uuid,
    /// Its type (the AMQP routing key).
    pub kind: EventType,
    /// The envelope as JSON, exactly as recorded.
    pub body: String,
    /// Failed attempts to deliver it so far.
    pub attempts: u32,
}
