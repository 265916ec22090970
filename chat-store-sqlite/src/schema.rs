//! The names of tables and columns, as sea-query identifiers; the migrations define them.

use sea_query::Iden;

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    DisplayName,
    Email,
    EmailKey,
    PasswordHash,
    CreatedAt,
    DeletedAt,
    PurgedAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum ExternalUsers {
    Table,
    Issuer,
    Subject,
    UserId,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum AuthSessions {
    Table,
    Id,
    UserId,
    RefreshHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum SpentRefreshTokens {
    Table,
    Hash,
    SessionId,
    ExpiresAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Rooms {
    Table,
    Id,
    Kind,
    Name,
    Topic,
    Visibility,
    CreatedBy,
    CreatedAt,
    MemberCount,
    LastSeq,
    Rev,
    LastMessageAt,
    DirectKey,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Memberships {
    Table,
    RoomId,
    UserId,
    Role,
    JoinedAt,
    ReadSeq,
    DeliveredSeq,
    Pinned,
    Muted,
    Archived,
    ReadAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Messages {
    Table,
    RoomId,
    Seq,
    Id,
    SenderId,
    Kind,
    Body,
    ClientId,
    ReplyTo,
    ThreadId,
    Mentions,
    CreatedAt,
    EditedAt,
    Deleted,
    Rev,
    AttachmentId,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Mentions {
    Table,
    RoomId,
    Seq,
    UserId,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Reactions {
    Table,
    RoomId,
    Seq,
    Emoji,
    UserId,
    CreatedAt,
    FirstRev,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Uploads {
    Table,
    Id,
    Uploader,
    Name,
    ContentType,
    Size,
    Sha256,
    CreatedAt,
}

/// The words of each live message's text: the content of the full-text index.
#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum MessageWords {
    Table,
    Id,
    RoomId,
    Seq,
    Words,
}

/// The full-text index over `message_words`; its table name is the left side of `MATCH`.
#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum MessageSearch {
    Table,
    Rowid,
}

/// Names that exist only in queries: computed columns and table aliases.
#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Derived {
    /// `messages` again, as the replies of the outer message's thread.
    Replies,
    /// `messages` again, as the messages a search matched.
    Matched,
    ReplyCount,
    LastReplyAt,
    UnreadCount,
    MentionCount,
    ReactionCount,
    /// The columns of the upload a message carries, as messages are read with it.
    AttachmentUploader,
    AttachmentName,
    AttachmentContentType,
    AttachmentSize,
    AttachmentSha256,
    AttachmentCreatedAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Nodes {
    Table,
    Id,
    HeartbeatAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Connections {
    Table,
    NodeId,
    UserId,
    Count,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum UserPresence {
    Table,
    UserId,
    Away,
    LastSeen,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum WsTickets {
    Table,
    Hash,
    UserId,
    SessionId,
    ExpiresAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum RoomBans {
    Table,
    RoomId,
    UserId,
    BannedBy,
    BannedAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum UserBlocks {
    Table,
    BlockerId,
    BlockedId,
    BlockedAt,
}

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Outbox {
    Table,
    Position,
    Channel,
    EventId,
    Kind,
    Body,
    Attempts,
    DoneAt,
    Dead,
}
