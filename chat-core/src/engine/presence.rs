//! Presence: online while the user has a live connection on any node, `away` when they say so,
//! offline when the last connection closes, or once the node holding it stops its heartbeat.
//! Changes go to the users who share a room with them, on this node and, by hint, on others.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ChatEngine, Inner};
use crate::domain::{RoomId, UserId};
use crate::error::{ChatError, FieldErrors};
use crate::events::Event;
use crate::outbox::{Envelope, EventType};
use crate::ports::{HintKind, PresenceRecord};

/// How often a node tells the store it is alive, and looks for nodes that are not.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node not heard from for this long is dead: its connections stop counting. With the
/// heartbeat above, a dead node's users are offline within `NODE_TIMEOUT + HEARTBEAT` (20 s).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(15);
/// The most users one presence query may name.
pub const MAX_PRESENCE_QUERY: usize = 100;

/// What others see of a user's availability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Connected.
    Online,
    /// Connected, but said they are away.
    Away,
    /// No live connection.
    Offline,
}

impl PresenceStatus {
    /// The statuses a user sets; `offline` follows from having no connection.
    pub const SETTABLE: [PresenceStatus; 2] = [PresenceStatus::Online, PresenceStatus::Away];

    /// The status's name as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// A user's presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    /// The user.
    pub user_id: UserId,
    /// Their availability.
    pub status: PresenceStatus,
    /// When a connection of theirs last opened or closed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_seen: Option<OffsetDateTime>,
}

impl From<PresenceRecord> for Presence {
    fn from(r: PresenceRecord) -> Self {
        let status = match (r.connections > 0, r.away) {
            (false, _) => PresenceStatus::Offline,
            (true, true) => PresenceStatus::Away,
            (true, false) => PresenceStatus::Online,
        };
        Presence {
            user_id: r.user_id,
            status,
            last_seen: r.last_seen,
        }
    }
}

/// A status the user sets.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    /// `online` or `away`.
    #[cfg_attr(feature = "openapi", schema(schema_with = settable_status))]
    pub status: String,
}

#[cfg(feature = "openapi")]
fn settable_status() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(PresenceStatus::SETTABLE.map(PresenceStatus::as_str)))
        .description(Some("`online` or `away`."))
}

impl ChatEngine {
    /// The presence of up to [`MAX_PRESENCE_QUERY`] users; unknown ids are left out.
    pub async fn presence(
        &self,
        _actor: UserId,
        users: &[UserId],
    ) -> Result<Vec<Presence>, ChatError> {
        if users.len() > MAX_PRESENCE_QUERY {
            return Err(ChatError::BadRequest(format!(
                "at most {MAX_PRESENCE_QUERY} users at once"
            )));
        }
        let records = self
            .inner
            .store()
            .presence(users, self.inner.alive_since())
            .await?;
        Ok(records.into_iter().map(Presence::from).collect())
    }

    /// The caller's own presence.
    pub async fn my_presence(&self, actor: UserId) -> Result<Presence, ChatError> {
        self.inner
            .presence_of(actor)
            .await?
            .ok_or(ChatError::Unauthorized)
    }

    /// Sets whether the caller appears `online` or `away` while connected.
    pub async fn set_presence(
        &self,
        actor: UserId,
        input: SetPresence,
    ) -> Result<Presence, ChatError> {
        let away = match PresenceStatus::SETTABLE
            .into_iter()
            .find(|s| s.as_str() == input.status)
        {
            Some(status) => status == PresenceStatus::Away,
            None => {
                return Err(ChatError::Validation(FieldErrors::one(
                    "status",
                    "must be online or away",
                )))
            }
        };
        let inner = &self.inner;
        let before = inner
            .presence_of(actor)
            .await?
            .ok_or(ChatError::Unauthorized)?;
        inner.store().set_away(actor, away).await?;
        let after = inner
            .presence_of(actor)
            .await?
            .ok_or(ChatError::Unauthorized)?;
        if after.status != before.status {
            inner.announce_presence(after.clone()).await;
        }
        Ok(after)
    }

