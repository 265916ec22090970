//! Presence: connection counts per node, node heartbeats, and reaping dead nodes. A user's
//! presence row is upserted first in every change of theirs, so its row lock serializes one
//! user's changes across nodes and each sees the others' counts.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_core::domain::UserId;
use chat_core::ports::{NodeId, PresenceRecord, PresenceStore};
use chat_core::StoreError;
use sea_query::{Expr, OnConflict, Query};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_all};
use crate::schema::{Connections, Nodes, UserPresence, Users};
use crate::store::PgStore;

/// Sets the user's last seen (creating their row), which also takes the user's lock.
async fn touch(
    conn: &mut PgConnection,
    user: UserId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let upsert = Query::insert()
        .into_table(UserPresence::Table)
        .columns([UserPresence::UserId, UserPresence::LastSeen])
        .values([user.0.into(), at.into()])
        .map_err(StoreError::backend)?
        .on_conflict(
            OnConflict::column(UserPresence::UserId)
                .update_column(UserPresence::LastSeen)
                .to_owned(),
        )
        .to_owned();
    execute(conn, &upsert).await.map_err(db)?;
    Ok(())
}

/// The users' connections on nodes heard from at or after `alive_since`.
async fn live_connections(
    conn: &mut PgConnection,
    users: &[UserId],
    alive_since: OffsetDateTime,
) -> Result<HashMap<UserId, i64>, StoreError> {
    let q = Query::select()
        .column((Connections::Table, Connections::UserId))
        .expr(
            Expr::col((Connections::Table, Connections::Count))
                .sum()
                .cast_as(sea_query::Alias::new("bigint")),
        )
        .from(Connections::Table)
        .inner_join(
            Nodes::Table,
            Expr::col((Nodes::Table, Nodes::Id)).equals((Connections::Table, Connections::NodeId)),
        )
        .and_where(
            Expr::col((Connections::Table, Connections::UserId)).is_in(users.iter().map(|u| u.0)),
        )
        .and_where(Expr::col((Nodes::Table, Nodes::HeartbeatAt)).gte(alive_since))
        .group_by_col((Connections::Table, Connections::UserId))
        .to_owned();
    let rows: Vec<(Uuid, i64)> = fetch_all(conn, &q).await.map_err(db)?;
    Ok(rows.into_iter().map(|(u, n)| (UserId(u), n)).collect())
}

/// Deletes the connections of these nodes; returns their users, last seen at their node's time.
/// Users are locked (by `touch`) before their connection rows, in one sorted order: the order
/// every other presence change takes, so none of them can wait on each other in a circle.
async fn drop_connections(
    conn: &mut PgConnection,
    nodes: &[(Uuid, OffsetDateTime)],
) -> Result<Vec<UserId>, StoreError> {
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    let q = Query::select()
        .columns([Connections::NodeId, Connections::UserId])
        .from(Connections::Table)
        .and_where(Expr::col(Connections::NodeId).is_in(nodes.iter().map(|(n, _)| *n)))
        .to_owned();
    let rows: Vec<(Uuid, Uuid)> = fetch_all(&mut *conn, &q).await.map_err(db)?;
    let seen: HashMap<Uuid, OffsetDateTime> = nodes.iter().copied().collect();
    let mut users: Vec<(UserId, OffsetDateTime)> = rows
        .into_iter()
        .filter_map(|(node, user)| seen.get(&node).map(|at| (UserId(user), *at)))
        .collect();
    users.sort();
    users.dedup_by_key(|(user, _)| *user);
    for (user, at) in &users {
        touch(conn, *user, *at).await?;
    }
    let delete = Query::delete()
        .from_table(Connections::Table)
        .and_where(Expr::col(Connections::NodeId).is_in(nodes.iter().map(|(n, _)| *n)))
        .to_owned();
    execute(&mut *conn, &delete).await.map_err(db)?;
    Ok(users.into_iter().map(|(user, _)| user).collect())
}

