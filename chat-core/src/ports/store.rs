//! The storage ports: one trait per aggregate, combined into [`Store`]. Each method is one
//! transaction; lookups return `Ok(None)` when nothing matches and keep `Err` for failures.

use async_trait::async_trait;
use std::fmt::Debug;
use time::OffsetDateTime;

use crate::domain::{
    Appended, Credentials, Cursor, Emoji, ExternalId, HistoryAnchor, HistoryPage, Member,
    Membership, Message, MessageEdit, MessageId, NewMessage, NewRoom, ReactionChange, ReactionEdit,
    Rev, Role, Room, RoomId, RoomListItem, RoomPatch, RoomPosition, SearchQuery, Seq, SessionId,
    SettingsPatch, UploadId, User, UserId, UserPatch,
};
use crate::error::StoreError;
use crate::ports::{
    AccountStore, ModerationStore, OutboxStore, PresenceStore, ReceiptStore, TicketStore,
    UploadStore,
};

/// The names of the unique keys a store reports in [`StoreError::Conflict`].
pub mod constraint {
    /// Usernames are unique case-insensitively.
    pub const USERNAME: &str = "users_username_key";
    /// Emails are unique case-insensitively.
    pub const EMAIL: &str = "users_email_key";
    /// A user is a member of a room at most once.
    pub const MEMBERSHIP: &str = "memberships_pkey";
    /// A banned user cannot become a member of the room.
    pub const BAN: &str = "room_bans_pkey";
}

/// A sign-in session: one per login, carrying the hash of its current refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSession {
    /// The session's id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// SHA-256 (hex) of the current refresh token; the token itself is never stored.
    pub refresh_hash: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When the current refresh token stops working.
    pub expires_at: OffsetDateTime,
    /// When it was signed out (its access and refresh tokens stopped working), if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What presenting a refresh token came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// It was the current token of a live session, now replaced by the new one.
    Rotated(AuthSession),
    /// It was a token this session already traded in: it is in someone else's hands too.
    /// Nothing changed.
    Reused(SessionId),
    /// No live session has or had it (never issued, expired, or its session was revoked).
    Unknown,
}

/// Users and their credentials.
#[async_trait]
pub trait UserStore: Send + Sync + Debug {
    /// Stores a new user; `Conflict` on [`constraint::USERNAME`] or [`constraint::EMAIL`].
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError>;
    /// The user with this id (closed accounts are no users).
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user whose username or email equals `login` case-insensitively, with their hash.
    async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError>;
    /// Up to `limit` users whose username or display name starts with `prefix`, compared
    /// case-insensitively with `%`, `_` and `\` taken literally, ordered by username key, after
    /// the username key `after`.
    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError>;
    /// Applies a profile change; `NotFound` for an unknown user, `Conflict` on a taken email.
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> Result<User, StoreError>;
    /// The user provisioned for a host application's `id`.
    async fn external_user(&self, id: &ExternalId) -> Result<Option<User>, StoreError>;
    /// Stores `user`, who has no password, as the one for `id`, and returns it; when `id`
    /// already has a user (another request provisioned it first) returns that one and stores
    /// nothing. `Conflict` on [`constraint::USERNAME`] when someone else has the username.
    async fn provision_external_user(
        &self,
        id: &ExternalId,
        user: &User,
    ) -> Result<User, StoreError>;
}

