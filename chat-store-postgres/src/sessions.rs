//! Sign-in sessions and their rotating refresh tokens.

use async_trait::async_trait;
use chat_core::domain::{SessionId, UserId};
use chat_core::ports::{AuthSession, Rotation, SessionStore};
use chat_core::StoreError;
use sea_query::{Expr, LockType, Query};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{AuthSessions, SpentRefreshTokens, Users};
use crate::store::PgStore;

const SESSION_COLUMNS: [AuthSessions; 6] = [
    AuthSessions::Id,
    AuthSessions::UserId,
    AuthSessions::RefreshHash,
    AuthSessions::CreatedAt,
    AuthSessions::ExpiresAt,
    AuthSessions::RevokedAt,
];

#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    refresh_hash: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl From<SessionRow> for AuthSession {
    fn from(row: SessionRow) -> Self {
        AuthSession {
            id: SessionId(row.id),
            user_id: UserId(row.user_id),
            refresh_hash: row.refresh_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct SessionIdRow {
    id: Uuid,
}

/// Revokes every unrevoked session of `user` but `keep`; returns those it revoked.
pub(crate) async fn revoke_sessions_of(
    conn: &mut PgConnection,
    user: UserId,
    keep: Option<SessionId>,
    now: OffsetDateTime,
) -> Result<Vec<SessionId>, StoreError> {
    let mut revoke = Query::update()
        .table(AuthSessions::Table)
        .value(AuthSessions::RevokedAt, now)
        .and_where(Expr::col(AuthSessions::UserId).eq(user.0))
        .and_where(Expr::col(AuthSessions::RevokedAt).is_null())
        .returning(Query::returning().column(AuthSessions::Id))
        .to_owned();
    if let Some(keep) = keep {
        revoke.and_where(Expr::col(AuthSessions::Id).ne(keep.0));
    }
    let revoked: Vec<SessionIdRow> = fetch_all(conn, &revoke).await.map_err(db)?;
    Ok(revoked.into_iter().map(|r| SessionId(r.id)).collect())
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
                session.revoked_at.into(),
            ])
            .map_err(StoreError::backend)?
            .to_owned();
        execute(&self.pool, &insert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.session.get", skip_all, err)]
    async fn session(&self, id: SessionId) -> Result<Option<AuthSession>, StoreError> {
        let select = Query::select()
            .columns(SESSION_COLUMNS)
            .from(AuthSessions::Table)
            .and_where(Expr::col(AuthSessions::Id).eq(id.0))
            .to_owned();
        let row: Option<SessionRow> = fetch_optional(&self.pool, &select).await.map_err(db)?;
        Ok(row.map(AuthSession::from))
    }

    #[tracing::instrument(name = "db.session.rotate", skip_all, err)]
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The row lock orders concurrent rotations of one token: the second waits for the
        // first, then no longer finds the old hash current, and finds it spent instead.
        let current = Query::select()
            .columns(SESSION_COLUMNS)
            .from(AuthSessions::Table)
            .and_where(Expr::col(AuthSessions::RefreshHash).eq(old_hash))
            .and_where(Expr::col(AuthSessions::ExpiresAt).gt(now))
            .and_where(Expr::col(AuthSessions::RevokedAt).is_null())
            .lock(LockType::Update)
            .to_owned();
        let row: Option<SessionRow> = fetch_optional(&mut *tx, &current).await.map_err(db)?;
        let Some(row) = row else {
            let spent = Query::select()
                .column((AuthSessions::Table, AuthSessions::Id))
                .from(SpentRefreshTokens::Table)
                .inner_join(
                    AuthSessions::Table,
                    Expr::col((AuthSessions::Table, AuthSessions::Id))
                        .equals((SpentRefreshTokens::Table, SpentRefreshTokens::SessionId)),
                )
                .and_where(
                    Expr::col((SpentRefreshTokens::Table, SpentRefreshTokens::Hash)).eq(old_hash),
                )
                .and_where(
                    Expr::col((SpentRefreshTokens::Table, SpentRefreshTokens::ExpiresAt)).gt(now),
                )
                .and_where(Expr::col((AuthSessions::Table, AuthSessions::RevokedAt)).is_null())
                .to_owned();
            let reused: Option<SessionIdRow> =
                fetch_optional(&mut *tx, &spent).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(match reused {
                Some(r) => Rotation::Reused(SessionId(r.id)),
                None => Rotation::Unknown,
            });
        };
        let forget_expired = Query::delete()
            .from_table(SpentRefreshTokens::Table)
            .and_where(Expr::col(SpentRefreshTokens::SessionId).eq(row.id))
            .and_where(Expr::col(SpentRefreshTokens::ExpiresAt).lte(now))
            .to_owned();
        execute(&mut *tx, &forget_expired).await.map_err(db)?;
        let remember = Query::insert()
            .into_table(SpentRefreshTokens::Table)
            .columns([
                SpentRefreshTokens::Hash,
                SpentRefreshTokens::SessionId,
                SpentRefreshTokens::ExpiresAt,
            ])
            .values([old_hash.into(), row.id.into(), row.expires_at.into()])
            .map_err(StoreError::backend)?
            .to_owned();
        execute(&mut *tx, &remember).await.map_err(db)?;
        let update = Query::update()
            .table(AuthSessions::Table)
            .values([
                (AuthSessions::RefreshHash, new_hash.into()),
                (AuthSessions::ExpiresAt, expires_at.into()),
            ])
            .and_where(Expr::col(AuthSessions::Id).eq(row.id))
            .returning(Query::returning().columns(SESSION_COLUMNS))
            .to_owned();
        let rotated: Option<SessionRow> = fetch_optional(&mut *tx, &update).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        rotated
            .map(|r| Rotation::Rotated(r.into()))
            .ok_or(StoreError::NotFound)
    }

    #[tracing::instrument(name = "db.session.revoke", skip_all, err)]
    async fn revoke_session(&self, id: SessionId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let update = Query::update()
            .table(AuthSessions::Table)
            .value(AuthSessions::RevokedAt, now)
            .and_where(Expr::col(AuthSessions::Id).eq(id.0))
            .and_where(Expr::col(AuthSessions::RevokedAt).is_null())
            .to_owned();
        Ok(execute(&self.pool, &update).await.map_err(db)? == 1)
    }

    #[tracing::instrument(name = "db.session.change_password", skip_all, err)]
    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let password = Query::update()
            .table(Users::Table)
            .value(Users::PasswordHash, password_hash)
            .and_where(Expr::col(Users::Id).eq(user.0))
            .to_owned();
        if execute(&mut *tx, &password).await.map_err(db)? == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = revoke_sessions_of(&mut tx, user, keep, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }
}
