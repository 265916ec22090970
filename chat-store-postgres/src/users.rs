//! Users and their credentials.

use async_trait::async_trait;
use chat_core::domain::{
    Credentials, DisplayName, Email, ExternalId, User, UserId, UserPatch, Username,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::UserStore;
use chat_core::StoreError;
use sea_query::{Expr, InsertStatement, OnConflict, Query, SelectStatement, SimpleExpr};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::outbox;
use crate::query::{execute, fetch_all, fetch_optional, like_literal};
use crate::schema::{ExternalUsers, Users};
use crate::store::PgStore;

/// The columns of a [`UserRow`], in the `users` table.
pub(crate) const USER_COLUMNS: [Users; 5] = [
    Users::Id,
    Users::Username,
    Users::DisplayName,
    Users::Email,
    Users::CreatedAt,
];

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    username: String,
    display_name: String,
    email: Option<String>,
    created_at: OffsetDateTime,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId(row.id),
            username: Username::parse(&row.username)
                .map_err(|_| corrupt("users.username", row.username.as_str()))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("users.display_name", row.display_name.as_str()))?,
            email: row
                .email
                .map(|e| Email::parse(&e).map_err(|_| corrupt("users.email", e.as_str())))
                .transpose()?,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = StoreError;

    fn try_from(row: CredentialsRow) -> Result<Self, StoreError> {
        Ok(Credentials {
            user: row.user.try_into()?,
            password_hash: row.password_hash,
        })
    }
}

/// Open accounts: a closed one is no user to anyone.
fn select_users() -> SelectStatement {
    Query::select()
        .columns(USER_COLUMNS.map(|c| (Users::Table, c)))
        .from(Users::Table)
        .and_where(Expr::col((Users::Table, Users::DeletedAt)).is_null())
        .to_owned()
}

/// The statement that stores `user` with its hash (empty: no password).
fn insert_user(user: &User, password_hash: &str) -> Result<InsertStatement, StoreError> {
    Ok(Query::insert()
        .into_table(Users::Table)
        .columns([
            Users::Id,
            Users::Username,
            Users::UsernameKey,
            Users::DisplayName,
            Users::Email,
            Users::EmailKey,
            Users::PasswordHash,
            Users::CreatedAt,
        ])
        .values([
            user.id.0.into(),
            user.username.as_str().into(),
            user.username.key().into(),
            user.display_name.as_str().into(),
            user.email.as_ref().map(Email::as_str).into(),
            user.email.as_ref().map(Email::key).into(),
            password_hash.into(),
            user.created_at.into(),
        ])
        .map_err(StoreError::backend)?
        .to_owned())
}

/// The user provisioned for `id`.
fn select_external(id: &ExternalId) -> SelectStatement {
    select_users()
        .inner_join(
            ExternalUsers::Table,
            Expr::col((ExternalUsers::Table, ExternalUsers::UserId))
                .equals((Users::Table, Users::Id)),
        )
        .and_where(Expr::col((ExternalUsers::Table, ExternalUsers::Issuer)).eq(id.issuer.as_str()))
        .and_where(
            Expr::col((ExternalUsers::Table, ExternalUsers::Subject)).eq(id.subject.as_str()),
        )
        .to_owned()
}

