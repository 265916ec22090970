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
    Search,
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

/// The columns of `uploads` as messages are read with their attachment, named apart from the
/// message's own `id` and `created_at`.
#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Attached {
    UploadId,
    UploadUploader,
    UploadName,
    UploadContentType,
    UploadSize,
    UploadSha256,
    UploadCreatedAt,
}

/// Names that exist only in queries: computed columns, table aliases, type and function names.
#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum Derived {
    /// `messages` again, as the replies of the outer message's thread.
    Replies,
    /// The lateral subquery that summarises the outer message's thread.
    Thread,
    ReplyCount,
    LastReplyAt,
    UnreadCount,
    MentionCount,
    /// The type of `messages.mentions`, for casting its bound text form.
    #[iden = "uuid[]"]
    UuidArray,
    /// The type a `pinned` flag is cast to, to compare it with a cursor's rank.
    #[iden = "integer"]
    Integer,
    /// The type a search's bound text form is cast to.
    #[iden = "tsquery"]
    Tsquery,
    #[iden = "array_to_tsvector"]
    ArrayToTsvector,
    #[iden = "string_to_array"]
    StringToArray,
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

#[derive(Clone, Copy, Debug, Iden)]
pub(crate) enum OutboxTurns {
    Table,
    Channel,
}