#[async_trait]
impl PresenceStore for PgStore {
    #[tracing::instrument(name = "db.presence.heartbeat", skip_all, err)]
    async fn node_heartbeat(&self, node: NodeId, now: OffsetDateTime) -> Result<(), StoreError> {
        let upsert = Query::insert()
            .into_table(Nodes::Table)
            .columns([Nodes::Id, Nodes::HeartbeatAt])
            .values([node.0.into(), now.into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::column(Nodes::Id)
                    .update_column(Nodes::HeartbeatAt)
                    .to_owned(),
            )
            .to_owned();
        execute(self.pool(), &upsert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.presence.open", skip_all, err)]
    async fn connection_opened(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        touch(&mut tx, user, now).await?;
        let upsert = Query::insert()
            .into_table(Connections::Table)
            .columns([Connections::NodeId, Connections::UserId, Connections::Count])
            .values([node.0.into(), user.0.into(), 1i64.into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::columns([Connections::NodeId, Connections::UserId])
                    .value(
                        Connections::Count,
                        Expr::col((Connections::Table, Connections::Count)).add(1),
                    )
                    .to_owned(),
            )
            .to_owned();
        execute(&mut *tx, &upsert).await.map_err(db)?;
        let live = live_connections(&mut tx, &[user], alive_since).await?;
        tx.commit().await.map_err(db)?;
        Ok(live.get(&user).copied().unwrap_or(0))
    }

    #[tracing::instrument(name = "db.presence.close", skip_all, err)]
    async fn connection_closed(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        touch(&mut tx, user, now).await?;
        let update = Query::update()
            .table(Connections::Table)
            .value(Connections::Count, Expr::col(Connections::Count).sub(1))
            .and_where(Expr::col(Connections::NodeId).eq(node.0))
            .and_where(Expr::col(Connections::UserId).eq(user.0))
            .to_owned();
        execute(&mut *tx, &update).await.map_err(db)?;
        let delete = Query::delete()
            .from_table(Connections::Table)
            .and_where(Expr::col(Connections::NodeId).eq(node.0))
            .and_where(Expr::col(Connections::UserId).eq(user.0))
            .and_where(Expr::col(Connections::Count).lte(0))
            .to_owned();
        execute(&mut *tx, &delete).await.map_err(db)?;
        let live = live_connections(&mut tx, &[user], alive_since).await?;
        tx.commit().await.map_err(db)?;
        Ok(live.get(&user).copied().unwrap_or(0))
    }

    #[tracing::instrument(name = "db.presence.set_away", skip_all, err)]
    async fn set_away(&self, user: UserId, away: bool) -> Result<(), StoreError> {
        let upsert = Query::insert()
            .into_table(UserPresence::Table)
            .columns([UserPresence::UserId, UserPresence::Away])
            .values([user.0.into(), away.into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::column(UserPresence::UserId)
                    .update_column(UserPresence::Away)
                    .to_owned(),
            )
            .to_owned();
        execute(self.pool(), &upsert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.presence.get", skip_all, err)]
    async fn presence(
        &self,
        users: &[UserId],
        alive_since: OffsetDateTime,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool().acquire().await.map_err(db)?;
        let q = Query::select()
            .column((Users::Table, Users::Id))
            .column((UserPresence::Table, UserPresence::Away))
            .column((UserPresence::Table, UserPresence::LastSeen))
            .from(Users::Table)
            .left_join(
                UserPresence::Table,
                Expr::col((UserPresence::Table, UserPresence::UserId))
                    .equals((Users::Table, Users::Id)),
            )
            .and_where(Expr::col((Users::Table, Users::Id)).is_in(users.iter().map(|u| u.0)))
            .to_owned();
        let rows: Vec<(Uuid, Option<bool>, Option<OffsetDateTime>)> =
            fetch_all(&mut *conn, &q).await.map_err(db)?;
        let live = live_connections(&mut conn, users, alive_since).await?;
        Ok(rows
            .into_iter()
            .map(|(id, away, last_seen)| {
                let user = UserId(id);
                PresenceRecord {
                    user_id: user,
                    connections: live.get(&user).copied().unwrap_or(0),
                    away: away.unwrap_or(false),
                    last_seen,
                }
            })
            .collect())
    }

    #[tracing::instrument(name = "db.presence.reap", skip_all, err)]
    async fn reap_nodes(&self, alive_since: OffsetDateTime) -> Result<Vec<UserId>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        // Deleting the node rows first decides who reaps them: a second reaper waits on the
        // same rows and then finds them gone.
        let delete = Query::delete()
            .from_table(Nodes::Table)
            .and_where(Expr::col(Nodes::HeartbeatAt).lt(alive_since))
            .returning(Query::returning().columns([Nodes::Id, Nodes::HeartbeatAt]))
            .to_owned();
        let dead: Vec<(Uuid, OffsetDateTime)> = fetch_all(&mut *tx, &delete).await.map_err(db)?;
        let users = drop_connections(&mut tx, &dead).await?;
        tx.commit().await.map_err(db)?;
        Ok(users)
    }

    #[tracing::instrument(name = "db.presence.forget_node", skip_all, err)]
    async fn forget_node(
        &self,
        node: NodeId,
        now: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db)?;
        let delete = Query::delete()
            .from_table(Nodes::Table)
            .and_where(Expr::col(Nodes::Id).eq(node.0))
            .to_owned();
        execute(&mut *tx, &delete).await.map_err(db)?;
        let users = drop_connections(&mut tx, &[(node.0, now)]).await?;
        tx.commit().await.map_err(db)?;
        Ok(users)
    }
}
