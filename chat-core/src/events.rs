//! Events pushed to live sessions. Each is serialized once and the same bytes go to every
//! receiver, so an event never carries anything that depends on who receives it.

use std::sync::Arc;

use serde::Serialize;

use crate::domain::{Emoji, Member, Message, MessageId, Reaction, Rev, RoomId, Seq, UserId};

/// A change that live sessions of a room's members are told about.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A message was posted.
    #[serde(rename = "message.created")]
    MessageCreated {
        /// The message.
        message: Message,
    },
    /// A message was edited (also replayed by `sync` with a `rev`).
    #[serde(rename = "message.updated")]
    MessageUpdated {
        /// The message as it is now.
        message: Message,
    },
    /// A message was deleted (also replayed by `sync` with a `rev`).
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// Its room.
        room_id: RoomId,
        /// The message.
        message_id: MessageId,
        /// Its seq.
        seq: Seq,
        /// The room's rev at the deletion.
        rev: Rev,
    },
    /// A user added or took back a reaction.
    #[serde(rename = "reaction.updated")]
    ReactionUpdated {
        /// Its room.
        room_id: RoomId,
        /// The message.
        message_id: MessageId,
        /// The message's rev after the change.
        rev: Rev,
        /// Who reacted.
        user_id: UserId,
        /// With what.
        emoji: Emoji,
        /// `true` when added, `false` when taken back.
        added: bool,
        /// The message's reactions now (without `me`, which depends on the receiver).
        reactions: Vec<Reaction>,
    },
    /// A user became a member.
    #[serde(rename = "member.joined")]
    MemberJoined {
        /// The room.
        room_id: RoomId,
        /// The new member.
        member: Member,
    },
    /// A member's role changed.
    #[serde(rename = "member.updated")]
    MemberUpdated {
        /// The room.
        room_id: RoomId,
        /// The member as they are now.
        member: Member,
    },
    /// A room's details changed.
    #[serde(rename = "room.updated")]
    RoomUpdated {
        /// The room as it is now.
        room: crate::domain::Room,
    },
    /// The room was deleted; nothing of it follows.
    #[serde(rename = "room.deleted")]
    RoomDeleted {
        /// The room.
        room_id: RoomId,
    },
    /// A membership ended (left or removed).
    #[serde(rename = "member.left")]
    MemberLeft {
        /// The room.
        room_id: RoomId,
        /// The former member.
        user_id: UserId,
    },
    /// A user's presence changed (sent to those who share a room with them).
    #[serde(rename = "presence")]
    Presence {
        /// The user.
        user_id: UserId,
        /// Their availability.
        status: crate::engine::PresenceStatus,
        /// When a connection of theirs last opened or closed.
        #[serde(with = "time::serde::rfc3339::option")]
        last_seen: Option<time::OffsetDateTime>,
    },
    /// A member's watermarks moved (rooms of up to 100 members).
    #[serde(rename = "receipt")]
    Receipt {
        /// The room.
        room_id: RoomId,
        /// The member.
        user_id: UserId,
        /// Their delivered watermark.
        delivered_seq: Seq,
        /// Their read watermark.
        read_seq: Seq,
    },
    /// A member started or stopped typing.
    #[serde(rename = "typing")]
    Typing {
        /// The room.
        room_id: RoomId,
        /// Who types.
        user_id: UserId,
        /// Whether they are typing now.
        typing: bool,
    },
}

/// The event that tells of a changed message: its tombstone's facts, or the message as it is.
pub fn changed_event(message: Message) -> Event {
    if message.deleted {
        Event::MessageDeleted {
            room_id: message.room_id,
            message_id: message.id,
            seq: message.seq,
            rev: message.rev,
        }
    } else {
        Event::MessageUpdated { message }
    }
}

/// The event that tells of a reaction added or taken back, with the message's counts now.
pub fn reaction_event(message: Message, user: UserId, emoji: Emoji, added: bool) -> Event {
    Event::ReactionUpdated {
        room_id: message.room_id,
        message_id: message.id,
        rev: message.rev,
        user_id: user,
        emoji,
        added,
        reactions: message.reactions,
    }
}

impl Event {
    /// The room the event belongs to (none for presence, which goes to a user's rooms).
    pub fn room(&self) -> Option<RoomId> {
        match self {
            Event::MessageCreated { message } | Event::MessageUpdated { message } => {
                Some(message.room_id)
            }
            Event::MessageDeleted { room_id, .. }
            | Event::ReactionUpdated { room_id, .. }
            | Event::MemberJoined { room_id, .. }
            | Event::MemberUpdated { room_id, .. }
            | Event::MemberLeft { room_id, .. }
            | Event::RoomDeleted { room_id }
            | Event::Typing { room_id, .. }
            | Event::Receipt { room_id, .. } => Some(*room_id),
            Event::RoomUpdated { room } => Some(room.id),
            Event::Presence { .. } => None,
        }
    }

    /// The seq that orders the event in its room's stream, for events that take one.
    fn seq(&self) -> Option<Seq> {
        match self {
            Event::MessageCreated { message } => Some(message.seq),
            _ => None,
        }
    }

    /// Serializes the event once into the frame every receiver shares.
    pub fn into_frame(self) -> Arc<Frame> {
        let json = match serde_json::to_string(&self) {
            Ok(json) => json,
            // Our events hold only strings, numbers and ids: serialization cannot fail.
            Err(e) => unreachable!("event serialization failed: {e}"),
        };
        Arc::new(Frame {
            room: self.room(),
            seq: self.seq(),
            json: json.into(),
        })
    }
}

/// A serialized event with what routing and ordering need to know of it.
#[derive(Debug)]
pub struct Frame {
    /// The room it belongs to, if any.
    pub room: Option<RoomId>,
    /// Its seq in that room, for message creations (delivered in order, at most once).
    pub seq: Option<Seq>,
    /// The JSON text sent to clients.
    pub json: Arc<str>,
}
