//! WebSocket tickets: single-use credentials, by the hash of their secret.

use async_trait::async_trait;
use chat_core::domain::{SessionId, UserId};
use chat_core::ports::{TicketGrant, TicketStore};
use chat_core::StoreError;
use sea_query::{Expr, OnConflict, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_optional};
use crate::schema::WsTickets;
use crate::store::PgStore;

#[derive(Debug, sqlx::FromRow)]
struct TicketRow {
    user_id: Uuid,
    session_id: Option<Uuid>,
    expires_at: OffsetDateTime,
}

#[async_trait]
impl TicketStore for PgStore {
    #[tracing::instrument(name = "db.ticket.create", skip_all, err)]
    async fn create_ticket(
        &self,
        hash: &str,
        grant: TicketGrant,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let expired = Query::delete()
            .from_table(WsTickets::Table)
            .and_where(Expr::col(WsTickets::ExpiresAt).lt(now))
            .to_owned();
        let insert = Query::insert()
            .into_table(WsTickets::Table)
            .columns([
                WsTickets::Hash,
                WsTickets::UserId,
                WsTickets::SessionId,
                WsTickets::ExpiresAt,
            ])
            .values([
                hash.into(),
                grant.user.0.into(),
                grant.session.map(|s| s.0).into(),
                expires_at.into(),
            ])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::column(WsTickets::Hash)
                    .update_columns([
                        WsTickets::UserId,
                        WsTickets::SessionId,
                        WsTickets::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .to_owned();
        let mut tx = self.pool.begin().await.map_err(db)?;
        execute(&mut *tx, &expired).await.map_err(db)?;
        execute(&mut *tx, &insert).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.ticket.take", skip_all, err)]
    async fn take_ticket(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TicketGrant>, StoreError> {
        // One statement: of two nodes taking the same ticket at once, the second waits for the
        // first's row lock, then finds the row gone and deletes nothing. An expired ticket is
        // removed all the same, and grants nothing.
        let delete = Query::delete()
            .from_table(WsTickets::Table)
            .and_where(Expr::col(WsTickets::Hash).eq(hash))
            .returning(Query::returning().columns([
                WsTickets::UserId,
                WsTickets::SessionId,
                WsTickets::ExpiresAt,
            ]))
            .to_owned();
        let row: Option<TicketRow> = fetch_optional(&self.pool, &delete).await.map_err(db)?;
        Ok(row
            .filter(|row| row.expires_at >= now)
            .map(|row| TicketGrant {
                user: UserId(row.user_id),
                session: row.session_id.map(SessionId),
            }))
    }
}
