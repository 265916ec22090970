//! Messages, their validated inputs and history queries.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{MessageId, Rev, RoomId, Seq, UserId};

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Text written by a user.
    Text,
    /// A file, with an optional caption.
    File,
    /// Reserved for the server's own messages (none are posted in v1).
    System,
}

impl MessageKind {
    /// The kind's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::File => "file",
            MessageKind::System => "system",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<MessageKind> {
        match s {
            "text" => Some(MessageKind::Text),
            "file" => Some(MessageKind::File),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }
}

/// A message body: trimmed, 1 to `max_chars` characters, no control characters but line breaks
/// and tabs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    /// Validates a body against the configured maximum length.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, String> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 {
            return Err("must not be empty".into());
        }
        if len > max_chars {
            return Err(format!("must be at most {max_chars} characters"));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err("must not contain control characters".into());
        }
        Ok(MessageBody(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The sender's idempotency key for a message: 1-64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    /// Validates a client id.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if !(1..=64).contains(&raw.chars().count()) {
            return Err("must be 1-64 characters");
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(ClientId(raw.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ClientId::parse(&s)
    }
}

impl From<ClientId> for String {
    fn from(c: ClientId) -> String {
        c.0
    }
}

/// A file attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The upload's id.
    pub id: uuid::Uuid,
    /// The sanitised original file name.
    pub name: String,
    /// The type decided from the bytes.
    pub content_type: String,
    /// The size in bytes.
    pub size: i64,
    /// The content path.
    pub url: String,
}

/// A root message's thread summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSummary {
    /// How many replies the thread has (deleted ones included, as tombstones).
    pub reply_count: i64,
    /// When the newest reply was posted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_reply_at: Option<OffsetDateTime>,
}

/// One emoji's reactions on a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji or `:shortcode:`.
    pub emoji: String,
    /// How many users reacted with it.
    pub count: i64,
    /// Whether the viewer is one of them.
    pub me: bool,
}

/// A message as the API shows it. A deleted message is a tombstone: `deleted`, no body, no
/// attachment, no reactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Its room.
    pub room_id: RoomId,
    /// Its position in the room.
    pub seq: Seq,
    /// The room's `rev` at the message's last change.
    pub rev: Rev,
    /// Its author.
    pub sender_id: UserId,
    /// Text, file or system.
    pub kind: MessageKind,
    /// The text (`None` when deleted, or a file without caption).
    pub body: Option<String>,
    /// The attached file.
    pub attachment: Option<Attachment>,
    /// The message it quotes.
    pub reply_to: Option<MessageId>,
    /// The thread root it belongs to.
    pub thread_id: Option<MessageId>,
    /// The thread summary, on roots that have replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
    /// The members named as `@username` in the body.
    pub mentions: Vec<UserId>,
    /// The sender's idempotency key.
    pub client_id: Option<ClientId>,
    /// When it was posted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last edited.
    #[serde(with = "time::serde::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// Its reactions.
    pub reactions: Vec<Reaction>,
}

/// A message to append, as the engine hands it to the store; the store assigns `seq` and `rev`.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Its id, generated by the engine.
    pub id: MessageId,
    /// Its room.
    pub room_id: RoomId,
    /// Its author.
    pub sender_id: UserId,
    /// Its kind.
    pub kind: MessageKind,
    /// Its validated text.
    pub body: Option<MessageBody>,
    /// The sender's idempotency key.
    pub client_id: Option<ClientId>,
    /// The quoted message (checked to be in the same room).
    pub reply_to: Option<MessageId>,
    /// The thread root (checked to be a root of the same room).
    pub thread_id: Option<MessageId>,
    /// The mentioned members.
    pub mentions: Vec<UserId>,
    /// When it was posted.
    pub created_at: OffsetDateTime,
}

/// What appending a message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The stored message: the new one, or the original of a repeated `client_id`.
    pub message: Message,
    /// `false` when the `client_id` was already used and nothing was stored.
    pub created: bool,
}

/// Which slice of a room's history to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryAnchor {
    /// The newest messages.
    Latest,
    /// The newest messages with a seq below this one.
    Before(Seq),
    /// The oldest messages with a seq above this one.
    After(Seq),
}

/// A page of history in ascending seq, and whether more exist in the direction of paging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    /// The messages, ascending by seq.
    pub messages: Vec<Message>,
    /// Whether more exist beyond this page in the direction of paging.
    pub has_more: bool,
}
