//! Messages, their validated inputs and history queries.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{MessageId, Rev, RoomId, Seq, UploadId, UserId};
use super::upload::Upload;

/// What a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The control characters a body may hold (inside: trimming drops them at the ends).
    pub const CONTROLS: [char; 2] = ['\n', '\t'];

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
            .any(|c| c.is_control() && !Self::CONTROLS.contains(&c))
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
    /// The longest client id, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates a client id.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if !(1..=Self::MAX_CHARS).contains(&raw.chars().count()) {
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// The upload's id.
    pub id: UploadId,
    /// The sanitised original file name.
    pub name: String,
    /// The type decided from the bytes.
    pub content_type: String,
    /// The size in bytes.
    pub size: i64,
    /// The content path.
    pub url: String,
}

impl Attachment {
    /// How a message shows an upload it carries.
    pub fn of(upload: &Upload) -> Attachment {
        Attachment {
            id: upload.id,
            name: upload.name.as_str().to_owned(),
            content_type: upload.content_type.clone(),
            size: upload.size,
            url: format!("/v1/uploads/{}/content", upload.id),
        }
    }
}

/// A root message's thread summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadSummary {
    /// How many replies the thread has (deleted ones included, as tombstones).
    pub reply_count: i64,
    /// When the newest reply was posted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_reply_at: Option<OffsetDateTime>,
}

/// A reaction: an emoji, or a `:shortcode:` of ASCII letters, digits, `_`, `+` and `-`; 1 to
/// 32 bytes of UTF-8 without whitespace or control characters. An emoji (anything not a
/// shortcode) has at least one non-ASCII character and no ASCII letters, which admits keycaps
/// such as `1️⃣` and keeps words out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Emoji(String);

impl Emoji {
    /// The longest reaction, in bytes.
    pub const MAX_BYTES: usize = 32;

    /// Validates a reaction.
    pub fn parse(raw: &str) -> Result<Emoji, &'static str> {
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err("must be 1-32 bytes");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters");
        }
        let shortcode = raw.len() > 2
            && raw.starts_with(':')
            && raw.ends_with(':')
            && raw[1..raw.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'));
        let emoji = !raw.is_ascii() && !raw.chars().any(|c| c.is_ascii_alphabetic());
        if shortcode || emoji {
            Ok(Emoji(raw.to_owned()))
        } else {
            Err("must be an emoji or a :shortcode:")
        }
    }

    /// The reaction's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Emoji {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Emoji::parse(&s)
    }
}

impl From<Emoji> for String {
    fn from(e: Emoji) -> String {
        e.0
    }
}

/// One emoji's reactions on a message. A message lists them in the order each emoji was first
/// used; an emoji keeps its place while anyone still reacts with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    /// The emoji or `:shortcode:`.
    pub emoji: Emoji,
    /// How many users reacted with it.
    pub count: i64,
    /// Whether the viewer is one of them. Known only where a message is read for one user
    /// (HTTP responses); events go to everyone alike and leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub me: Option<bool>,
}

/// A message as the API shows it. A deleted message is a tombstone: `deleted`, no body, no
/// attachment, no reactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(required))]
    pub body: Option<String>,
    /// The attached file.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub attachment: Option<Attachment>,
    /// The message it quotes.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub reply_to: Option<MessageId>,
    /// The thread root it belongs to.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub thread_id: Option<MessageId>,
    /// The thread summary, on roots that have replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub thread: Option<ThreadSummary>,
    /// The members named as `@username` in the body.
    pub mentions: Vec<UserId>,
    /// The sender's idempotency key.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub client_id: Option<ClientId>,
    /// When it was posted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last edited.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required))]
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
    /// Its validated text (a file's caption may be absent).
    pub body: Option<MessageBody>,
    /// The upload it carries (checked to be the sender's); `kind` is then `File`.
    pub attachment: Option<UploadId>,
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

/// An edit of a message's text, as the engine hands it to the store.
#[derive(Clone, Debug)]
pub struct MessageEdit {
    /// The message's room.
    pub room_id: RoomId,
    /// The message.
    pub id: MessageId,
    /// The new validated text.
    pub body: MessageBody,
    /// The members the new text mentions.
    pub mentions: Vec<UserId>,
    /// When it was edited.
    pub edited_at: OffsetDateTime,
}

/// A user adding or taking back a reaction, as the engine hands it to the store.
#[derive(Clone, Debug)]
pub struct ReactionEdit {
    /// The message's room.
    pub room_id: RoomId,
    /// The message.
    pub message_id: MessageId,
    /// Who reacts.
    pub user_id: UserId,
    /// With what.
    pub emoji: Emoji,
    /// `true` adds the reaction, `false` takes it back.
    pub add: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// What a reaction edit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionChange {
    /// The message after the edit (with the room's new `rev` when it changed).
    pub message: Message,
    /// `false` when the reaction was already there (or already gone) and nothing changed.
    pub changed: bool,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    /// The messages, ascending by seq.
    pub messages: Vec<Message>,
    /// Whether more exist beyond this page in the direction of paging.
    pub has_more: bool,
}
