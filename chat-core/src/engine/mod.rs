//! `ChatEngine`: every operation of the chat, with its rules. Each method takes the acting user
//! first, enforces membership, roles, validation and limits, and returns `Result<_, ChatError>`.
//! Checks run in the API's order: existence and visibility (`NotFound`), then permission
//! (`Forbidden`), then validation of the input (`Validation`).

mod accounts;
mod bus;
mod changes;
mod deletion;
mod live;
mod messages;
mod moderation;
mod order;
mod presence;
mod receipts;
mod relay;
mod roles;
mod rooms;
mod sessions;
mod typing;
mod uploads;

use std::sync::Arc;

use crate::auth::host::HostTokens;
use crate::auth::{PasswordHasher, TokenConfigError, TokenIssuer};
use crate::clock::{random_bytes, Clock, IdGenerator, RandomIds, SystemClock};
use crate::domain::{Membership, Room, RoomId, RoomKind, UserId, Visibility};
use crate::error::ChatError;
use crate::events::Event;
use crate::hub::Hub;
use crate::notify::InProcessNotifier;
use crate::ports::{BlobStore, EventSink, Hint, HintKind, NodeId, Notifier, OutboxCounts, Store};
use crate::rate::{Limiter, Rate};

pub use accounts::{LoginResult, Register, UpdateMe, UserPage, WsTicket, WS_TICKET_SECS};
pub use changes::EditMessage;
pub use deletion::{DeleteAccount, PURGE_EVERY};
pub use live::{Session, SessionEnd, SyncSince, SyncedRoom};
pub use messages::{HistoryQuery, SearchMessages, SearchPage, SendMessage, Sent, ThreadQuery};
pub use moderation::{BanPage, BlockPage};
pub use presence::{
    Presence, PresenceStatus, SetPresence, HEARTBEAT, MAX_PRESENCE_QUERY, NODE_TIMEOUT,
};
pub use receipts::{
    DeliveredState, MarkSeq, ReadState, ReceiptPage, RoomUnread, UnreadSummary, MAX_RECEIPT_ROOM,
};
pub use relay::{RelayStats, PRUNE_EVERY};
pub use roles::ChangeRole;
pub use rooms::{
    AddMember, CreateRoom, DirectRoom, MemberPage, PublicRoomPage, RoomPage, RoomSettings,
    RoomStats, UpdateRoom,
};
pub use sessions::ChangePassword;
pub use typing::{Typing, TYPING_TTL};
pub use uploads::{ByteRange, Download, UploadLink, UploadView, COLLECT_EVERY};

/// The limits the engine enforces; each is a setting of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The longest message body, in characters (`CHAT_MAX_MESSAGE_CHARS`).
    pub max_message_chars: usize,
    /// The most rooms one user can be in; also bounds every list of a user's rooms.
    pub max_rooms_per_user: u32,
    /// Initial members a new room may name.
    pub max_initial_members: usize,
    /// Events queued per live session before it is cut as a slow consumer (`CHAT_WS_QUEUE`).
    pub session_queue: usize,
    /// Messages a `sync` replays per room before answering `complete: false`.
    pub sync_max_messages: u32,
    /// Password hashes computed at once.
    pub max_concurrent_hashes: usize,
    /// How long a refresh token stays valid, in seconds.
    pub refresh_ttl_secs: i64,
    /// How long a session found live is trusted without asking the store again, in seconds
    /// (0: ask every time). Sign-outs on other nodes arrive on the bus at once; this bounds
    /// how long one whose hint was lost still lets the session's access tokens in.
    pub session_trust_secs: u64,
    /// Live sessions (WebSocket connections) one user may have open on one node.
    pub max_connections_per_user: usize,
    /// Messages one user may send (HTTP and WebSocket together); `None`: unlimited.
    pub send_rate: Option<Rate>,
    /// Failed logins per account and per client address; `None`: unlimited. Successful
    /// logins do not count.
    pub failed_login_rate: Option<Rate>,
    /// The largest upload, in bytes (`CHAT_UPLOAD_MAX_BYTES`).
    pub upload_max_bytes: u64,
    /// How long an upload no message carries is kept before it is collected, in seconds.
    pub unattached_upload_secs: i64,
    /// How long a signed upload link works, in seconds.
    pub upload_link_secs: i64,
    /// How long the username of a deleted account stays taken, in seconds, so nobody can pass
    /// for its owner at once.
    pub username_quarantine_secs: i64,
    /// How long a relay waits before looking at the outbox again when nothing was pending,
    /// in milliseconds (the latency of domain events).
    pub outbox_poll_ms: u64,
    /// How long sent domain events stay in the outbox, in seconds.
    pub outbox_retention_secs: i64,
    /// Different reactions one message takes (Discord's limit; enough for any real use, and it
    /// bounds the `reactions` of every message read).
    pub max_reaction_kinds: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_chars: 4000,
            max_rooms_per_user: 5000,
            max_initial_members: 100,
            session_queue: 1024,
            sync_max_messages: 500,
            max_concurrent_hashes: 4,
            refresh_ttl_secs: 30 * 24 * 3600,
            session_trust_secs: 5,
            max_reaction_kinds: 20,
            max_connections_per_user: 20,
            send_rate: Some(Rate {
                burst: 100,
                per_sec: 20.0,
            }),
            failed_login_rate: Some(Rate::per_minute(10)),
            upload_max_bytes: 50 * 1024 * 1024,
            unattached_upload_secs: 24 * 3600,
            upload_link_secs: 300,
            username_quarantine_secs: 30 * 24 * 3600,
            outbox_poll_ms: 200,
            outbox_retention_secs: 7 * 24 * 3600,
        }
    }
}

