//! The receipts port: each member's read and delivered watermarks, and the unread counts that
//! follow from them.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{RoomId, Seq, UserId};
use crate::error::StoreError;

/// A member's watermarks in a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The member.
    pub user_id: UserId,
    /// The newest seq delivered to one of their devices.
    pub delivered_seq: Seq,
    /// The newest seq they have read.
    pub read_seq: Seq,
    /// When their read watermark last moved.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub read_at: Option<OffsetDateTime>,
}

/// What moving a watermark did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptChange {
    /// The watermarks now.
    pub receipt: Receipt,
    /// Whether either watermark moved.
    pub changed: bool,
}

/// A member's unread messages in one room: others' messages after their read watermark, not
/// deleted, and those of them that mention the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadCount {
    /// The room.
    pub room_id: RoomId,
    /// Unread messages.
    pub unread_count: i64,
    /// Unread messages that mention the member.
    pub mention_count: i64,
    /// Whether the member muted the room.
    pub muted: bool,
}

/// Watermarks and unread counts.
#[async_trait]
pub trait ReceiptStore: Send + Sync + Debug {
    /// Moves the member's read watermark forward to `seq`, clamped to the room's last seq, and
    /// the delivered one at least as far; stamps `read_at` with `now` when the read watermark
    /// moved. Never moves a watermark backwards. `None` when `user` is not a member.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
        now: OffsetDateTime,
    ) -> Result<Option<ReceiptChange>, StoreError>;
    /// Moves the member's delivered watermark forward to `seq`, clamped to the room's last seq.
    /// `None` when `user` is not a member.
    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<ReceiptChange>, StoreError>;
    /// Up to `limit` of the room's members' receipts, by user id, after `after`.
    async fn receipts(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Receipt>, StoreError>;
    /// The user's unread counts in `room`, or in every room of theirs (at most `max`) when
    /// `room` is `None`; rooms they are not in are left out.
    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
        max: u32,
    ) -> Result<Vec<UnreadCount>, StoreError>;
}
