//! Receipts: each member's read and delivered watermarks, and the unread counts they leave.

use async_trait::async_trait;
use chat_core::domain::{from_micros, micros, RoomId, Seq, UserId};
use chat_core::outbox::Envelope;
use chat_core::ports::{Receipt, ReceiptChange, ReceiptStore, UnreadCount};
use chat_core::StoreError;
use sea_query::{Expr, Func, Order, Query};
use sqlx::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::outbox;
use crate::query::{fetch_all, fetch_optional};
use crate::rooms::{my_rooms, unread};
use crate::schema::{Derived, Memberships, Rooms};
use crate::store::SqliteStore;

const RECEIPT_COLUMNS: [Memberships; 4] = [
    Memberships::UserId,
    Memberships::DeliveredSeq,
    Memberships::ReadSeq,
    Memberships::ReadAt,
];

#[derive(Debug, sqlx::FromRow)]
struct ReceiptRow {
    user_id: Uuid,
    delivered_seq: i64,
    read_seq: i64,
    read_at: Option<i64>,
}

impl From<ReceiptRow> for Receipt {
    fn from(row: ReceiptRow) -> Self {
        Receipt {
            user_id: UserId(row.user_id),
            delivered_seq: Seq(row.delivered_seq),
            read_seq: Seq(row.read_seq),
            read_at: row.read_at.map(from_micros),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct UnreadRow {
    room_id: Uuid,
    unread_count: i64,
    mention_count: i64,
    muted: bool,
}

impl From<UnreadRow> for UnreadCount {
    fn from(row: UnreadRow) -> Self {
        UnreadCount {
            room_id: RoomId(row.room_id),
            unread_count: row.unread_count,
            mention_count: row.mention_count,
            muted: row.muted,
        }
    }
}

/// Moves the member's delivered watermark forward to `seq`, clamped to the room's last seq,
/// and with `read_at` the read one too, stamped with it when it moves. `None` when `user` is not
/// a member. Runs in the single writer's transaction, so what it reads cannot change under it;
/// MAX keeps a watermark from moving backwards all the same.
async fn advance(
    conn: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
    seq: Seq,
    read_at: Option<OffsetDateTime>,
) -> Result<Option<ReceiptChange>, StoreError> {
    let q = Query::select()
        .column(Rooms::LastSeq)
        .from(Rooms::Table)
        .and_where(Expr::col(Rooms::Id).eq(room.0))
        .to_owned();
    let last_seq: Option<(i64,)> = fetch_optional(&mut *conn, &q).await.map_err(db)?;
    let Some((last_seq,)) = last_seq else {
        return Ok(None);
    };
    let q = Query::select()
        .columns(RECEIPT_COLUMNS)
        .from(Memberships::Table)
        .and_where(Expr::col(Memberships::RoomId).eq(room.0))
        .and_where(Expr::col(Memberships::UserId).eq(user.0))
        .to_owned();
    let row: Option<ReceiptRow> = fetch_optional(&mut *conn, &q).await.map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let receipt = Receipt::from(row);
    let target = seq.min(Seq(last_seq));
    let read_at = read_at.filter(|_| target > receipt.read_seq);
    if read_at.is_none() && target <= receipt.delivered_seq {
        return Ok(Some(ReceiptChange {
            receipt,
            changed: false,
        }));
    }

    let mut update = Query::update();
    update
        .table(Memberships::Table)
        .value(
            Memberships::DeliveredSeq,
            Func::greatest([Expr::col(Memberships::DeliveredSeq).into(), target.0.into()]),
        )
        .and_where(Expr::col(Memberships::RoomId).eq(room.0))
        .and_where(Expr::col(Memberships::UserId).eq(user.0))
        .returning(Query::returning().columns(RECEIPT_COLUMNS));
    if let Some(now) = read_at {
        update
            .value(
                Memberships::ReadSeq,
                Func::greatest([Expr::col(Memberships::ReadSeq).into(), target.0.into()]),
            )
            .value(Memberships::ReadAt, micros(now));
    }
    let row: Option<ReceiptRow> = fetch_optional(&mut *conn, &update).await.map_err(db)?;
    let row = row.ok_or(StoreError::NotFound)?;
    Ok(Some(ReceiptChange {
        receipt: row.into(),
        changed: true,
    }))
}

#[async_trait]
impl ReceiptStore for SqliteStore {
    #[tracing::instrument(name = "db.receipt.mark_read", skip_all, err)]
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
        now: OffsetDateTime,
    ) -> Result<Option<ReceiptChange>, StoreError> {
        let mut tx = self.write().await?;
        let change = advance(&mut tx, room, user, seq, Some(now)).await?;
        // Only a moved read watermark stamps `read_at` with `now`.
        let stamped =
            |c: &&ReceiptChange| c.changed && c.receipt.read_at.map(micros) == Some(micros(now));
        if let Some(change) = change.as_ref().filter(stamped) {
            let event = Envelope::of_read(room, user, change.receipt.read_seq);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(change)
    }

    #[tracing::instrument(name = "db.receipt.mark_delivered", skip_all, err)]
    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<ReceiptChange>, StoreError> {
        let mut tx = self.write().await?;
        let change = advance(&mut tx, room, user, seq, None).await?;
        tx.commit().await.map_err(db)?;
        Ok(change)
    }

    #[tracing::instrument(name = "db.receipt.list", skip_all, err)]
    async fn receipts(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Receipt>, StoreError> {
        let mut q = Query::select();
        q.columns(RECEIPT_COLUMNS)
            .from(Memberships::Table)
            .and_where(Expr::col(Memberships::RoomId).eq(room.0))
            .order_by(Memberships::UserId, Order::Asc)
            .limit(u64::from(limit));
        if let Some(after) = after {
            q.and_where(Expr::col(Memberships::UserId).gt(after.0));
        }
        let rows: Vec<ReceiptRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(Receipt::from).collect())
    }

    #[tracing::instrument(name = "db.receipt.unread", skip_all, err)]
    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
        max: u32,
    ) -> Result<Vec<UnreadCount>, StoreError> {
        // In the order of the user's room list, so `max` keeps the rooms it shows first.
        let mut q = my_rooms(user);
        q.column((Memberships::Table, Memberships::RoomId))
            .expr_as(unread(user, false), Derived::UnreadCount)
            .expr_as(unread(user, true), Derived::MentionCount)
            .column((Memberships::Table, Memberships::Muted))
            .limit(u64::from(max));
        if let Some(room) = room {
            q.and_where(Expr::col((Memberships::Table, Memberships::RoomId)).eq(room.0));
        }
        let rows: Vec<UnreadRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(UnreadCount::from).collect())
    }
}