/// The chat engine. Cheap to clone: clones share one engine.
#[derive(Clone, Debug)]
pub struct ChatEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    notifier: Arc<dyn Notifier>,
    hub: Hub,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    host_tokens: Option<HostTokens>,
    limits: Limits,
    node: NodeId,
    typing: typing::TypingState,
    sends: Option<Limiter<UserId>>,
    failed_logins: Option<Limiter<accounts::LoginKey>>,
    live_sessions: sessions::LiveSessions,
    publish_order: order::PublishOrder,
    relay_stats: relay::RelayStats,
    /// The outbox channels of the event sinks, in the order they were given.
    event_channels: Vec<String>,
}

/// Builds a [`ChatEngine`] from its ports; everything but the store has a default.
#[derive(Debug)]
pub struct ChatEngineBuilder {
    store: Arc<dyn Store>,
    blobs: Option<Arc<dyn BlobStore>>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    tokens: Option<TokenIssuer>,
    host_tokens: Option<HostTokens>,
    limits: Limits,
    node: Option<NodeId>,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl ChatEngineBuilder {
    /// This node's id on the bus (default: a new random one). Set it when an adapter publishes
    /// hints on the node's behalf, such as a store that notifies from inside its transactions.
    pub fn node(mut self, node: NodeId) -> Self {
        self.node = Some(node);
        self
    }

    /// Where uploaded files' bytes go (default: in memory, for one process; a server
    /// configures a [`crate::blobs::FsBlobStore`] or an object store).
    pub fn blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The bus shared with other nodes (default: an in-process bus, for one node).
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The id generator (default: random v4 UUIDs).
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// The access-token issuer (default: HS256 with a random secret, so tokens live as long as
    /// the process; a server configures a persistent secret).
    pub fn tokens(mut self, tokens: TokenIssuer) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Also accept the access tokens of a host application (default: none); their users are
    /// provisioned on first use.
    pub fn host_tokens(mut self, host_tokens: HostTokens) -> Self {
        self.host_tokens = Some(host_tokens);
        self
    }

    /// Where domain events go (default: nowhere). Each sink relays its own outbox channel,
    /// so the store must record events for each sink's [`EventSink::channel`].
    pub fn event_sinks(mut self, sinks: Vec<Arc<dyn EventSink>>) -> Self {
        self.sinks = sinks;
        self
    }

    /// The limits (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Builds the engine and starts its bus listener on the current tokio runtime.
    pub async fn build(self) -> Result<ChatEngine, ChatError> {
        let tokens = match self.tokens {
            Some(tokens) => tokens,
            None => {
                let mut secret = [0u8; 32];
                random_bytes(&mut secret);
                TokenIssuer::new(&secret, "chat-core", 3600).map_err(|e: TokenConfigError| {
                    tracing::error!(error = %e, "default token issuer");
                    ChatError::Internal
                })?
            }
        };
        let notifier = self
            .notifier
            .unwrap_or_else(|| Arc::new(InProcessNotifier::default()));
        let bus = notifier.subscribe().await?;
        let node = self.node.unwrap_or_else(|| NodeId(self.ids.new_id()));
        // Beat once before any connection is counted, so this node's counts hold from the first.
        self.store.node_heartbeat(node, self.clock.now()).await?;
        let sends = self.limits.send_rate.map(Limiter::new);
        let failed_logins = self.limits.failed_login_rate.map(Limiter::new);
        let session_trust = std::time::Duration::from_secs(self.limits.session_trust_secs);
        let engine = ChatEngine {
            inner: Arc::new(Inner {
                store: self.store,
                blobs: self
                    .blobs
                    .unwrap_or_else(|| Arc::new(crate::blobs::MemoryBlobStore::new())),
                notifier,
                hub: Hub::new(self.limits.session_queue),
                hasher: PasswordHasher::new(self.limits.max_concurrent_hashes),
                clock: self.clock,
                node,
                ids: self.ids,
                tokens,
                host_tokens: self.host_tokens,
                limits: self.limits,
                typing: typing::TypingState::default(),
                sends,
                failed_logins,
                live_sessions: sessions::LiveSessions::new(session_trust),
                publish_order: order::PublishOrder::default(),
                relay_stats: relay::RelayStats::default(),
                event_channels: self.sinks.iter().map(|s| s.channel().to_owned()).collect(),
            }),
        };
        bus::spawn(Arc::downgrade(&engine.inner), bus);
        typing::spawn_expiry(Arc::downgrade(&engine.inner));
        presence::spawn_heartbeat(Arc::downgrade(&engine.inner));
        uploads::spawn_collector(Arc::downgrade(&engine.inner));
        deletion::spawn_purger(Arc::downgrade(&engine.inner));
        if !self.sinks.is_empty() {
            relay::spawn_pruner(Arc::downgrade(&engine.inner));
        }
        for sink in self.sinks {
            relay::spawn_relay(Arc::downgrade(&engine.inner), sink);
        }
        Ok(engine)
    }
}

impl ChatEngine {
    /// Starts building an engine on `store`.
    pub fn builder(store: Arc<dyn Store>) -> ChatEngineBuilder {
        ChatEngineBuilder {
            store,
            blobs: None,
            notifier: None,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            tokens: None,
            host_tokens: None,
            limits: Limits::default(),
            node: None,
            sinks: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// What the event relays did (for metrics).
    pub fn relay_stats(&self) -> &RelayStats {
        &self.inner.relay_stats
    }

    /// Each event sink's channel with its pending and given-up events (for metrics).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, OutboxCounts)>, ChatError> {
        let mut counts = Vec::with_capacity(self.inner.event_channels.len());
        for channel in &self.inner.event_channels {
            let count = self.inner.store.outbox_counts(channel).await?;
            counts.push((channel.clone(), count));
        }
        Ok(counts)
    }

    /// The node-local hub (for metrics).
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Whether storage answers.
    pub async fn ready(&self) -> Result<(), ChatError> {
        self.inner.store.ping().await.map_err(ChatError::from)
    }
}

impl Inner {
    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The room if the user may see it: members see their rooms, everyone sees public rooms.
    /// Anything else is `NotFound`, exactly like a room that does not exist.
    async fn visible_room(
        &self,
        user: UserId,
        room: RoomId,
    ) -> Result<(Room, Option<Membership>), ChatError> {
        let found = self.store().room(room).await?.ok_or(ChatError::NotFound)?;
        let membership = self.store().membership(room, user).await?;
        if membership.is_none() && found.visibility != Visibility::Public {
            return Err(ChatError::NotFound);
        }
        Ok((found, membership))
    }

