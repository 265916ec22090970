//! Sign-in sessions and their rotating refresh tokens.

use async_trait::async_trait;
use chat_core::domain::{SessionId, UserId};
use chat_core::ports::{AuthSession, SessionStore};
use chat_core::StoreError;
use sea_query::{Expr, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_optional};
use crate::schema::AuthSessions;
use crate::store::PgStore;

const SESSION_COLUMNS: [AuthSessions; 5] = [
    AuthSessions::Id,
    AuthSessions::UserId,
    AuthSessions::RefreshHash,
    AuthSessions::CreatedAt,
    AuthSessions::ExpiresAt,
];

#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_hash: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl From<SessionRow> for AuthSession {
    fn from(row: SessionRow) -> Self {
        AuthSession {
            id: SessionId(row.id),
            user_id: UserId(row.user_id),
            refresh_hash: row.refresh_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

#[async_trait]
impl SessionStore for PgStore {
    #[tracing::instrument(name = "db.session.create", skip_all, err)]
    async fn create_session(&self, session: &AuthSession) -> Result<(), StoreError> {
        let insert = Query::insert()
            .into_table(AuthSessions::Table)
            .columns(SESSION_COLUMNS)
            .values([
                session.id.0.into(),
                session.user_id.0.into(),
                session.refresh_hash.as_str().into(),
                session.created_at.into(),
                session.expires_at.into(),
            ])
            .map_err(StoreError::backend)?
            .to_owned();
        execute(&self.pool, &insert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.session.rotate", skip_all, err)]
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Option<AuthSession>, StoreError> {
        // One statement: of two concurrent rotations of the same token, the second waits for
        // the first's row lock, then re-checks the row, no longer finds the old hash, and
        // matches nothing.
        let update = Query::update()
            .table(AuthSessions::Table)
            .values([
                (AuthSessions::RefreshHash, new_hash.into()),
                (AuthSessions::ExpiresAt, expires_at.into()),
            ])
            .and_where(Expr::col(AuthSessions::RefreshHash).eq(old_hash))
            .and_where(Expr::col(AuthSessions::ExpiresAt).gt(now))
            .returning(Query::returning().columns(SESSION_COLUMNS))
            .to_owned();
        let row: Option<SessionRow> = fetch_optional(&self.pool, &update).await.map_err(db)?;
        Ok(row.map(AuthSession::from))
    }
}
