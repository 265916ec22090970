//! Users and their credentials.

use async_trait::async_trait;
use chat_core::domain::{
    from_micros, micros, Credentials, DisplayName, Email, ExternalId, User, UserId, UserPatch,
    Username,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::{constraint, UserStore};
use chat_core::StoreError;
use sea_query::{Expr, InsertStatement, Query, SelectStatement, SimpleExpr};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::error::{corrupt, db, db_on};
use crate::outbox;
use crate::query::{execute, fetch_all, fetch_optional, like_literal};
use crate::schema::{ExternalUsers, Users};
use crate::store::SqliteStore;

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
    created_at: i64,
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
            created_at: from_micros(row.created_at),
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

/// The open account with this id, read in the caller's transaction.
pub(crate) async fn user_in(
    conn: &mut SqliteConnection,
    id: UserId,
) -> Result<Option<User>, StoreError> {
    let q = select_users()
        .and_where(Expr::col(Users::Id).eq(id.0))
        .to_owned();
    let row: Option<UserRow> = fetch_optional(conn, &q).await.map_err(db)?;
    row.map(User::try_from).transpose()
}

/// The id of a user other than `except` whose `column` equals `key`.
async fn holder_of(
    conn: &mut SqliteConnection,
    column: Users,
    key: &str,
    except: Option<UserId>,
) -> Result<Option<Uuid>, StoreError> {
    let mut q = Query::select();
    q.column(Users::Id)
        .from(Users::Table)
        .and_where(Expr::col(column).eq(key));
    if let Some(except) = except {
        q.and_where(Expr::col(Users::Id).ne(except.0));
    }
    let row: Option<(Uuid,)> = fetch_optional(conn, &q).await.map_err(db)?;
    Ok(row.map(|(id,)| id))
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
            micros(user.created_at).into(),
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
impl UserStore for SqliteStore {
    #[tracing::instrument(name = "db.user.create", skip_all, err)]
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let username_key = user.username.key();
        let email_key = user.email.as_ref().map(Email::key);
        let mut tx = self.write().await?;
        if holder_of(&mut tx, Users::UsernameKey, &username_key, None)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict {
                constraint: constraint::USERNAME,
            });
        }
        if let Some(key) = &email_key {
            if holder_of(&mut tx, Users::EmailKey, key, None)
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict {
                    constraint: constraint::EMAIL,
                });
            }
        }
        let insert = insert_user(user, password_hash)?;
        // Both keys were checked above under the write lock; only the username can be named
        // should the index still object.
        execute(&mut *tx, &insert)
            .await
            .map_err(db_on(constraint::USERNAME))?;
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
        let rows: Vec<UserRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        rows.into_iter().map(User::try_from).collect()
    }

    #[tracing::instrument(name = "db.user.get", skip_all, err)]
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let q = select_users()
            .and_where(Expr::col(Users::Id).eq(id.0))
            .to_owned();
        let row: Option<UserRow> = fetch_optional(&self.reader, &q).await.map_err(db)?;
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
        let row: Option<CredentialsRow> = fetch_optional(&self.reader, &q).await.map_err(db)?;
        row.map(Credentials::try_from).transpose()
    }

    #[tracing::instrument(name = "db.user.update", skip_all, err)]
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> Result<User, StoreError> {
        let mut tx = self.write().await?;
        let q = select_users()
            .and_where(Expr::col(Users::Id).eq(id.0))
            .to_owned();
        let current: Option<UserRow> = fetch_optional(&mut *tx, &q).await.map_err(db)?;
        let current = current.ok_or(StoreError::NotFound)?;
        let mut changes: Vec<(Users, SimpleExpr)> = Vec::new();
        if let Some(name) = &patch.display_name {
            changes.push((Users::DisplayName, name.as_str().into()));
        }
        if let Some(email) = &patch.email {
            let key = email.as_ref().map(Email::key);
            if let Some(key) = &key {
                if holder_of(&mut tx, Users::EmailKey, key, Some(id))
                    .await?
                    .is_some()
                {
                    return Err(StoreError::Conflict {
                        constraint: constraint::EMAIL,
                    });
                }
            }
            changes.push((Users::Email, email.as_ref().map(Email::as_str).into()));
            changes.push((Users::EmailKey, key.into()));
        }
        if changes.is_empty() {
            return current.try_into();
        }
        let update = Query::update()
            .table(Users::Table)
            .values(changes)
            .and_where(Expr::col(Users::Id).eq(id.0))
            .returning(Query::returning().columns(USER_COLUMNS))
            .to_owned();
        let row: Option<UserRow> = fetch_optional(&mut *tx, &update)
            .await
            .map_err(db_on(constraint::EMAIL))?;
        let user = row.ok_or(StoreError::NotFound)?.try_into()?;
        let event = Envelope::of_user(EventType::UserUpdated, &user);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(user)
    }

    #[tracing::instrument(name = "db.user.external", skip_all, err)]
    async fn external_user(&self, id: &ExternalId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = fetch_optional(&self.reader, &select_external(id))
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
        let mut tx = self.write().await?;
        let existing: Option<UserRow> = fetch_optional(&mut *tx, &select_external(id))
            .await
            .map_err(db)?;
        if let Some(row) = existing {
            return row.try_into();
        }
        if holder_of(&mut tx, Users::UsernameKey, &user.username.key(), None)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict {
                constraint: constraint::USERNAME,
            });
        }
        execute(&mut *tx, &insert_user(user, "")?)
            .await
            .map_err(db_on(constraint::USERNAME))?;
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
            .to_owned();
        execute(&mut *tx, &link).await.map_err(db)?;
        let event = Envelope::of_user(EventType::UserCreated, user);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(user.clone())
    }
}