    /// Takes this node out of presence before it stops: its users' connections stop counting
    /// now rather than when its heartbeat goes stale.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        match inner
            .store()
            .forget_node(inner.node, inner.clock.now())
            .await
        {
            Ok(users) => inner.announce_if_offline(users).await,
            Err(e) => {
                tracing::warn!(error = %e, "leaving presence failed; the heartbeat runs out instead")
            }
        }
    }
}

impl Inner {
    pub(super) fn alive_since(&self) -> OffsetDateTime {
        self.clock.now() - NODE_TIMEOUT
    }

    async fn presence_of(&self, user: UserId) -> Result<Option<Presence>, ChatError> {
        let records = self.store().presence(&[user], self.alive_since()).await?;
        Ok(records.into_iter().next().map(Presence::from))
    }

    /// Counts a new connection; the user's first anywhere makes them online.
    pub(super) async fn connection_opened(&self, user: UserId) -> Result<(), ChatError> {
        let now = self.clock.now();
        let live = self
            .store()
            .connection_opened(self.node, user, now, self.alive_since())
            .await?;
        if live == 1 {
            if let Some(presence) = self.presence_of(user).await? {
                self.announce_presence(presence).await;
            }
        }
        Ok(())
    }

    /// Counts a connection closed; the user's last anywhere makes them offline.
    pub(super) async fn connection_closed(&self, user: UserId) {
        let now = self.clock.now();
        match self
            .store()
            .connection_closed(self.node, user, now, self.alive_since())
            .await
        {
            Ok(0) => self.announce_if_offline(vec![user]).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, %user, "counting a closed connection failed"),
        }
    }

    async fn announce_if_offline(&self, users: Vec<UserId>) {
        let records = match self.store().presence(&users, self.alive_since()).await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "reading presence failed");
                return;
            }
        };
        for record in records {
            let presence = Presence::from(record);
            if presence.status == PresenceStatus::Offline {
                self.announce_presence(presence).await;
            }
        }
    }

    /// Tells this node's sessions that share a room with the user, and the other nodes.
    async fn announce_presence(&self, presence: Presence) {
        let user = presence.user_id;
        // Presence is derived from connection counts, no stored change, so its domain event is
        // recorded where the change is announced (once, by the node that saw it).
        let event = Envelope::new(EventType::PresenceChanged, None, Some(user), &presence);
        if let Err(e) = self.store().record_events(&[event]).await {
            tracing::warn!(error = %e, %user, "recording presence.changed failed");
        }
        self.publish_presence(presence).await;
        self.hint(None, HintKind::Presence { user }).await;
    }

    /// Publishes a presence to this node's sessions of users who share a room with its user
    /// (not to the user's own sessions: they know).
    pub(super) async fn publish_presence(&self, presence: Presence) {
        let rooms: Vec<RoomId> = match self
            .store()
            .room_positions(presence.user_id, self.limits.max_rooms_per_user)
            .await
        {
            Ok(positions) => positions.into_iter().map(|p| p.room_id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading a user's rooms for presence failed");
                return;
            }
        };
        let frame = Event::Presence {
            user_id: presence.user_id,
            status: presence.status,
            last_seen: presence.last_seen,
        }
        .into_frame();
        self.hub.publish_to_rooms(&rooms, presence.user_id, &frame);
    }

    /// A presence hint from another node: read the truth and publish it here.
    pub(super) async fn presence_hint(&self, user: UserId) -> Result<(), ChatError> {
        if let Some(presence) = self.presence_of(user).await? {
            self.publish_presence(presence).await;
        }
        Ok(())
    }
}

/// Beats this node's heartbeat and reaps dead nodes every [`HEARTBEAT`].
pub(super) fn spawn_heartbeat(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            let Some(inner): Option<Arc<Inner>> = engine.upgrade() else {
                return;
            };
            let now = inner.clock.now();
            if let Err(e) = inner.store().node_heartbeat(inner.node, now).await {
                tracing::warn!(error = %e, "presence heartbeat failed");
                continue;
            }
            match inner.store().reap_nodes(inner.alive_since()).await {
                Ok(users) if !users.is_empty() => inner.announce_if_offline(users).await,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaping dead nodes failed"),
            }
        }
    });
}