#[async_trait]
impl UserStore for PgStore {
    #[tracing::instrument(name = "db.user.create", skip_all, err)]
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        // One statement: the unique keys decide, and the violated one names the conflict.
        let insert = insert_user(user, password_hash)?;
        if !self.channels.enabled() {
            execute(&self.pool, &insert).await.map_err(db)?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        execute(&mut *tx, &insert).await.map_err(db)?;
        let event = Envelope::of_user(EventType::UserCreated, user);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)
    }

    #[tracing::instrument(name = "db.user.search", skip_all, err)]
    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let pattern = format!("{}%", like_literal(&prefix.to_lowercase()));
        let like = || sea_query::LikeExpr::new(pattern.clone()).escape('\\');
        let mut q = Query::select();
        q.columns(USER_COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::DeletedAt).is_null())
            .cond_where(
                sea_query::Cond::any()
                    .add(Expr::col(Users::UsernameKey).like(like()))
                    .add(
                        Expr::expr(sea_query::Func::lower(Expr::col(Users::DisplayName)))
                            .like(like()),
                    ),
            )
            .order_by(Users::UsernameKey, sea_query::Order::Asc)
            .limit(u64::from(limit));
        if let Some(after) = after {
            q.and_where(Expr::col(Users::UsernameKey).gt(after));
        }
        let rows: Vec<UserRow> = fetch_all(&self.pool, &q).await.map_err(db)?;
        rows.into_iter().map(User::try_from).collect()
    }

    #[tracing::instrument(name = "db.user.get", skip_all, err)]
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let q = select_users()
            .and_where(Expr::col(Users::Id).eq(id.0))
            .to_owned();
        let row: Option<UserRow> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(name = "db.user.credentials", skip_all, err)]
    async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        // Each key is lowercased the way its domain type does it.
        let q = select_users()
            .column(Users::PasswordHash)
            .cond_where(
                Expr::col(Users::UsernameKey)
                    .eq(login.to_ascii_lowercase())
                    .or(Expr::col(Users::EmailKey).eq(login.to_lowercase())),
            )
            .limit(1)
            .to_owned();
        let row: Option<CredentialsRow> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        row.map(Credentials::try_from).transpose()
    }

    #[tracing::instrument(name = "db.user.update", skip_all, err)]
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> Result<User, StoreError> {
        let mut changes: Vec<(Users, SimpleExpr)> = Vec::new();
        if let Some(name) = &patch.display_name {
            changes.push((Users::DisplayName, name.as_str().into()));
        }
        if let Some(email) = &patch.email {
            changes.push((Users::Email, email.as_ref().map(Email::as_str).into()));
            changes.push((Users::EmailKey, email.as_ref().map(Email::key).into()));
        }
        let row: Option<UserRow> = if changes.is_empty() {
            let q = select_users()
                .and_where(Expr::col(Users::Id).eq(id.0))
                .to_owned();
            fetch_optional(&self.pool, &q).await.map_err(db)?
        } else {
            // One statement: a taken email fails it on `users_email_key`.
            let update = Query::update()
                .table(Users::Table)
                .values(changes)
                .and_where(Expr::col(Users::Id).eq(id.0))
                .and_where(Expr::col(Users::DeletedAt).is_null())
                .returning(Query::returning().columns(USER_COLUMNS))
                .to_owned();
            let mut tx = self.pool.begin().await.map_err(db)?;
            let row: Option<UserRow> = fetch_optional(&mut *tx, &update).await.map_err(db)?;
            let user: User = row.ok_or(StoreError::NotFound)?.try_into()?;
            let event = Envelope::of_user(EventType::UserUpdated, &user);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
            tx.commit().await.map_err(db)?;
            return Ok(user);
        };
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    #[tracing::instrument(name = "db.user.external", skip_all, err)]
    async fn external_user(&self, id: &ExternalId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = fetch_optional(&self.pool, &select_external(id))
            .await
            .map_err(db)?;
        row.map(User::try_from).transpose()
    }

    #[tracing::instrument(name = "db.user.provision_external", skip_all, err)]
    async fn provision_external_user(
        &self,
        id: &ExternalId,
        user: &User,
    ) -> Result<User, StoreError> {
        if let Some(existing) = self.external_user(id).await? {
            return Ok(existing);
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        if let Err(e) = execute(&mut *tx, &insert_user(user, "")?).await.map_err(db) {
            // The username is taken, perhaps by a concurrent provisioning of this very id:
            // PostgreSQL reports the violation only once that one committed, with its link.
            drop(tx);
            return match (&e, self.external_user(id).await?) {
                (StoreError::Conflict { .. }, Some(winner)) => Ok(winner),
                _ => Err(e),
            };
        }
        // Two nodes provisioning the same subject at once: the primary key lets one link
        // through; the other rolls its user back and returns the winner's.
        let link = Query::insert()
            .into_table(ExternalUsers::Table)
            .columns([
                ExternalUsers::Issuer,
                ExternalUsers::Subject,
                ExternalUsers::UserId,
            ])
            .values([
                id.issuer.as_str().into(),
                id.subject.as_str().into(),
                user.id.0.into(),
            ])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::columns([ExternalUsers::Issuer, ExternalUsers::Subject])
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(ExternalUsers::UserId)
            .to_owned();
        let linked: Option<(Uuid,)> = fetch_optional(&mut *tx, &link).await.map_err(db)?;
        if linked.is_some() {
            let event = Envelope::of_user(EventType::UserCreated, user);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
            tx.commit().await.map_err(db)?;
            return Ok(user.clone());
        }
        tx.rollback().await.map_err(db)?;
        self.external_user(id).await?.ok_or(StoreError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use chat_core::ports::constraint;

    use super::*;
    use crate::test_support::{at, scratch};

    fn named(name: &str, email: &str) -> User {
        User {
            id: UserId(Uuid::new_v4()),
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            email: Some(Email::parse(email).unwrap()),
            created_at: at(0),
        }
    }

    #[tokio::test]
    async fn a_unique_violation_names_the_violated_key() {
        let Some(store) = scratch().await else { return };
        store
            .create_user(&named("alice", "alice@example.com"), "h")
            .await
            .unwrap();
        // Both keys are taken: whichever PostgreSQL checks first is named, and it is one of them.
        let both = store
            .create_user(&named("Alice", "ALICE@example.com"), "h")
            .await;
        assert!(
            matches!(
                both,
                Err(StoreError::Conflict {
                    constraint: constraint::USERNAME | constraint::EMAIL
                })
            ),
            "{both:?}"
        );
        // Only the email is taken.
        let email = store
            .create_user(&named("bob", "Alice@Example.com"), "h")
            .await;
        assert!(
            matches!(
                email,
                Err(StoreError::Conflict {
                    constraint: constraint::EMAIL
                })
            ),
            "{email:?}"
        );
    }

    #[tokio::test]
    async fn a_unique_key_the_port_does_not_name_is_a_backend_failure() {
        let Some(store) = scratch().await else { return };
        let alice = named("alice", "alice@example.com");
        store.create_user(&alice, "h").await.unwrap();
        // The same id again violates `users_pkey`, which is no conflict a caller can resolve.
        let mut again = named("bob", "bob@example.com");
        again.id = alice.id;
        let result = store.create_user(&again, "h").await;
        assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
    }

    #[tokio::test]
    async fn emails_are_unique_by_the_domains_unicode_lowercasing() {
        let Some(store) = scratch().await else { return };
        // The database's C locale would not lowercase É; the stored key does not depend on it.
        store
            .create_user(&named("alice", "ÉLODIE@example.com"), "h")
            .await
            .unwrap();
        let result = store
            .create_user(&named("bob", "élodie@example.com"), "h")
            .await;
        assert!(
            matches!(
                result,
                Err(StoreError::Conflict {
                    constraint: constraint::EMAIL
                })
            ),
            "{result:?}"
        );
        let creds = store.credentials("Élodie@Example.com").await.unwrap();
        assert_eq!(creds.unwrap().user.username.as_str(), "alice");
    }
}
