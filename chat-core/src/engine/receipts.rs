//! Receipts and unread counts: each member's read and delivered watermarks, which only move
//! forward, and the unread counts the server computes from them.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{ChatEngine, Inner};
use crate::domain::{Cursor, PageSize, Room, RoomId, Seq, UserId};
use crate::error::ChatError;
use crate::events::Event;
use crate::ports::{HintKind, Receipt, ReceiptChange};

/// Rooms with more members than this get no `receipt` events (clients read the receipts list).
pub const MAX_RECEIPT_ROOM: i64 = 100;

/// A watermark to move to.
#[derive(Clone, Copy, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkSeq {
    /// The seq read or delivered (clamped to the room's last seq).
    #[serde(deserialize_with = "whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub seq: i64,
}

/// A JSON integer of `i64` (the document says `int64`), also when written with a zero
/// fraction (`5.0`), which JSON Schema's `integer` counts as one.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer of 64 bits")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            // `i64::MAX as f64` is 2^63, just past the largest i64.
            if v.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&v) {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole)
}

/// The caller's watermarks after a read, and what is still unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadState {
    /// Their read watermark.
    pub read_seq: Seq,
    /// Their delivered watermark.
    pub delivered_seq: Seq,
    /// Others' messages after the read watermark, not deleted.
    pub unread_count: i64,
}

/// The caller's delivered watermark after a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveredState {
    /// Their delivered watermark.
    pub delivered_seq: Seq,
}

/// A page of a room's receipts.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptPage {
    /// The members' watermarks, by user id.
    pub receipts: Vec<Receipt>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// One room's unread counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomUnread {
    /// The room.
    pub room_id: RoomId,
    /// Unread messages.
    pub unread_count: i64,
    /// Unread messages that mention the caller.
    pub mention_count: i64,
}

/// The caller's unread messages across their rooms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadSummary {
    /// All unread messages, muted rooms left out.
    pub total: i64,
    /// The rooms with unread messages.
    pub rooms: Vec<RoomUnread>,
}

fn watermark(input: MarkSeq) -> Result<Seq, ChatError> {
    if input.seq < 0 {
        return Err(ChatError::field("seq", "must be 0 or more"));
    }
    Ok(Seq(input.seq))
}

impl ChatEngine {
    /// Moves the caller's read watermark (and delivered with it) forward to `seq`.
    pub async fn mark_read(
        &self,
        actor: UserId,
        room: RoomId,
        input: MarkSeq,
    ) -> Result<ReadState, ChatError> {
        let inner = &self.inner;
        let (found, _) = inner.require_member(actor, room, "not a member").await?;
        let seq = watermark(input)?;
        let change = inner
            .store()
            .mark_read(room, actor, seq, inner.clock.now())
            .await?
            .ok_or(ChatError::NotFound)?;
        inner.announce_receipt(&found, &change).await;
        let unread = inner.store().unread(actor, Some(room), 1).await?;
        Ok(ReadState {
            read_seq: change.receipt.read_seq,
            delivered_seq: change.receipt.delivered_seq,
            unread_count: unread.first().map_or(0, |u| u.unread_count),
        })
    }

    /// Moves the caller's delivered watermark forward to `seq`.
    pub async fn mark_delivered(
        &self,
        actor: UserId,
        room: RoomId,
        input: MarkSeq,
    ) -> Result<DeliveredState, ChatError> {
        let inner = &self.inner;
        let (found, _) = inner.require_member(actor, room, "not a member").await?;
        let seq = watermark(input)?;
        let change = inner
            .store()
            .mark_delivered(room, actor, seq)
            .await?
            .ok_or(ChatError::NotFound)?;
        inner.announce_receipt(&found, &change).await;
        Ok(DeliveredState {
            delivered_seq: change.receipt.delivered_seq,
        })
    }

    /// A page of a room's receipts, for anyone who can see the room.
    pub async fn receipts(
        &self,
        actor: UserId,
        room: RoomId,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<ReceiptPage, ChatError> {
        self.inner.visible_room(actor, room).await?;
        // An empty cursor is the first page, as for every list.
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                Cursor::decode(c)
                    .map(|c| UserId(c.id))
                    .ok_or_else(|| ChatError::BadRequest("invalid cursor".into()))
            })
            .transpose()?;
        let mut receipts = self
            .inner
            .store()
            .receipts(room, after, limit.get() + 1)
            .await?;
        let more = receipts.len() > limit.get() as usize;
        receipts.truncate(limit.get() as usize);
        let next_cursor = more
            .then(|| receipts.last())
            .flatten()
            .map(|r| Cursor::new(0, time::OffsetDateTime::UNIX_EPOCH, r.user_id.0).encode());
        Ok(ReceiptPage {
            receipts,
            next_cursor,
        })
    }

    /// The caller's unread counts: every room with unread messages, and the total of those not
    /// muted. Exact: computed from the watermarks, never kept as a counter that could drift.
    pub async fn unread_summary(&self, actor: UserId) -> Result<UnreadSummary, ChatError> {
        let counts = self
            .inner
            .store()
            .unread(actor, None, self.inner.limits.max_rooms_per_user)
            .await?;
        let total = counts
            .iter()
            .filter(|c| !c.muted)
            .map(|c| c.unread_count)
            .sum();
        let rooms = counts
            .into_iter()
            .filter(|c| c.unread_count > 0)
            .map(|c| RoomUnread {
                room_id: c.room_id,
                unread_count: c.unread_count,
                mention_count: c.mention_count,
            })
            .collect();
        Ok(UnreadSummary { total, rooms })
    }
}

impl Inner {
    /// Tells the room about a watermark that moved, if it is small enough for receipt events.
    async fn announce_receipt(&self, room: &Room, change: &ReceiptChange) {
        if !change.changed || room.member_count > MAX_RECEIPT_ROOM {
            return;
        }
        let user = change.receipt.user_id;
        self.announce(
            Event::Receipt {
                room_id: room.id,
                user_id: user,
                delivered_seq: change.receipt.delivered_seq,
                read_seq: change.receipt.read_seq,
            },
            HintKind::Receipt { user },
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_json_integers_also_with_a_zero_fraction() {
        let seq = |json: &str| serde_json::from_str::<MarkSeq>(json).map(|m| m.seq).ok();
        assert_eq!(seq(r#"{"seq": 5}"#), Some(5));
        assert_eq!(seq(r#"{"seq": 5.0}"#), Some(5));
        assert_eq!(seq(r#"{"seq": -3.0}"#), Some(-3));
        assert_eq!(seq(r#"{"seq": -9223372036854775808.0}"#), Some(i64::MIN));
        assert_eq!(seq(r#"{"seq": 9223372036854775807}"#), Some(i64::MAX));
        assert_eq!(seq(r#"{"seq": 9223372036854775808}"#), None);
        assert_eq!(seq(r#"{"seq": 9223372036854775808.0}"#), None);
        assert_eq!(seq(r#"{"seq": 1e300}"#), None);
        assert_eq!(seq(r#"{"seq": 5.5}"#), None);
        assert_eq!(seq(r#"{"seq": "5"}"#), None);
        assert_eq!(seq(r#"{"seq": null}"#), None);
    }
}
