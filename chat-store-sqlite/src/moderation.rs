//! Blocks between users and bans from rooms.

use async_trait::async_trait;
use chat_core::domain::{from_micros, micros, Ban, Block, Cursor, RoomId, User, UserId};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::ModerationStore;
use chat_core::StoreError;
use sea_query::{Expr, OnConflict, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::outbox;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::rooms::members_in;
use crate::schema::{Memberships, RoomBans, Rooms, UserBlocks, Users};
use crate::store::SqliteStore;
use crate::users::{UserRow, USER_COLUMNS};

#[derive(Debug, sqlx::FromRow)]
struct BanRow {
    #[sqlx(flatten)]
    user: UserRow,
    room_id: Uuid,
    banned_by: Option<Uuid>,
    banned_at: i64,
}

impl TryFrom<BanRow> for Ban {
    type Error = StoreError;

    fn try_from(row: BanRow) -> Result<Self, StoreError> {
        Ok(Ban {
            room_id: RoomId(row.room_id),
            user: User::try_from(row.user)?.public(),
            banned_by: row.banned_by.map(UserId),
            banned_at: from_micros(row.banned_at),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct BlockRow {
    #[sqlx(flatten)]
    user: UserRow,
    blocked_at: i64,
}

impl TryFrom<BlockRow> for Block {
    type Error = StoreError;

    fn try_from(row: BlockRow) -> Result<Self, StoreError> {
        Ok(Block {
            user: User::try_from(row.user)?.public(),
            blocked_at: from_micros(row.blocked_at),
        })
    }
}

#[async_trait]
impl ModerationStore for SqliteStore {
    #[tracing::instrument(name = "db.block.create", skip_all, err)]
    async fn block_user(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // An unknown user fails the foreign key, which maps to `NotFound`.
        let insert = Query::insert()
            .into_table(UserBlocks::Table)
            .columns([
                UserBlocks::BlockerId,
                UserBlocks::BlockedId,
                UserBlocks::BlockedAt,
            ])
            .values([blocker.0.into(), blocked.0.into(), micros(at).into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::columns([UserBlocks::BlockerId, UserBlocks::BlockedId])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        execute(&self.writer, &insert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.block.delete", skip_all, err)]
    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError> {
        let delete = Query::delete()
            .from_table(UserBlocks::Table)
            .and_where(Expr::col(UserBlocks::BlockerId).eq(blocker.0))
            .and_where(Expr::col(UserBlocks::BlockedId).eq(blocked.0))
            .to_owned();
        execute(&self.writer, &delete).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.block.list", skip_all, err)]
    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError> {
        let at = (UserBlocks::Table, UserBlocks::BlockedAt);
        let user = (UserBlocks::Table, UserBlocks::BlockedId);
        let mut q = Query::select();
        q.columns(USER_COLUMNS.map(|c| (Users::Table, c)))
            .column(at)
            .from(UserBlocks::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id)).equals(user),
            )
            .and_where(Expr::col((UserBlocks::Table, UserBlocks::BlockerId)).eq(blocker.0))
            .order_by(at, Order::Asc)
            .order_by(user, Order::Asc)
            .limit(u64::from(limit));
        if let Some(after) = after {
            q.and_where(
                Expr::tuple([Expr::col(at).into(), Expr::col(user).into()])
                    .gt(Expr::tuple([after.at_micros.into(), after.id.into()])),
            );
        }
        let rows: Vec<BlockRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        rows.into_iter().map(Block::try_from).collect()
    }

    #[tracing::instrument(name = "db.block.get", skip_all, err)]
    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        let q = Query::select()
            .expr(Expr::val(1))
            .from(UserBlocks::Table)
            .and_where(Expr::col(UserBlocks::BlockerId).eq(blocker.0))
            .and_where(Expr::col(UserBlocks::BlockedId).eq(blocked.0))
            .to_owned();
        let row: Option<(i64,)> = fetch_optional(&self.reader, &q).await.map_err(db)?;
        Ok(row.is_some())
    }

    #[tracing::instrument(name = "db.block.by_member", skip_all, err)]
    async fn blocked_by_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let q = Query::select()
            .expr(Expr::val(1))
            .from(Memberships::Table)
            .inner_join(
                UserBlocks::Table,
                Expr::col((UserBlocks::Table, UserBlocks::BlockerId))
                    .equals((Memberships::Table, Memberships::UserId)),
            )
            .and_where(Expr::col((Memberships::Table, Memberships::RoomId)).eq(room.0))
            .and_where(Expr::col((Memberships::Table, Memberships::UserId)).ne(user.0))
            .and_where(Expr::col((UserBlocks::Table, UserBlocks::BlockedId)).eq(user.0))
            .limit(1)
            .to_owned();
        let row: Option<(i64,)> = fetch_optional(&self.reader, &q).await.map_err(db)?;
        Ok(row.is_some())
    }

    #[tracing::instrument(name = "db.ban.create", skip_all, err)]
    async fn ban(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        // Returning early drops the transaction, which rolls back whatever it had done. The
        // single writer orders the ban among joins: none can slip in between its statements.
        let mut tx = self.write().await?;
        // An unknown room or user fails a foreign key, which maps to `NotFound`.
        let insert = Query::insert()
            .into_table(RoomBans::Table)
            .columns([
                RoomBans::RoomId,
                RoomBans::UserId,
                RoomBans::BannedBy,
                RoomBans::BannedAt,
            ])
            .values([room.0.into(), user.0.into(), by.0.into(), micros(at).into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::columns([RoomBans::RoomId, RoomBans::UserId])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        execute(&mut *tx, &insert).await.map_err(db)?;
        let leaving = if self.channels.enabled() {
            members_in(&mut tx, room, &[user]).await?
        } else {
            Vec::new()
        };
        let delete = Query::delete()
            .from_table(Memberships::Table)
            .and_where(Expr::col(Memberships::RoomId).eq(room.0))
            .and_where(Expr::col(Memberships::UserId).eq(user.0))
            .to_owned();
        if execute(&mut *tx, &delete).await.map_err(db)? == 0 {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        }
        let count = Query::update()
            .table(Rooms::Table)
            .value(Rooms::MemberCount, Expr::col(Rooms::MemberCount).sub(1))
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .returning(Query::returning().column(Rooms::MemberCount))
            .to_owned();
        let left: Option<(i64,)> = fetch_optional(&mut *tx, &count).await.map_err(db)?;
        let (left,) = left.ok_or(StoreError::NotFound)?;
        let events: Vec<Envelope> = leaving
            .iter()
            .map(|m| Envelope::of_member(EventType::MemberLeft, m))
            .collect();
        outbox::record(&mut tx, &self.channels, &events).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(left))
    }

    #[tracing::instrument(name = "db.ban.delete", skip_all, err)]
    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let delete = Query::delete()
            .from_table(RoomBans::Table)
            .and_where(Expr::col(RoomBans::RoomId).eq(room.0))
            .and_where(Expr::col(RoomBans::UserId).eq(user.0))
            .to_owned();
        Ok(execute(&self.writer, &delete).await.map_err(db)? > 0)
    }

    #[tracing::instrument(name = "db.ban.list", skip_all, err)]
    async fn bans(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Ban>, StoreError> {
        let at = (RoomBans::Table, RoomBans::BannedAt);
        let user = (RoomBans::Table, RoomBans::UserId);
        let mut q = Query::select();
        q.columns(USER_COLUMNS.map(|c| (Users::Table, c)))
            .columns([
                (RoomBans::Table, RoomBans::RoomId),
                (RoomBans::Table, RoomBans::BannedBy),
                at,
            ])
            .from(RoomBans::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id)).equals(user),
            )
            .and_where(Expr::col((RoomBans::Table, RoomBans::RoomId)).eq(room.0))
            .order_by(at, Order::Asc)
            .order_by(user, Order::Asc)
            .limit(u64::from(limit));
        if let Some(after) = after {
            q.and_where(
                Expr::tuple([Expr::col(at).into(), Expr::col(user).into()])
                    .gt(Expr::tuple([after.at_micros.into(), after.id.into()])),
            );
        }
        let rows: Vec<BanRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        rows.into_iter().map(Ban::try_from).collect()
    }
}