    /// The user's membership, for actions only members may take: a non-member of a public room
    /// is `Forbidden`, of anything else `NotFound`.
    async fn require_member(
        &self,
        user: UserId,
        room: RoomId,
        why: &'static str,
    ) -> Result<(Room, Membership), ChatError> {
        match self.visible_room(user, room).await? {
            (room, Some(membership)) => Ok((room, membership)),
            (_, None) => Err(ChatError::Forbidden(why)),
        }
    }

    /// `Forbidden` when the room is a direct room whose other member blocks the user: what
    /// they would write there. Only direct rooms pay for the lookup, as blocks do not reach
    /// into group rooms.
    async fn refuse_if_blocked(&self, room: &Room, user: UserId) -> Result<(), ChatError> {
        if room.kind == RoomKind::Direct && self.store().blocked_by_member(room.id, user).await? {
            return Err(ChatError::Forbidden("this user has blocked you"));
        }
        Ok(())
    }

    /// Tells this node's sessions and the other nodes about a change. The change is already
    /// committed, so a failing bus costs only live delivery elsewhere, which `sync` recovers.
    async fn announce(&self, event: Event, hint: HintKind) {
        let room = event.room();
        let frame = event.into_frame();
        match (room, &hint) {
            (Some(room), HintKind::Message { seq }) => {
                self.publish_order
                    .publish(room, *seq, || self.hub.publish(frame))
                    .await
            }
            _ => self.hub.publish(frame),
        }
        self.hint(room, hint).await;
    }

    async fn hint(&self, room: Option<RoomId>, kind: HintKind) {
        let hint = Hint {
            origin: self.node,
            room,
            kind,
        };
        if let Err(e) = self.notifier.publish(&[hint]).await {
            tracing::warn!(error = %e, ?room, "publishing a hint failed; other nodes will catch up on sync");
        }
    }
}