/// Sign-in sessions and their rotating refresh tokens.
#[async_trait]
pub trait SessionStore: Send + Sync + Debug {
    /// Stores a new session.
    async fn create_session(&self, session: &AuthSession) -> Result<(), StoreError>;
    /// The session with this id, revoked or not.
    async fn session(&self, id: SessionId) -> Result<Option<AuthSession>, StoreError>;
    /// Trades the refresh token whose hash is `old_hash`: when it is the current token of an
    /// unrevoked session and not expired at `now`, replaces it by `new_hash` valid until
    /// `expires_at` and remembers `old_hash` as spent until its own expiry (`Rotated`, so each
    /// token works once); when it is a spent token of an unrevoked session, changes nothing
    /// (`Reused`); otherwise `Unknown`.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the session at `now`; `false` when there is none or it was already revoked.
    async fn revoke_session(&self, id: SessionId, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Replaces the user's password hash and revokes every unrevoked session of theirs but
    /// `keep`, together; returns the sessions revoked. `NotFound` for an unknown user.
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError>;
}

/// Rooms and memberships.
#[async_trait]
pub trait RoomStore: Send + Sync + Debug {
    /// Creates a room with its initial members (joined at `room.created_at`); `NotFound` when a
    /// member is not a user.
    async fn create_room(
        &self,
        room: &NewRoom,
        members: &[(UserId, Role)],
    ) -> Result<(), StoreError>;
    /// Returns the direct room of the two users, creating it from `room` (both as members) when
    /// there is none; `true` when it was created. One per pair, also under concurrent calls.
    async fn direct_room(
        &self,
        room: &NewRoom,
        a: UserId,
        b: UserId,
    ) -> Result<(RoomId, bool), StoreError>;
    /// The room with this id.
    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError>;
    /// Applies a change to the room's details; `None` when there is no such room.
    async fn update_room(
        &self,
        room: RoomId,
        patch: &RoomPatch,
    ) -> Result<Option<Room>, StoreError>;
    /// Up to `limit` public group rooms whose name contains `text` (case-insensitively, `%`,
    /// `_` and `\` taken literally), by most members, then id, after the cursor `after`
    /// (rank = member count, id = room id).
    async fn public_rooms(
        &self,
        text: &str,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Room>, StoreError>;
    /// Up to `limit` of the user's rooms, pinned first, then by last activity (the newest message, else
    /// creation), newest first, then by id descending; `after` is the previous page's last item.
    async fn rooms_of_user(
        &self,
        user: UserId,
        include_archived: bool,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<RoomListItem>, StoreError>;
    /// Where each of the user's rooms stands (at most `max` rooms).
    async fn room_positions(&self, user: UserId, max: u32)
        -> Result<Vec<RoomPosition>, StoreError>;
    /// The user's membership of the room.
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Up to `limit` of the room's members, oldest first (by `joined_at`, then user id).
    async fn members(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError>;
    /// The member who joined first among those with `role`, other than `except`.
    async fn oldest_member(
        &self,
        room: RoomId,
        role: Role,
        except: UserId,
    ) -> Result<Option<UserId>, StoreError>;
    /// The members of the room whose usernames' keys (lowercase) are among `username_keys`.
    async fn members_named(
        &self,
        room: RoomId,
        username_keys: &[String],
    ) -> Result<Vec<UserId>, StoreError>;
    /// Adds a member whose read and delivered watermarks start at the room's `last_seq` (what
    /// was posted before joining is not unread); `Conflict` on [`constraint::MEMBERSHIP`] when
    /// already one, on [`constraint::BAN`] when the user is banned from the room, `NotFound` when
    /// the room or user does not exist. Returns the member and that `last_seq`.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        joined_at: OffsetDateTime,
    ) -> Result<(Member, Seq), StoreError>;
    /// Ends a membership and, when `promote` is given, makes that member the owner, together;
    /// `NotFound` (and nothing changed) when either is not a member. Returns the members left.
    async fn remove_member(
        &self,
        room: RoomId,
        user: UserId,
        promote: Option<UserId>,
    ) -> Result<i64, StoreError>;
    /// Gives members new roles, all together (an ownership hand-over changes two); `NotFound`
    /// (and nothing changed) when one of them is not a member.
    async fn set_roles(&self, room: RoomId, roles: &[(UserId, Role)]) -> Result<(), StoreError>;
    /// Applies a member's own settings of the room; `None` when `user` is not a member.
    async fn update_settings(
        &self,
        room: RoomId,
        user: UserId,
        settings: &SettingsPatch,
    ) -> Result<Option<Membership>, StoreError>;
    /// Deletes the room and its messages if it has no members; `true` when it did.
    async fn delete_room_if_empty(&self, room: RoomId) -> Result<bool, StoreError>;
    /// Deletes the room with its memberships, messages and bans; returns the uploads its
    /// messages carried that no message carries any more, or `None` when there is no such room.
    async fn delete_room(&self, room: RoomId) -> Result<Option<Vec<UploadId>>, StoreError>;
}

/// Messages and history.
#[async_trait]
pub trait MessageStore: Send + Sync + Debug {
    /// Appends a message: assigns the room's next `seq` and `rev`, moves the sender's read and
    /// delivered watermarks to it, all in one transaction; `NotFound` also when its attachment
    /// is not an upload. A `client_id` the sender already used
    /// in the room stores nothing and returns the original (`created: false`). `NotFound` when
    /// the room does not exist.
    async fn append_message(&self, message: &NewMessage) -> Result<Appended, StoreError>;
    /// The message with this id in this room.
    async fn message(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError>;
    /// How many messages the room holds, deleted ones left out.
    async fn message_count(&self, room: RoomId) -> Result<i64, StoreError>;
    /// A page of the room's history in ascending seq (see [`HistoryAnchor`]).
    async fn history(
        &self,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> Result<HistoryPage, StoreError>;
    /// Messages with `seq <= through` changed after `after_rev`, ascending by `rev`.
    async fn changed_since(
        &self,
        room: RoomId,
        through: Seq,
        after_rev: Rev,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` replies in the thread of `root` with a seq above `after`, ascending, and
    /// whether more follow.
    async fn thread(
        &self,
        room: RoomId,
        root: MessageId,
        after: Seq,
        limit: u32,
    ) -> Result<HistoryPage, StoreError>;
    /// Replaces a message's text and mentions (and what search finds it by), sets `edited_at`
    /// and gives it the room's next `rev`; `None` (and nothing changed) when there is no such
    /// message or it is deleted.
    async fn edit_message(&self, edit: &MessageEdit) -> Result<Option<Message>, StoreError>;
    /// Makes a message a tombstone: no text, attachment, reactions or mentions, gone from
    /// search, with the room's next `rev` (its upload, carried by nothing else, is then
    /// unattached). Returns the tombstone; `None` (and nothing changed)
    /// when there is no such message or it was already deleted.
    async fn delete_message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError>;
    /// Adds or takes back one user's reaction on a message; a change gives the message the
    /// room's next `rev`. `None` (and nothing changed) when there is no such message or it is
    /// deleted.
    async fn set_reaction(&self, edit: &ReactionEdit)
        -> Result<Option<ReactionChange>, StoreError>;
    /// Which of the messages at `seqs` the user reacted to, and with what.
    async fn reactions_by(
        &self,
        room: RoomId,
        user: UserId,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, Emoji)>, StoreError>;
    /// Up to `limit` messages, not deleted, in rooms `user` is a member of (only `room` when
    /// given), whose text holds every word of `query`; newest first (by `created_at`, then id,
    /// both descending), after the cursor `after` (at = created_at, id = message id).
    async fn search_messages(
        &self,
        user: UserId,
        query: &SearchQuery,
        room: Option<RoomId>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

/// Everything the engine stores, behind one object.
#[async_trait]
pub trait Store:
    UserStore
    + AccountStore
    + SessionStore
    + RoomStore
    + MessageStore
    + PresenceStore
    + ReceiptStore
    + UploadStore
    + TicketStore
    + ModerationStore
    + OutboxStore
{
    /// Answers when the backend is reachable (for readiness checks).
    async fn ping(&self) -> Result<(), StoreError>;
}
