//! Closing accounts, and finding what a closed one left for its purge.

use async_trait::async_trait;
use chat_core::domain::{micros, MessageId, RoomId, SessionId, UploadId, UserId};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::AccountStore;
use chat_core::StoreError;
use sea_query::{Expr, Order, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::outbox;
use crate::query::{execute, fetch_all};
use crate::schema::{Messages, RoomBans, Uploads, UserBlocks, Users};
use crate::sessions::revoke_sessions_of;
use crate::store::SqliteStore;
use crate::users::user_in;

#[async_trait]
impl AccountStore for SqliteStore {
    #[tracing::instrument(name = "db.account.close", skip_all, err)]
    async fn close_account(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.write().await?;
        let closing = user_in(&mut tx, user).await?.ok_or(StoreError::NotFound)?;
        // The email is free at once; the username only after its quarantine.
        let close = Query::update()
            .table(Users::Table)
            .values([
                (Users::DeletedAt, micros(now).into()),
                (Users::Email, Option::<String>::None.into()),
                (Users::EmailKey, Option::<String>::None.into()),
                (Users::PasswordHash, "".into()),
            ])
            .and_where(Expr::col(Users::Id).eq(user.0))
            .and_where(Expr::col(Users::DeletedAt).is_null())
            .to_owned();
        if execute(&mut *tx, &close).await.map_err(db)? == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = revoke_sessions_of(&mut tx, user, None, now).await?;
        let event = Envelope::of_user(EventType::UserDeleted, &closing);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        let blocks = Query::delete()
            .from_table(UserBlocks::Table)
            .cond_where(
                Expr::col(UserBlocks::BlockerId)
                    .eq(user.0)
                    .or(Expr::col(UserBlocks::BlockedId).eq(user.0)),
            )
            .to_owned();
        execute(&mut *tx, &blocks).await.map_err(db)?;
        let bans = Query::delete()
            .from_table(RoomBans::Table)
            .and_where(Expr::col(RoomBans::UserId).eq(user.0))
            .to_owned();
        execute(&mut *tx, &bans).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    #[tracing::instrument(name = "db.account.unpurged", skip_all, err)]
    async fn unpurged_accounts(
        &self,
        closed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let q = Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::DeletedAt).is_not_null())
            .and_where(Expr::col(Users::PurgedAt).is_null())
            .and_where(Expr::col(Users::DeletedAt).lt(micros(closed_before)))
            .order_by(Users::DeletedAt, Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let rows: Vec<(Uuid,)> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
    }

    #[tracing::instrument(name = "db.account.messages", skip_all, err)]
    async fn live_messages_by(
        &self,
        sender: UserId,
        limit: u32,
    ) -> Result<Vec<(RoomId, MessageId)>, StoreError> {
        let q = Query::select()
            .columns([Messages::RoomId, Messages::Id])
            .from(Messages::Table)
            .and_where(Expr::col(Messages::SenderId).eq(sender.0))
            .and_where(Expr::col(Messages::Deleted).eq(false))
            .limit(u64::from(limit))
            .to_owned();
        let rows: Vec<(Uuid, Uuid)> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(room, id)| (RoomId(room), MessageId(id)))
            .collect())
    }

    #[tracing::instrument(name = "db.account.uploads", skip_all, err)]
    async fn uploads_by(&self, uploader: UserId, limit: u32) -> Result<Vec<UploadId>, StoreError> {
        let q = Query::select()
            .column(Uploads::Id)
            .from(Uploads::Table)
            .and_where(Expr::col(Uploads::Uploader).eq(uploader.0))
            .limit(u64::from(limit))
            .to_owned();
        let rows: Vec<(Uuid,)> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(|(id,)| UploadId(id)).collect())
    }

    #[tracing::instrument(name = "db.account.purged", skip_all, err)]
    async fn finish_purge(&self, user: UserId) -> Result<(), StoreError> {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::PurgedAt, Expr::col(Users::DeletedAt))
            .and_where(Expr::col(Users::Id).eq(user.0))
            .and_where(Expr::col(Users::DeletedAt).is_not_null())
            .to_owned();
        execute(&self.writer, &update).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.account.release_username", skip_all, err)]
    async fn release_username(
        &self,
        username_key: &str,
        closed_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // `~` is in no valid username, so the placeholder key never stands in anyone's way.
        let update = Query::update()
            .table(Users::Table)
            .value(Users::UsernameKey, Expr::cust("'~' || lower(hex(id))"))
            .and_where(Expr::col(Users::UsernameKey).eq(username_key))
            .and_where(Expr::col(Users::DeletedAt).lt(micros(closed_before)))
            .to_owned();
        Ok(execute(&self.writer, &update).await.map_err(db)? > 0)
    }
}
