//! Rooms, memberships and roles.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{Rev, RoomId, Seq, UserId};
use super::message::Message;
use super::user::User;

/// Group rooms have names and many members; direct rooms join exactly two users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A named room with any number of members.
    Group,
    /// The one room of a pair of users.
    Direct,
}

/// Who can find and read a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed, readable by any signed-in user, joinable.
    Public,
    /// Members only.
    #[default]
    Private,
}

/// A member's rank in a room: `Owner > Admin > Member`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A plain member.
    Member,
    /// May manage members of lower rank and the room's details.
    Admin,
    /// The one who owns the room.
    Owner,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

impl RoomKind {
    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Direct => "direct",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<RoomKind> {
        match s {
            "group" => Some(RoomKind::Group),
            "direct" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

impl Visibility {
    /// The visibility's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    /// Parses a stored or requested visibility name.
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// A group room's name: trimmed, 1-100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    /// The longest room name, in characters (after trimming).
    pub const MAX_CHARS: usize = 100;

    /// Validates a room name.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if !(1..=Self::MAX_CHARS).contains(&trimmed.chars().count()) {
            return Err("must be 1-100 characters");
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(RoomName(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room topic: trimmed, up to 500 characters; line breaks allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic(String);

impl Topic {
    /// The longest topic, in characters (after trimming).
    pub const MAX_CHARS: usize = 500;
    /// The control characters a topic may hold (inside: trimming drops them at the ends).
    pub const CONTROLS: [char; 1] = ['\n'];

    /// Validates a topic.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 500 characters");
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !Self::CONTROLS.contains(&c))
        {
            return Err("must not contain control characters");
        }
        Ok(Topic(trimmed.to_owned()))
    }

    /// The topic.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    /// Its id.
    pub id: RoomId,
    /// Group or direct.
    pub kind: RoomKind,
    /// Its name (empty for direct rooms).
    pub name: String,
    /// Its topic, if set.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub topic: Option<String>,
    /// Public or private.
    pub visibility: Visibility,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How many members it has.
    pub member_count: i64,
    /// Its newest message's seq (0 when empty).
    pub last_seq: Seq,
    /// Its change counter.
    pub rev: Rev,
    /// When its newest message was posted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_message_at: Option<OffsetDateTime>,
    /// Its newest message.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_message: Option<Box<Message>>,
}

/// What a new room is made of, as the engine hands it to the store.
#[derive(Clone, Debug)]
pub struct NewRoom {
    /// Its id, generated by the engine.
    pub id: RoomId,
    /// Group or direct.
    pub kind: RoomKind,
    /// Its name (empty for direct rooms).
    pub name: String,
    /// Its topic.
    pub topic: Option<String>,
    /// Public or private.
    pub visibility: Visibility,
    /// Its creator.
    pub created_by: UserId,
    /// The creation time; also every initial member's `joined_at`.
    pub created_at: OffsetDateTime,
}

/// One user's membership of a room, with their watermarks and settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The room.
    pub room_id: RoomId,
    /// The member.
    pub user_id: UserId,
    /// Their rank.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
    /// The newest seq they have read.
    pub read_seq: Seq,
    /// The newest seq delivered to one of their devices.
    pub delivered_seq: Seq,
    /// Pinned to the top of their room list.
    pub pinned: bool,
    /// Left out of their unread total.
    pub muted: bool,
    /// Hidden from their room list unless asked for.
    pub archived: bool,
}

/// A change to a room's details; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomPatch {
    /// A new name.
    pub name: Option<RoomName>,
    /// A new topic, or `Some(None)` to clear it.
    pub topic: Option<Option<Topic>>,
    /// A new visibility.
    pub visibility: Option<Visibility>,
}

/// A change to a member's own settings of a room; `None` leaves a setting as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    /// Pin the room to the top of their list.
    pub pinned: Option<bool>,
    /// Leave the room out of their unread total.
    pub muted: Option<bool>,
    /// Hide the room from their list unless asked for.
    pub archived: Option<bool>,
}

/// A member as the API shows it: the room, the user, their role.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The room.
    pub room_id: RoomId,
    /// The member (without email).
    pub user: User,
    /// Their rank.
    pub role: Role,
    /// When they joined.
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// The caller's own view of one of their rooms, shown in room lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembershipView {
    /// Their rank.
    pub role: Role,
    /// When they joined.
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
    /// Their read watermark.
    pub read_seq: Seq,
    /// Their delivered watermark.
    pub delivered_seq: Seq,
    /// Messages of others after `read_seq`, not deleted.
    pub unread_count: i64,
    /// Those of the unread messages that mention them.
    pub mention_count: i64,
    /// Pinned to the top.
    pub pinned: bool,
    /// Left out of the unread total.
    pub muted: bool,
    /// Hidden unless asked for.
    pub archived: bool,
}

/// A room in the caller's room list.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomListItem {
    /// The room.
    #[serde(flatten)]
    pub room: Room,
    /// The caller's membership.
    pub membership: MembershipView,
}

/// Where a room stands, as a connection learns it in `ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RoomPosition {
    /// The room.
    pub room_id: RoomId,
    /// Its newest seq.
    pub last_seq: Seq,
    /// Its change counter.
    pub rev: Rev,
    /// The user's read watermark.
    pub read_seq: Seq,
}
