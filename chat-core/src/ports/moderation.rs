//! The moderation port: users' blocks and rooms' bans.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{Ban, Block, Cursor, RoomId, UserId};
use crate::error::StoreError;

/// Blocks between users and bans from rooms.
#[async_trait]
pub trait ModerationStore: Send + Sync + Debug {
    /// Records that `blocker` blocks `blocked` from `at`; blocking again keeps the first record.
    /// `NotFound` when either is not a user.
    async fn block_user(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Ends the block of `blocked` by `blocker`, if there is one.
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError>;
    /// Up to `limit` users `blocker` blocks, oldest block first (by `blocked_at`, then user id),
    /// after the cursor `after` (at = blocked_at, id = user id).
    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError>;
    /// Whether `blocker` blocks `blocked`.
    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError>;
    /// Whether a member of the room other than `user` blocks `user`.
    async fn blocked_by_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Bans `user` from the room (by `by`, at `at`) and ends their membership if they have one,
    /// together; banning again keeps the first ban. Returns the members left when a membership
    /// ended. `NotFound` (and nothing changed) when the room or the user does not exist.
    async fn ban(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError>;
    /// Lifts the user's ban from the room; `false` when there was none.
    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Up to `limit` bans of the room, oldest first (by `banned_at`, then user id), after the
    /// cursor `after` (at = banned_at, id = user id).
    async fn bans(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Ban>, StoreError>;
}
