//! Presence: connection counts per node, node heartbeats, and reaping dead nodes.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_core::domain::{from_micros, micros, UserId};
use chat_core::ports::{NodeId, PresenceRecord, PresenceStore};
use chat_core::StoreError;
use sea_query::{Expr, OnConflict, Query};
use sqlx::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_all};
use crate::schema::{Connections, Nodes, UserPresence, Users};
use crate::store::SqliteStore;

/// Sets the user's last seen, creating their presence row if needed.
async fn touch(
    conn: &mut SqliteConnection,
    user: UserId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let upsert = Query::insert()
        .into_table(UserPresence::Table)
        .columns([UserPresence::UserId, UserPresence::LastSeen])
        .values([user.0.into(), micros(at).into()])
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

/// The user's connections on nodes heard from at or after `alive_since`.
async fn live_connections(
    conn: &mut SqliteConnection,
    users: &[UserId],
    alive_since: OffsetDateTime,
) -> Result<HashMap<UserId, i64>, StoreError> {
    let q = Query::select()
        .column((Connections::Table, Connections::UserId))
        .expr(Expr::col((Connections::Table, Connections::Count)).sum())
        .from(Connections::Table)
        .inner_join(
            Nodes::Table,
            Expr::col((Nodes::Table, Nodes::Id)).equals((Connections::Table, Connections::NodeId)),
        )
        .and_where(
            Expr::col((Connections::Table, Connections::UserId)).is_in(users.iter().map(|u| u.0)),
        )
        .and_where(Expr::col((Nodes::Table, Nodes::HeartbeatAt)).gte(micros(alive_since)))
        .group_by_col((Connections::Table, Connections::UserId))
        .to_owned();
    let rows: Vec<(Uuid, i64)> = fetch_all(conn, &q).await.map_err(db)?;
    Ok(rows.into_iter().map(|(u, n)| (UserId(u), n)).collect())
}

/// Drops the node and its connections; returns the users it served, last seen at `at`.
async fn drop_node(
    conn: &mut SqliteConnection,
    node: Uuid,
    at: OffsetDateTime,
) -> Result<Vec<UserId>, StoreError> {
    let q = Query::select()
        .column(Connections::UserId)
        .from(Connections::Table)
        .and_where(Expr::col(Connections::NodeId).eq(node))
        .to_owned();
    let users: Vec<(Uuid,)> = fetch_all(&mut *conn, &q).await.map_err(db)?;
    let users: Vec<UserId> = users.into_iter().map(|(u,)| UserId(u)).collect();
    for user in &users {
        touch(conn, *user, at).await?;
    }
    let delete = Query::delete()
        .from_table(Connections::Table)
        .and_where(Expr::col(Connections::NodeId).eq(node))
        .to_owned();
    execute(&mut *conn, &delete).await.map_err(db)?;
    let delete = Query::delete()
        .from_table(Nodes::Table)
        .and_where(Expr::col(Nodes::Id).eq(node))
        .to_owned();
    execute(&mut *conn, &delete).await.map_err(db)?;
    Ok(users)
}

#[async_trait]
impl PresenceStore for SqliteStore {
    #[tracing::instrument(name = "db.presence.heartbeat", skip_all, err)]
    async fn node_heartbeat(&self, node: NodeId, now: OffsetDateTime) -> Result<(), StoreError> {
        let upsert = Query::insert()
            .into_table(Nodes::Table)
            .columns([Nodes::Id, Nodes::HeartbeatAt])
            .values([node.0.into(), micros(now).into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::column(Nodes::Id)
                    .update_column(Nodes::HeartbeatAt)
                    .to_owned(),
            )
            .to_owned();
        execute(&self.writer, &upsert).await.map_err(db)?;
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
        let mut tx = self.write().await?;
        let upsert = Query::insert()
            .into_table(Connections::Table)
            .columns([Connections::NodeId, Connections::UserId, Connections::Count])
            .values([node.0.into(), user.0.into(), 1.into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::columns([Connections::NodeId, Connections::UserId])
                    .value(Connections::Count, Expr::col(Connections::Count).add(1))
                    .to_owned(),
            )
            .to_owned();
        execute(&mut *tx, &upsert).await.map_err(db)?;
        touch(&mut tx, user, now).await?;
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
        let mut tx = self.write().await?;
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
        touch(&mut tx, user, now).await?;
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
        execute(&self.writer, &upsert).await.map_err(db)?;
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
        let mut conn = self.reader.acquire().await.map_err(db)?;
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
        let rows: Vec<(Uuid, Option<bool>, Option<i64>)> =
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
                    last_seen: last_seen.map(from_micros),
                }
            })
            .collect())
    }

    #[tracing::instrument(name = "db.presence.reap", skip_all, err)]
    async fn reap_nodes(&self, alive_since: OffsetDateTime) -> Result<Vec<UserId>, StoreError> {
        let mut tx = self.write().await?;
        let q = Query::select()
            .columns([Nodes::Id, Nodes::HeartbeatAt])
            .from(Nodes::Table)
            .and_where(Expr::col(Nodes::HeartbeatAt).lt(micros(alive_since)))
            .to_owned();
        let dead: Vec<(Uuid, i64)> = fetch_all(&mut *tx, &q).await.map_err(db)?;
        let mut users = Vec::new();
        for (node, beat) in dead {
            users.extend(drop_node(&mut tx, node, from_micros(beat)).await?);
        }
        tx.commit().await.map_err(db)?;
        users.sort();
        users.dedup();
        Ok(users)
    }

    #[tracing::instrument(name = "db.presence.forget_node", skip_all, err)]
    async fn forget_node(
        &self,
        node: NodeId,
        now: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        let mut tx = self.write().await?;
        let users = drop_node(&mut tx, node.0, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(users)
    }
}
