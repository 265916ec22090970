//! The presence port: live connections counted per node, with node heartbeats, so a node that
//! dies stops counting once its heartbeat is stale, and its users go offline on their own.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::NodeId;
use crate::domain::UserId;
use crate::error::StoreError;

/// One user's connections and chosen status, as the store counts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceRecord {
    /// The user.
    pub user_id: UserId,
    /// Their connections on nodes that are alive.
    pub connections: i64,
    /// Whether they chose to appear away.
    pub away: bool,
    /// When a connection of theirs last opened or closed (or their node was last heard from).
    pub last_seen: Option<OffsetDateTime>,
}

/// Connection counts and heartbeats. "Alive" nodes are those heard from at or after the
/// `alive_since` the caller passes.
#[async_trait]
pub trait PresenceStore: Send + Sync + Debug {
    /// Records that `node` is alive at `now`.
    async fn node_heartbeat(&self, node: NodeId, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Counts a new connection of `user` on `node` and sets their last seen to `now`; returns
    /// the user's connections on alive nodes, this one included. Changes of one user are
    /// serialized, so of two nodes counting at once, each sees the other's change or not at all.
    async fn connection_opened(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError>;
    /// Counts a connection of `user` on `node` closed and sets their last seen to `now`;
    /// returns their connections left on alive nodes (serialized per user, as above).
    async fn connection_closed(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError>;
    /// Sets whether the user appears away while connected.
    async fn set_away(&self, user: UserId, away: bool) -> Result<(), StoreError>;
    /// The records of these users (unknown ids are left out).
    async fn presence(
        &self,
        users: &[UserId],
        alive_since: OffsetDateTime,
    ) -> Result<Vec<PresenceRecord>, StoreError>;
    /// Forgets the nodes not heard from since `alive_since`, with their connections; returns
    /// the users who had connections there (each once), their last seen set to the node's last
    /// heartbeat. Of several callers at once, each dead node is reaped by exactly one.
    async fn reap_nodes(&self, alive_since: OffsetDateTime) -> Result<Vec<UserId>, StoreError>;
    /// Forgets one node and its connections (it is shutting down); returns the users who had
    /// connections there, their last seen set to `now`.
    async fn forget_node(
        &self,
        node: NodeId,
        now: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError>;
}
