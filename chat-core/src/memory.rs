//! `MemoryStore`: a complete [`Store`] in process memory. For examples, embedders' own tests and
//! single-process tools; it passes the same conformance suite as the SQL stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{
    micros, Appended, Attachment, Ban, Block, ClientId, Credentials, Cursor, Emoji, ExternalId,
    HistoryAnchor, HistoryPage, Member, Membership, MembershipView, Message, MessageEdit,
    MessageId, NewMessage, NewRoom, Reaction, ReactionChange, ReactionEdit, Rev, Role, Room,
    RoomId, RoomKind, RoomListItem, RoomPatch, RoomPosition, SearchQuery, Seq, SessionId,
    SettingsPatch, ThreadSummary, Upload, UploadId, User, UserId, UserPatch, Visibility,
};
use crate::error::StoreError;
use crate::outbox::{Envelope, EventType, PendingEvent};
use crate::ports::{
    constraint, AccountStore, AuthSession, BatchOutcome, MessageStore, ModerationStore, NodeId,
    OutboxBatch, OutboxCounts, OutboxStore, PresenceRecord, PresenceStore, Receipt, ReceiptChange,
    ReceiptStore, RoomStore, Rotation, SessionStore, Store, TicketGrant, TicketStore, UnreadCount,
    UploadStore, UserStore,
};

/// A [`Store`] held in memory; every method is one critical section, so each is atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // Shared with the outbox batches a relay holds.
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, StoredUser>,
    external_users: HashMap<ExternalId, UserId>,
    sessions: HashMap<SessionId, AuthSession>,
    /// Refresh tokens already traded in: hash -> (session, when the token would have expired).
    spent_refresh: HashMap<String, (SessionId, OffsetDateTime)>,
    rooms: HashMap<RoomId, StoredRoom>,
    direct_pairs: HashMap<(UserId, UserId), RoomId>,
    nodes: HashMap<NodeId, OffsetDateTime>,
    connections: HashMap<(NodeId, UserId), i64>,
    presence: HashMap<UserId, UserPresence>,
    uploads: HashMap<UploadId, Upload>,
    tickets: HashMap<String, (TicketGrant, OffsetDateTime)>,
    /// Which messages carry each upload.
    attached: HashMap<UploadId, HashSet<(RoomId, Seq)>>,
    /// Per blocker: whom they block, since when.
    blocks: HashMap<UserId, HashMap<UserId, OffsetDateTime>>,
    /// Closed accounts: out of `users`, so no lookup finds them.
    closed: HashMap<UserId, ClosedAccount>,
    outbox: Outbox,
}

/// Domain events waiting for their channels.
#[derive(Debug, Default)]
struct Outbox {
    /// The channels each event is recorded for; none: events are not recorded.
    channels: Vec<String>,
    /// By position, in recording order.
    rows: BTreeMap<u64, OutboxRow>,
    next: u64,
    /// Channels a relay holds the turn of.
    busy: HashSet<String>,
}

#[derive(Debug)]
struct OutboxRow {
    channel: String,
    event: PendingEvent,
    /// When it was sent or given up.
    done_at: Option<OffsetDateTime>,
    dead: bool,
}

impl Outbox {
    /// Records the event for every channel (for none when no sink is configured).
    fn record(&mut self, envelope: &Envelope) {
        let body = envelope.to_json();
        for channel in &self.channels {
            self.next += 1;
            self.rows.insert(
                self.next,
                OutboxRow {
                    channel: channel.clone(),
                    event: PendingEvent {
                        id: envelope.id,
                        kind: envelope.kind,
                        body: body.clone(),
                        attempts: 0,
                    },
                    done_at: None,
                    dead: false,
                },
            );
        }
    }
}

#[derive(Debug)]
struct ClosedAccount {
    /// The user it was (its messages and events name it).
    user: User,
    /// The username key it still holds, until released.
    username_key: Option<String>,
    closed_at: OffsetDateTime,
    purged: bool,
}

#[derive(Debug, Default)]
struct UserPresence {
    away: bool,
    last_seen: Option<OffsetDateTime>,
}

#[derive(Debug)]
struct StoredUser {
    user: User,
    password_hash: String,
}

#[derive(Debug)]
struct StoredRoom {
    room: NewRoom,
    last_seq: Seq,
    rev: Rev,
    last_message_at: Option<OffsetDateTime>,
    members: HashMap<UserId, Membership>,
    /// Messages by seq.
    messages: BTreeMap<Seq, Message>,
    /// The indexes a SQL store keeps, so no lookup scans the room's history.
    by_id: HashMap<MessageId, Seq>,
    by_client_id: HashMap<(UserId, ClientId), Seq>,
    threads: HashMap<MessageId, ThreadSummary>,
    /// Per message: each emoji in the order it was first used, with who reacted.
    reactions: HashMap<Seq, Vec<(Emoji, Vec<UserId>)>>,
    read_at: HashMap<UserId, OffsetDateTime>,
    /// Banned users: by whom, since when.
    bans: HashMap<UserId, (UserId, OffsetDateTime)>,
}

impl StoredRoom {
    fn new(room: NewRoom, members: HashMap<UserId, Membership>) -> StoredRoom {
        StoredRoom {
            room,
            last_seq: Seq::ZERO,
            rev: Rev(0),
            last_message_at: None,
            members,
            messages: BTreeMap::new(),
            by_id: HashMap::new(),
            by_client_id: HashMap::new(),
            threads: HashMap::new(),
            reactions: HashMap::new(),
            read_at: HashMap::new(),
            bans: HashMap::new(),
        }
    }
}

impl StoredRoom {
    /// The live message with this id, for changing it.
    fn live_message(&mut self, id: MessageId) -> Option<&mut Message> {
        let seq = self.by_id.get(&id)?;
        self.messages.get_mut(seq).filter(|m| !m.deleted)
    }

    /// Gives a message of this room the room's next rev.
    fn bump(&mut self, seq: Seq) -> Rev {
        self.rev = Rev(self.rev.0 + 1);
        let rev = self.rev;
        if let Some(m) = self.messages.get_mut(&seq) {
            m.rev = rev;
        }
        rev
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// An empty store that records domain events for each of these outbox channels (the
    /// [`EventSink::channel`](crate::ports::EventSink::channel)s of the engine's sinks).
    pub fn with_event_channels(channels: Vec<String>) -> MemoryStore {
        let store = MemoryStore::default();
        store.lock().outbox.channels = channels;
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (each method
        // validates before it mutates), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn direct_pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl State {
    /// Removes a room and what its messages carried; returns the uploads nothing carries now.
    fn drop_room(&mut self, room: RoomId) -> Option<Vec<UploadId>> {
        self.record_room(EventType::RoomDeleted, room);
        let removed = self.rooms.remove(&room)?;
        self.direct_pairs.retain(|_, id| *id != room);
        let mut freed = Vec::new();
        for m in removed.messages.values() {
            let Some(upload) = &m.attachment else {
                continue;
            };
            if let Some(carriers) = self.attached.get_mut(&upload.id) {
                carriers.remove(&(room, m.seq));
                if carriers.is_empty() && !freed.contains(&upload.id) {
                    freed.push(upload.id);
                }
            }
        }
        Some(freed)
    }

    fn live_connections(&self, user: UserId, alive_since: OffsetDateTime) -> i64 {
        self.connections
            .iter()
            .filter(|((node, u), _)| {
                *u == user
                    && self
                        .nodes
                        .get(node)
                        .is_some_and(|beat| *beat >= alive_since)
            })
            .map(|(_, n)| *n)
            .sum()
    }

    /// Drops a node and its connections; the users it served, last seen at `at`.
    fn drop_node(&mut self, node: NodeId, at: OffsetDateTime) -> Vec<UserId> {
        self.nodes.remove(&node);
        let mut users: Vec<UserId> = self
            .connections
            .keys()
            .filter(|(n, _)| *n == node)
            .map(|(_, u)| *u)
            .collect();
        users.sort();
        users.dedup();
        self.connections.retain(|(n, _), _| *n != node);
        for user in &users {
            self.presence.entry(*user).or_default().last_seen = Some(at);
        }
        users
    }

    fn username_taken(&self, key: &str, except: Option<UserId>) -> bool {
        self.users
            .values()
            .any(|u| u.user.username.key() == key && Some(u.user.id) != except)
            || self
                .closed
                .values()
                .any(|c| c.username_key.as_deref() == Some(key))
    }

    fn email_taken(&self, key: &str, except: Option<UserId>) -> bool {
        self.users.values().any(|u| {
            u.user.email.as_ref().map(|e| e.key()).as_deref() == Some(key)
                && Some(u.user.id) != except
        })
    }

    fn room_view(&self, stored: &StoredRoom) -> Room {
        Room {
            id: stored.room.id,
            kind: stored.room.kind,
            name: stored.room.name.clone(),
            topic: stored.room.topic.clone(),
            visibility: stored.room.visibility,
            created_by: stored.room.created_by,
            created_at: stored.room.created_at,
            member_count: stored.members.len() as i64,
            last_seq: stored.last_seq,
            rev: stored.rev,
            last_message_at: stored.last_message_at,
            last_message: stored
                .messages
                .get(&stored.last_seq)
                .map(|m| Box::new(message_view(stored, m))),
        }
    }

    /// Records a `member.*` event of `m` (also of a closed account, whose row lives on).
    fn record_member(&mut self, kind: EventType, m: &Membership) {
        let user = self
            .users
            .get(&m.user_id)
            .map(|u| &u.user)
            .or_else(|| self.closed.get(&m.user_id).map(|c| &c.user));
        if let Some(user) = user {
            let member = Member {
                room_id: m.room_id,
                user: user.clone().public(),
                role: m.role,
                joined_at: m.joined_at,
            };
            self.outbox.record(&Envelope::of_member(kind, &member));
        }
    }

    /// Records a new room's `room.created` and its first members' `member.joined`, in the
    /// order they joined.
    fn record_created<'a>(&mut self, room: RoomId, members: impl Iterator<Item = &'a Membership>) {
        self.record_room(EventType::RoomCreated, room);
        let mut members: Vec<&Membership> = members.collect();
        members.sort_by_key(|m| (m.joined_at, m.user_id));
        for m in members {
            self.record_member(EventType::MemberJoined, m);
        }
    }

    /// Records a `room.*` event of the room as it is now.
    fn record_room(&mut self, kind: EventType, room: RoomId) {
        if let Some(view) = self.rooms.get(&room).map(|r| self.room_view(r)) {
            self.outbox.record(&Envelope::of_room(kind, &view));
        }
    }

    fn member_view(&self, m: &Membership) -> Option<Member> {
        let user = self.users.get(&m.user_id)?.user.clone().public();
        Some(Member {
            room_id: m.room_id,
            user,
            role: m.role,
            joined_at: m.joined_at,
        })
    }
}

/// The message as read back: tombstones hide their content; roots carry their thread summary.
fn message_view(room: &StoredRoom, m: &Message) -> Message {
    let mut out = m.clone();
    out.thread = room.threads.get(&m.id).cloned();
    out.reactions = room
        .reactions
        .get(&m.seq)
        .into_iter()
        .flatten()
        .map(|(emoji, users)| Reaction {
            emoji: emoji.clone(),
            count: users.len() as i64,
            me: None,
        })
        .collect();
    if out.deleted {
        out.body = None;
        out.attachment = None;
        out.reactions.clear();
    }
    out
}

/// A member's unread messages: others' messages after their read watermark, not deleted.
fn unread_in(room: &StoredRoom, m: &Membership) -> UnreadCount {
    let unread: Vec<&Message> = room
        .messages
        .range(m.read_seq.next()..)
        .map(|(_, msg)| msg)
        .filter(|msg| msg.sender_id != m.user_id && !msg.deleted)
        .collect();
    UnreadCount {
        room_id: room.room.id,
        unread_count: unread.len() as i64,
        mention_count: unread
            .iter()
            .filter(|msg| msg.mentions.contains(&m.user_id))
            .count() as i64,
        muted: m.muted,
    }
}

fn receipt_of(room: &StoredRoom, m: &Membership) -> Receipt {
    Receipt {
        user_id: m.user_id,
        delivered_seq: m.delivered_seq,
        read_seq: m.read_seq,
        read_at: room.read_at.get(&m.user_id).copied(),
    }
}

fn activity(room: &StoredRoom) -> OffsetDateTime {
    room.last_message_at.unwrap_or(room.room.created_at)
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.username_taken(&user.username.key(), None) {
            return Err(StoreError::Conflict {
                constraint: constraint::USERNAME,
            });
        }
        if let Some(email) = &user.email {
            if s.email_taken(&email.key(), None) {
                return Err(StoreError::Conflict {
                    constraint: constraint::EMAIL,
                });
            }
        }
        s.users.insert(
            user.id,
            StoredUser {
                user: user.clone(),
                password_hash: password_hash.to_owned(),
            },
        );
        s.outbox
            .record(&Envelope::of_user(EventType::UserCreated, user));
        Ok(())
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(&id).map(|u| u.user.clone()))
    }

    async fn credentials(&self, login: &str) -> Result<Option<Credentials>, StoreError> {
        let key = login.to_lowercase();
        let s = self.lock();
        Ok(s.users
            .values()
            .find(|u| {
                u.user.username.key() == key
                    || u.user.email.as_ref().map(|e| e.key()).as_deref() == Some(key.as_str())
            })
            .map(|u| Credentials {
                user: u.user.clone(),
                password_hash: u.password_hash.clone(),
            }))
    }

    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let prefix = prefix.to_lowercase();
        let s = self.lock();
        let mut found: Vec<&User> = s
            .users
            .values()
            .map(|u| &u.user)
            .filter(|u| {
                u.username.key().starts_with(&prefix)
                    || u.display_name.as_str().to_lowercase().starts_with(&prefix)
            })
            .filter(|u| after.is_none_or(|a| u.username.key().as_str() > a))
            .collect();
        found.sort_by_key(|u| u.username.key());
        Ok(found.into_iter().take(limit as usize).cloned().collect())
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> Result<User, StoreError> {
        let mut s = self.lock();
        if !s.users.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        if let Some(Some(email)) = &patch.email {
            if s.email_taken(&email.key(), Some(id)) {
                return Err(StoreError::Conflict {
                    constraint: constraint::EMAIL,
                });
            }
        }
        let stored = s.users.get_mut(&id).ok_or(StoreError::NotFound)?;
        if let Some(name) = &patch.display_name {
            stored.user.display_name = name.clone();
        }
        if let Some(email) = &patch.email {
            stored.user.email = email.clone();
        }
        let user = stored.user.clone();
        if patch.display_name.is_some() || patch.email.is_some() {
            s.outbox
                .record(&Envelope::of_user(EventType::UserUpdated, &user));
        }
        Ok(user)
    }

    async fn external_user(&self, id: &ExternalId) -> Result<Option<User>, StoreError> {
        let s = self.lock();
        Ok(s.external_users
            .get(id)
            .and_then(|user| s.users.get(user))
            .map(|u| u.user.clone()))
    }

    async fn provision_external_user(
        &self,
        id: &ExternalId,
        user: &User,
    ) -> Result<User, StoreError> {
        let mut s = self.lock();
        if let Some(existing) = s.external_users.get(id).and_then(|u| s.users.get(u)) {
            return Ok(existing.user.clone());
        }
        if s.username_taken(&user.username.key(), None) {
            return Err(StoreError::Conflict {
                constraint: constraint::USERNAME,
            });
        }
        s.users.insert(
            user.id,
            StoredUser {
                user: user.clone(),
                password_hash: String::new(),
            },
        );
        s.external_users.insert(id.clone(), user.id);
        s.outbox
            .record(&Envelope::of_user(EventType::UserCreated, user));
        Ok(user.clone())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, session: &AuthSession) -> Result<(), StoreError> {
        self.lock().sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn session(&self, id: SessionId) -> Result<Option<AuthSession>, StoreError> {
        Ok(self.lock().sessions.get(&id).cloned())
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut s = self.lock();
        let state = &mut *s;
        state.spent_refresh.retain(|_, (_, until)| *until > now);
        if let Some((id, _)) = state.spent_refresh.get(old_hash) {
            let live = state
                .sessions
                .get(id)
                .is_some_and(|x| x.revoked_at.is_none());
            return Ok(if live {
                Rotation::Reused(*id)
            } else {
                Rotation::Unknown
            });
        }
        let Some(session) = state
            .sessions
            .values_mut()
            .find(|x| x.refresh_hash == old_hash && x.expires_at > now && x.revoked_at.is_none())
        else {
            return Ok(Rotation::Unknown);
        };
        state
            .spent_refresh
            .insert(old_hash.to_owned(), (session.id, session.expires_at));
        session.refresh_hash = new_hash.to_owned();
        session.expires_at = expires_at;
        Ok(Rotation::Rotated(session.clone()))
    }

    async fn revoke_session(&self, id: SessionId, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.sessions.get_mut(&id) {
            Some(session) if session.revoked_at.is_none() => {
                session.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut s = self.lock();
        let stored = s.users.get_mut(&user).ok_or(StoreError::NotFound)?;
        stored.password_hash = password_hash.to_owned();
        let mut revoked = Vec::new();
        for session in s.sessions.values_mut() {
            if session.user_id == user && session.revoked_at.is_none() && Some(session.id) != keep {
                session.revoked_at = Some(now);
                revoked.push(session.id);
            }
        }
        Ok(revoked)
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn close_account(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut s = self.lock();
        let stored = s.users.remove(&user).ok_or(StoreError::NotFound)?;
        s.closed.insert(
            user,
            ClosedAccount {
                user: stored.user.clone(),
                username_key: Some(stored.user.username.key()),
                closed_at: now,
                purged: false,
            },
        );
        s.outbox
            .record(&Envelope::of_user(EventType::UserDeleted, &stored.user));
        let mut revoked = Vec::new();
        for session in s.sessions.values_mut() {
            if session.user_id == user && session.revoked_at.is_none() {
                session.revoked_at = Some(now);
                revoked.push(session.id);
            }
        }
        s.blocks.remove(&user);
        for blocked in s.blocks.values_mut() {
            blocked.remove(&user);
        }
        for room in s.rooms.values_mut() {
            room.bans.remove(&user);
        }
        Ok(revoked)
    }

    async fn unpurged_accounts(
        &self,
        closed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let s = self.lock();
        let mut found: Vec<(OffsetDateTime, UserId)> = s
            .closed
            .iter()
            .filter(|(_, c)| !c.purged && c.closed_at < closed_before)
            .map(|(id, c)| (c.closed_at, *id))
            .collect();
        found.sort();
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|(_, id)| id)
            .collect())
    }

    async fn live_messages_by(
        &self,
        sender: UserId,
        limit: u32,
    ) -> Result<Vec<(RoomId, MessageId)>, StoreError> {
        let s = self.lock();
        Ok(s.rooms
            .iter()
            .flat_map(|(id, r)| {
                r.messages
                    .values()
                    .filter(|m| m.sender_id == sender && !m.deleted)
                    .map(|m| (*id, m.id))
            })
            .take(limit as usize)
            .collect())
    }

    async fn uploads_by(&self, uploader: UserId, limit: u32) -> Result<Vec<UploadId>, StoreError> {
        let s = self.lock();
        Ok(s.uploads
            .values()
            .filter(|u| u.uploader == uploader)
            .take(limit as usize)
            .map(|u| u.id)
            .collect())
    }

    async fn finish_purge(&self, user: UserId) -> Result<(), StoreError> {
        if let Some(closed) = self.lock().closed.get_mut(&user) {
            closed.purged = true;
        }
        Ok(())
    }

    async fn release_username(
        &self,
        username_key: &str,
        closed_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let holder = s.closed.values_mut().find(|c| {
            c.username_key.as_deref() == Some(username_key) && c.closed_at < closed_before
        });
        Ok(holder.is_some_and(|c| c.username_key.take().is_some()))
    }
}

fn new_membership(room: RoomId, user: UserId, role: Role, at: OffsetDateTime) -> Membership {
    Membership {
        room_id: room,
        user_id: user,
        role,
        joined_at: at,
        read_seq: Seq::ZERO,
        delivered_seq: Seq::ZERO,
        pinned: false,
        muted: false,
        archived: false,
    }
}

#[async_trait]
impl RoomStore for MemoryStore {
    async fn create_room(
        &self,
        room: &NewRoom,
        members: &[(UserId, Role)],
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if members.iter().any(|(u, _)| !s.users.contains_key(u)) {
            return Err(StoreError::NotFound);
        }
        let members: HashMap<UserId, Membership> = members
            .iter()
            .map(|&(u, role)| (u, new_membership(room.id, u, role, room.created_at)))
            .collect();
        s.rooms
            .insert(room.id, StoredRoom::new(room.clone(), members.clone()));
        s.record_created(room.id, members.values());
        Ok(())
    }

    async fn direct_room(
        &self,
        room: &NewRoom,
        a: UserId,
        b: UserId,
    ) -> Result<(RoomId, bool), StoreError> {
        let mut s = self.lock();
        let pair = direct_pair(a, b);
        if let Some(id) = s.direct_pairs.get(&pair) {
            return Ok((*id, false));
        }
        if !s.users.contains_key(&a) || !s.users.contains_key(&b) {
            return Err(StoreError::NotFound);
        }
        let members: HashMap<UserId, Membership> = [a, b]
            .into_iter()
            .map(|u| (u, new_membership(room.id, u, Role::Member, room.created_at)))
            .collect();
        let spec = NewRoom {
            kind: RoomKind::Direct,
            ..room.clone()
        };
        s.rooms
            .insert(room.id, StoredRoom::new(spec, members.clone()));
        s.direct_pairs.insert(pair, room.id);
        s.record_created(room.id, members.values());
        Ok((room.id, true))
    }

    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        let s = self.lock();
        Ok(s.rooms.get(&id).map(|r| s.room_view(r)))
    }

    async fn update_room(
        &self,
        room: RoomId,
        patch: &RoomPatch,
    ) -> Result<Option<Room>, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.rooms.get_mut(&room) else {
            return Ok(None);
        };
        if let Some(name) = &patch.name {
            r.room.name = name.as_str().to_owned();
        }
        if let Some(topic) = &patch.topic {
            r.room.topic = topic.as_ref().map(|t| t.as_str().to_owned());
        }
        if let Some(visibility) = patch.visibility {
            r.room.visibility = visibility;
        }
        s.record_room(EventType::RoomUpdated, room);
        Ok(s.rooms.get(&room).map(|r| s.room_view(r)))
    }

    async fn public_rooms(
        &self,
        text: &str,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Room>, StoreError> {
        let text = text.to_lowercase();
        let s = self.lock();
        let mut found: Vec<&StoredRoom> = s
            .rooms
            .values()
            .filter(|r| r.room.kind == RoomKind::Group && r.room.visibility == Visibility::Public)
            .filter(|r| r.room.name.to_lowercase().contains(&text))
            .collect();
        // Most members first, then id descending, like the cursor's order.
        let key = |r: &StoredRoom| (r.members.len() as i64, r.room.id.0);
        found.sort_by_key(|r| std::cmp::Reverse(key(r)));
        Ok(found
            .into_iter()
            .filter(|r| after.is_none_or(|a| key(r) < (a.rank, a.id)))
            .take(limit as usize)
            .map(|r| s.room_view(r))
            .collect())
    }

    async fn rooms_of_user(
        &self,
        user: UserId,
        include_archived: bool,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<RoomListItem>, StoreError> {
        let s = self.lock();
        let mut items: Vec<(Cursor, &StoredRoom, &Membership)> = s
            .rooms
            .values()
            .filter_map(|r| r.members.get(&user).map(|m| (r, m)))
            .filter(|(_, m)| include_archived || !m.archived)
            .map(|(r, m)| {
                (
                    Cursor::new(i64::from(m.pinned), activity(r), r.room.id.0),
                    r,
                    m,
                )
            })
            .collect();
        // Descending on every key: pinned first, newest activity first, then id.
        let key = |c: &Cursor| (c.rank, c.at_micros, c.id);
        items.sort_by_key(|item| std::cmp::Reverse(key(&item.0)));
        Ok(items
            .into_iter()
            .filter(|(c, _, _)| after.is_none_or(|a| key(c) < key(&a)))
            .take(limit as usize)
            .map(|(_, r, m)| {
                let counts = unread_in(r, m);
                RoomListItem {
                    room: s.room_view(r),
                    membership: MembershipView {
                        role: m.role,
                        joined_at: m.joined_at,
                        read_seq: m.read_seq,
                        delivered_seq: m.delivered_seq,
                        unread_count: counts.unread_count,
                        mention_count: counts.mention_count,
                        pinned: m.pinned,
                        muted: m.muted,
                        archived: m.archived,
                    },
                }
            })
            .collect())
    }

    async fn room_positions(
        &self,
        user: UserId,
        max: u32,
    ) -> Result<Vec<RoomPosition>, StoreError> {
        let s = self.lock();
        Ok(s.rooms
            .values()
            .filter_map(|r| {
                r.members.get(&user).map(|m| RoomPosition {
                    room_id: r.room.id,
                    last_seq: r.last_seq,
                    rev: r.rev,
                    read_seq: m.read_seq,
                })
            })
            .take(max as usize)
            .collect())
    }

    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let s = self.lock();
        Ok(s.rooms
            .get(&room)
            .and_then(|r| r.members.get(&user))
            .cloned())
    }

    async fn members(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut members: Vec<&Membership> = r.members.values().collect();
        let key = |m: &Membership| (micros(m.joined_at), m.user_id.0);
        members.sort_by_key(|m| key(m));
        Ok(members
            .into_iter()
            .filter(|m| after.is_none_or(|a| key(m) > (a.at_micros, a.id)))
            .take(limit as usize)
            .filter_map(|m| s.member_view(m))
            .collect())
    }

    async fn oldest_member(
        &self,
        room: RoomId,
        role: Role,
        except: UserId,
    ) -> Result<Option<UserId>, StoreError> {
        let s = self.lock();
        Ok(s.rooms.get(&room).and_then(|r| {
            r.members
                .values()
                .filter(|m| m.role == role && m.user_id != except)
                .min_by_key(|m| (micros(m.joined_at), m.user_id.0))
                .map(|m| m.user_id)
        }))
    }

    async fn members_named(
        &self,
        room: RoomId,
        username_keys: &[String],
    ) -> Result<Vec<UserId>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(r.members
            .keys()
            .filter(|u| {
                s.users
                    .get(u)
                    .is_some_and(|su| username_keys.contains(&su.user.username.key()))
            })
            .copied()
            .collect())
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        joined_at: OffsetDateTime,
    ) -> Result<(Member, Seq), StoreError> {
        let mut s = self.lock();
        if !s.users.contains_key(&user) {
            return Err(StoreError::NotFound);
        }
        let r = s.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        if r.members.contains_key(&user) {
            return Err(StoreError::Conflict {
                constraint: constraint::MEMBERSHIP,
            });
        }
        if r.bans.contains_key(&user) {
            return Err(StoreError::Conflict {
                constraint: constraint::BAN,
            });
        }
        let last_seq = r.last_seq;
        let membership = Membership {
            read_seq: last_seq,
            delivered_seq: last_seq,
            ..new_membership(room, user, role, joined_at)
        };
        r.members.insert(user, membership.clone());
        let member = s.member_view(&membership).ok_or(StoreError::NotFound)?;
        s.record_member(EventType::MemberJoined, &membership);
        Ok((member, last_seq))
    }

    async fn remove_member(
        &self,
        room: RoomId,
        user: UserId,
        promote: Option<UserId>,
    ) -> Result<i64, StoreError> {
        let mut s = self.lock();
        let r = s.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let promote_ok = promote.is_none_or(|p| p != user && r.members.contains_key(&p));
        if !r.members.contains_key(&user) || !promote_ok {
            return Err(StoreError::NotFound);
        }
        let left = r.members.remove(&user);
        let promoted = promote.and_then(|p| r.members.get_mut(&p)).map(|m| {
            m.role = Role::Owner;
            m.clone()
        });
        let remaining = r.members.len() as i64;
        if let Some(left) = left {
            s.record_member(EventType::MemberLeft, &left);
        }
        if let Some(promoted) = promoted {
            s.record_member(EventType::MemberUpdated, &promoted);
        }
        Ok(remaining)
    }

    async fn set_roles(&self, room: RoomId, roles: &[(UserId, Role)]) -> Result<(), StoreError> {
        let mut s = self.lock();
        let r = s.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        if roles.iter().any(|(user, _)| !r.members.contains_key(user)) {
            return Err(StoreError::NotFound);
        }
        let mut changed = Vec::new();
        for (user, role) in roles {
            if let Some(m) = r.members.get_mut(user) {
                m.role = *role;
                changed.push(m.clone());
            }
        }
        for m in &changed {
            s.record_member(EventType::MemberUpdated, m);
        }
        Ok(())
    }

    async fn update_settings(
        &self,
        room: RoomId,
        user: UserId,
        settings: &SettingsPatch,
    ) -> Result<Option<Membership>, StoreError> {
        let mut s = self.lock();
        let Some(m) = s
            .rooms
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&user))
        else {
            return Ok(None);
        };
        if let Some(pinned) = settings.pinned {
            m.pinned = pinned;
        }
        if let Some(muted) = settings.muted {
            m.muted = muted;
        }
        if let Some(archived) = settings.archived {
            m.archived = archived;
        }
        Ok(Some(m.clone()))
    }

    async fn delete_room_if_empty(&self, room: RoomId) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if !s.rooms.get(&room).is_some_and(|r| r.members.is_empty()) {
            return Ok(false);
        }
        s.drop_room(room);
        Ok(true)
    }

    async fn delete_room(&self, room: RoomId) -> Result<Option<Vec<UploadId>>, StoreError> {
        Ok(self.lock().drop_room(room))
    }
}

#[async_trait]
impl ModerationStore for MemoryStore {
    async fn block_user(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if !s.users.contains_key(&blocker) || !s.users.contains_key(&blocked) {
            return Err(StoreError::NotFound);
        }
        s.blocks
            .entry(blocker)
            .or_default()
            .entry(blocked)
            .or_insert(at);
        Ok(())
    }

    async fn unblock_user(&self, blocker: UserId, blocked: UserId) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some(theirs) = s.blocks.get_mut(&blocker) {
            theirs.remove(&blocked);
        }
        Ok(())
    }

    async fn blocks(
        &self,
        blocker: UserId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Block>, StoreError> {
        let s = self.lock();
        let mut found: Vec<(i64, UserId)> = s
            .blocks
            .get(&blocker)
            .into_iter()
            .flatten()
            .map(|(user, at)| (micros(*at), *user))
            .filter(|key| after.is_none_or(|c| (key.0, key.1 .0) > (c.at_micros, c.id)))
            .collect();
        found.sort_unstable();
        Ok(found
            .into_iter()
            .filter_map(|(at, user)| {
                Some(Block {
                    user: s.users.get(&user)?.user.clone().public(),
                    blocked_at: crate::domain::from_micros(at),
                })
            })
            .take(limit as usize)
            .collect())
    }

    async fn is_blocked(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        let s = self.lock();
        Ok(s.blocks
            .get(&blocker)
            .is_some_and(|theirs| theirs.contains_key(&blocked)))
    }

    async fn blocked_by_member(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(false);
        };
        Ok(r.members.keys().any(|member| {
            *member != user
                && s.blocks
                    .get(member)
                    .is_some_and(|theirs| theirs.contains_key(&user))
        }))
    }

    async fn ban(
        &self,
        room: RoomId,
        user: UserId,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        let mut s = self.lock();
        if !s.users.contains_key(&user) {
            return Err(StoreError::NotFound);
        }
        let r = s.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        r.bans.entry(user).or_insert((by, at));
        let left = r.members.remove(&user);
        let remaining = r.members.len() as i64;
        Ok(left.map(|m| {
            s.record_member(EventType::MemberLeft, &m);
            remaining
        }))
    }

    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        let mut s = self.lock();
        Ok(s.rooms
            .get_mut(&room)
            .is_some_and(|r| r.bans.remove(&user).is_some()))
    }

    async fn bans(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Ban>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut found: Vec<(i64, UserId, UserId)> = r
            .bans
            .iter()
            .map(|(user, (by, at))| (micros(*at), *user, *by))
            .filter(|key| after.is_none_or(|c| (key.0, key.1 .0) > (c.at_micros, c.id)))
            .collect();
        found.sort_unstable();
        Ok(found
            .into_iter()
            .filter_map(|(at, user, by)| {
                Some(Ban {
                    room_id: room,
                    user: s.users.get(&user)?.user.clone().public(),
                    banned_by: Some(by),
                    banned_at: crate::domain::from_micros(at),
                })
            })
            .take(limit as usize)
            .collect())
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append_message(&self, new: &NewMessage) -> Result<Appended, StoreError> {
        let mut s = self.lock();
        let s = &mut *s;
        let r = s.rooms.get_mut(&new.room_id).ok_or(StoreError::NotFound)?;
        if let Some(client_id) = &new.client_id {
            let key = (new.sender_id, client_id.clone());
            if let Some(original) = r.by_client_id.get(&key).and_then(|seq| r.messages.get(seq)) {
                return Ok(Appended {
                    message: message_view(r, original),
                    created: false,
                });
            }
        }
        let attachment = match new.attachment {
            Some(id) => Some(s.uploads.get(&id).ok_or(StoreError::NotFound)?),
            None => None,
        }
        .map(Attachment::of);
        r.last_seq = r.last_seq.next();
        r.rev = Rev(r.rev.0 + 1);
        r.last_message_at = Some(new.created_at);
        let message = Message {
            id: new.id,
            room_id: new.room_id,
            seq: r.last_seq,
            rev: r.rev,
            sender_id: new.sender_id,
            kind: new.kind,
            body: new.body.as_ref().map(|b| b.as_str().to_owned()),
            attachment,
            reply_to: new.reply_to,
            thread_id: new.thread_id,
            thread: None,
            mentions: new.mentions.clone(),
            client_id: new.client_id.clone(),
            created_at: new.created_at,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
        };
        r.by_id.insert(message.id, message.seq);
        if let Some(upload) = &message.attachment {
            s.attached
                .entry(upload.id)
                .or_default()
                .insert((message.room_id, message.seq));
        }
        if let Some(client_id) = &message.client_id {
            r.by_client_id
                .insert((message.sender_id, client_id.clone()), message.seq);
        }
        if let Some(root) = message.thread_id {
            let summary = r.threads.entry(root).or_insert(ThreadSummary {
                reply_count: 0,
                last_reply_at: None,
            });
            summary.reply_count += 1;
            summary.last_reply_at = summary.last_reply_at.max(Some(message.created_at));
        }
        r.messages.insert(message.seq, message.clone());
        if let Some(m) = r.members.get_mut(&new.sender_id) {
            m.read_seq = m.read_seq.max(message.seq);
            m.delivered_seq = m.delivered_seq.max(message.seq);
        }
        s.outbox
            .record(&Envelope::of_message(EventType::MessageCreated, &message));
        Ok(Appended {
            message,
            created: true,
        })
    }

    async fn message_count(&self, room: RoomId) -> Result<i64, StoreError> {
        let s = self.lock();
        Ok(s.rooms.get(&room).map_or(0, |r| {
            r.messages.values().filter(|m| !m.deleted).count() as i64
        }))
    }

    async fn message(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let s = self.lock();
        Ok(s.rooms.get(&room).and_then(|r| {
            r.by_id
                .get(&id)
                .and_then(|seq| r.messages.get(seq))
                .map(|m| message_view(r, m))
        }))
    }

    async fn history(
        &self,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(HistoryPage {
                messages: Vec::new(),
                has_more: false,
            });
        };
        let limit = limit as usize;
        let (mut picked, has_more): (Vec<&Message>, bool) = match anchor {
            HistoryAnchor::After(seq) => {
                let mut it = r.messages.range(seq.next()..).map(|(_, m)| m);
                let picked: Vec<_> = it.by_ref().take(limit).collect();
                (picked, it.next().is_some())
            }
            HistoryAnchor::Latest | HistoryAnchor::Before(_) => {
                let upper = match anchor {
                    HistoryAnchor::Before(seq) => seq,
                    _ => Seq(i64::MAX),
                };
                let mut it = r.messages.range(..upper).rev().map(|(_, m)| m);
                let mut picked: Vec<_> = it.by_ref().take(limit).collect();
                let more = it.next().is_some();
                picked.reverse();
                (picked, more)
            }
        };
        picked.sort_by_key(|m| m.seq);
        Ok(HistoryPage {
            messages: picked.into_iter().map(|m| message_view(r, m)).collect(),
            has_more,
        })
    }

    async fn changed_since(
        &self,
        room: RoomId,
        through: Seq,
        after_rev: Rev,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut changed: Vec<&Message> = r
            .messages
            .range(..=through)
            .map(|(_, m)| m)
            .filter(|m| m.rev > after_rev)
            .collect();
        changed.sort_by_key(|m| m.rev);
        Ok(changed
            .into_iter()
            .take(limit as usize)
            .map(|m| message_view(r, m))
            .collect())
    }

    async fn thread(
        &self,
        room: RoomId,
        root: MessageId,
        after: Seq,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(HistoryPage {
                messages: Vec::new(),
                has_more: false,
            });
        };
        let mut replies = r
            .messages
            .range(after.next()..)
            .map(|(_, m)| m)
            .filter(|m| m.thread_id == Some(root));
        let messages: Vec<Message> = replies
            .by_ref()
            .take(limit as usize)
            .map(|m| message_view(r, m))
            .collect();
        let has_more = replies.next().is_some();
        Ok(HistoryPage { messages, has_more })
    }

    async fn edit_message(&self, edit: &MessageEdit) -> Result<Option<Message>, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.rooms.get_mut(&edit.room_id) else {
            return Ok(None);
        };
        let Some(m) = r.live_message(edit.id) else {
            return Ok(None);
        };
        m.body = Some(edit.body.as_str().to_owned());
        m.mentions = edit.mentions.clone();
        m.edited_at = Some(edit.edited_at);
        let seq = m.seq;
        r.bump(seq);
        let edited = r.messages.get(&seq).map(|m| message_view(r, m));
        if let Some(message) = &edited {
            s.outbox
                .record(&Envelope::of_message(EventType::MessageUpdated, message));
        }
        Ok(edited)
    }

    async fn delete_message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let mut s = self.lock();
        let s = &mut *s;
        let Some(r) = s.rooms.get_mut(&room) else {
            return Ok(None);
        };
        let Some(m) = r.live_message(id) else {
            return Ok(None);
        };
        m.deleted = true;
        m.body = None;
        if let Some(upload) = m.attachment.take() {
            if let Some(carriers) = s.attached.get_mut(&upload.id) {
                carriers.remove(&(room, m.seq));
            }
        }
        m.mentions.clear();
        let seq = m.seq;
        r.reactions.remove(&seq);
        r.bump(seq);
        let tombstone = r.messages.get(&seq).map(|m| message_view(r, m));
        if let Some(message) = &tombstone {
            s.outbox
                .record(&Envelope::of_message(EventType::MessageDeleted, message));
        }
        Ok(tombstone)
    }

    async fn set_reaction(
        &self,
        edit: &ReactionEdit,
    ) -> Result<Option<ReactionChange>, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.rooms.get_mut(&edit.room_id) else {
            return Ok(None);
        };
        let Some(seq) = r.live_message(edit.message_id).map(|m| m.seq) else {
            return Ok(None);
        };
        let emojis = r.reactions.entry(seq).or_default();
        let at = emojis.iter().position(|(e, _)| *e == edit.emoji);
        let changed = match (edit.add, at) {
            (true, Some(i)) if emojis[i].1.contains(&edit.user_id) => false,
            (true, Some(i)) => {
                emojis[i].1.push(edit.user_id);
                true
            }
            (true, None) => {
                emojis.push((edit.emoji.clone(), vec![edit.user_id]));
                true
            }
            (false, Some(i)) if emojis[i].1.contains(&edit.user_id) => {
                emojis[i].1.retain(|u| *u != edit.user_id);
                if emojis[i].1.is_empty() {
                    emojis.remove(i);
                }
                true
            }
            (false, _) => false,
        };
        if changed {
            r.bump(seq);
        }
        let message = r
            .messages
            .get(&seq)
            .map(|m| message_view(r, m))
            .ok_or(StoreError::NotFound)?;
        if changed {
            s.outbox.record(&Envelope::of_reaction(edit, &message));
        }
        Ok(Some(ReactionChange { message, changed }))
    }

    async fn reactions_by(
        &self,
        room: RoomId,
        user: UserId,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, Emoji)>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(seqs
            .iter()
            .filter_map(|seq| r.reactions.get(seq).map(|emojis| (*seq, emojis)))
            .flat_map(|(seq, emojis)| {
                emojis
                    .iter()
                    .filter(|(_, users)| users.contains(&user))
                    .map(move |(emoji, _)| (seq, emoji.clone()))
            })
            .collect())
    }

    async fn search_messages(
        &self,
        user: UserId,
        query: &SearchQuery,
        room: Option<RoomId>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let s = self.lock();
        let key = |m: &Message| (micros(m.created_at), m.id.0);
        let mut found: Vec<Message> = s
            .rooms
            .values()
            .filter(|r| room.is_none_or(|id| r.room.id == id) && r.members.contains_key(&user))
            .flat_map(|r| {
                r.messages
                    .values()
                    .filter(|m| !m.deleted && query.matches(m.body.as_deref().unwrap_or("")))
                    .filter(|m| after.is_none_or(|c| key(m) < (c.at_micros, c.id)))
                    .map(move |m| message_view(r, m))
            })
            .collect();
        found.sort_by_key(|m| std::cmp::Reverse(key(m)));
        found.truncate(limit as usize);
        Ok(found)
    }
}

#[async_trait]
impl UploadStore for MemoryStore {
    async fn create_upload(&self, upload: &Upload) -> Result<(), StoreError> {
        self.lock().uploads.insert(upload.id, upload.clone());
        Ok(())
    }

    async fn upload(&self, id: UploadId) -> Result<Option<Upload>, StoreError> {
        Ok(self.lock().uploads.get(&id).cloned())
    }

    async fn may_read_upload(&self, id: UploadId, user: UserId) -> Result<bool, StoreError> {
        let s = self.lock();
        let Some(upload) = s.uploads.get(&id) else {
            return Ok(false);
        };
        let in_a_room_with_it = s.attached.get(&id).is_some_and(|carriers| {
            carriers.iter().any(|(room, _)| {
                s.rooms
                    .get(room)
                    .is_some_and(|r| r.members.contains_key(&user))
            })
        });
        Ok(upload.uploader == user || in_a_room_with_it)
    }

    async fn delete_upload(&self, id: UploadId) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let s = &mut *s;
        if s.uploads.remove(&id).is_none() {
            return Ok(false);
        }
        for (room, seq) in s.attached.remove(&id).unwrap_or_default() {
            let message = s
                .rooms
                .get_mut(&room)
                .and_then(|r| r.messages.get_mut(&seq));
            if let Some(m) = message {
                m.attachment = None;
            }
        }
        Ok(true)
    }

    async fn unattached_uploads(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UploadId>, StoreError> {
        let s = self.lock();
        let mut found: Vec<&Upload> = s
            .uploads
            .values()
            .filter(|u| u.created_at < before)
            .filter(|u| s.attached.get(&u.id).is_none_or(HashSet::is_empty))
            .collect();
        found.sort_by_key(|u| (u.created_at, u.id));
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|u| u.id)
            .collect())
    }
}

#[async_trait]
impl TicketStore for MemoryStore {
    async fn create_ticket(
        &self,
        hash: &str,
        grant: TicketGrant,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.tickets.retain(|_, (_, expires)| *expires >= now);
        s.tickets.insert(hash.to_owned(), (grant, expires_at));
        Ok(())
    }

    async fn take_ticket(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TicketGrant>, StoreError> {
        let taken = self.lock().tickets.remove(hash);
        Ok(taken
            .filter(|(_, expires)| *expires >= now)
            .map(|(grant, _)| grant))
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn outbox_batch(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Option<Box<dyn OutboxBatch>>, StoreError> {
        let mut s = self.lock();
        if !s.outbox.busy.insert(channel.to_owned()) {
            return Ok(None);
        }
        let rows: Vec<(u64, PendingEvent)> = s
            .outbox
            .rows
            .iter()
            .filter(|(_, r)| r.channel == channel && r.done_at.is_none())
            .take(limit as usize)
            .map(|(position, r)| (*position, r.event.clone()))
            .collect();
        let (positions, events) = rows.into_iter().unzip();
        Ok(Some(Box::new(MemoryBatch {
            state: self.state.clone(),
            channel: channel.to_owned(),
            positions,
            events,
            finished: false,
        })))
    }

    async fn record_events(&self, events: &[Envelope]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for event in events {
            s.outbox.record(event);
        }
        Ok(())
    }

    async fn prune_outbox(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let done: Vec<u64> = s
            .outbox
            .rows
            .iter()
            .filter(|(_, r)| r.done_at.is_some_and(|at| at < before))
            .take(limit as usize)
            .map(|(position, _)| *position)
            .collect();
        for position in &done {
            s.outbox.rows.remove(position);
        }
        Ok(done.len() as u64)
    }

    async fn outbox_counts(&self, channel: &str) -> Result<OutboxCounts, StoreError> {
        let s = self.lock();
        let mut counts = OutboxCounts::default();
        for row in s.outbox.rows.values().filter(|r| r.channel == channel) {
            match (row.done_at, row.dead) {
                (None, _) => counts.pending += 1,
                (Some(_), true) => counts.dead += 1,
                (Some(_), false) => {}
            }
        }
        Ok(counts)
    }
}

/// A relay's turn on a channel of a [`MemoryStore`]'s outbox.
#[derive(Debug)]
struct MemoryBatch {
    state: Arc<Mutex<State>>,
    channel: String,
    positions: Vec<u64>,
    events: Vec<PendingEvent>,
    finished: bool,
}

impl MemoryBatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl OutboxBatch for MemoryBatch {
    fn events(&self) -> &[PendingEvent] {
        &self.events
    }

    async fn finish(
        mut self: Box<Self>,
        outcome: BatchOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (delivered, failure) = outcome.split(self.positions.len());
        {
            let mut s = self.lock();
            for position in &self.positions[..delivered] {
                if let Some(row) = s.outbox.rows.get_mut(position) {
                    row.done_at = Some(now);
                }
            }
            let failed =
                failure.and_then(|give_up| Some((self.positions.get(delivered)?, give_up)));
            if let Some((position, give_up_after)) = failed {
                if let Some(row) = s.outbox.rows.get_mut(position) {
                    row.event.attempts += 1;
                    if give_up_after.is_some_and(|max| row.event.attempts >= max) {
                        row.done_at = Some(now);
                        row.dead = true;
                    }
                }
            }
        }
        self.finished = true;
        let channel = std::mem::take(&mut self.channel);
        self.lock().outbox.busy.remove(&channel);
        Ok(())
    }
}

impl Drop for MemoryBatch {
    fn drop(&mut self) {
        if !self.finished {
            let channel = std::mem::take(&mut self.channel);
            self.lock().outbox.busy.remove(&channel);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn node_heartbeat(&self, node: NodeId, now: OffsetDateTime) -> Result<(), StoreError> {
        self.lock().nodes.insert(node, now);
        Ok(())
    }

    async fn connection_opened(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut s = self.lock();
        *s.connections.entry((node, user)).or_insert(0) += 1;
        s.presence.entry(user).or_default().last_seen = Some(now);
        Ok(s.live_connections(user, alive_since))
    }

    async fn connection_closed(
        &self,
        node: NodeId,
        user: UserId,
        now: OffsetDateTime,
        alive_since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        let mut s = self.lock();
        if let Some(n) = s.connections.get_mut(&(node, user)) {
            *n -= 1;
            if *n <= 0 {
                s.connections.remove(&(node, user));
            }
        }
        s.presence.entry(user).or_default().last_seen = Some(now);
        Ok(s.live_connections(user, alive_since))
    }

    async fn set_away(&self, user: UserId, away: bool) -> Result<(), StoreError> {
        self.lock().presence.entry(user).or_default().away = away;
        Ok(())
    }

    async fn presence(
        &self,
        users: &[UserId],
        alive_since: OffsetDateTime,
    ) -> Result<Vec<PresenceRecord>, StoreError> {
        let s = self.lock();
        Ok(users
            .iter()
            .filter(|u| s.users.contains_key(u))
            .map(|&user| {
                let p = s.presence.get(&user);
                PresenceRecord {
                    user_id: user,
                    connections: s.live_connections(user, alive_since),
                    away: p.is_some_and(|p| p.away),
                    last_seen: p.and_then(|p| p.last_seen),
                }
            })
            .collect())
    }

    async fn reap_nodes(&self, alive_since: OffsetDateTime) -> Result<Vec<UserId>, StoreError> {
        let mut s = self.lock();
        let dead: Vec<(NodeId, OffsetDateTime)> = s
            .nodes
            .iter()
            .filter(|(_, beat)| **beat < alive_since)
            .map(|(node, beat)| (*node, *beat))
            .collect();
        let mut users = Vec::new();
        for (node, beat) in dead {
            users.extend(s.drop_node(node, beat));
        }
        users.sort();
        users.dedup();
        Ok(users)
    }

    async fn forget_node(
        &self,
        node: NodeId,
        now: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        Ok(self.lock().drop_node(node, now))
    }
}

#[async_trait]
impl ReceiptStore for MemoryStore {
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
        now: OffsetDateTime,
    ) -> Result<Option<ReceiptChange>, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.rooms.get_mut(&room) else {
            return Ok(None);
        };
        let target = seq.min(r.last_seq);
        let Some(m) = r.members.get_mut(&user) else {
            return Ok(None);
        };
        let read_moved = target > m.read_seq;
        let changed = read_moved || target > m.delivered_seq;
        m.read_seq = m.read_seq.max(target);
        m.delivered_seq = m.delivered_seq.max(target);
        if read_moved {
            r.read_at.insert(user, now);
        }
        let m = r.members.get(&user).ok_or(StoreError::NotFound)?;
        let receipt = receipt_of(r, m);
        if read_moved {
            s.outbox
                .record(&Envelope::of_read(room, user, receipt.read_seq));
        }
        Ok(Some(ReceiptChange { receipt, changed }))
    }

    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: Seq,
    ) -> Result<Option<ReceiptChange>, StoreError> {
        let mut s = self.lock();
        let Some(r) = s.rooms.get_mut(&room) else {
            return Ok(None);
        };
        let target = seq.min(r.last_seq);
        let Some(m) = r.members.get_mut(&user) else {
            return Ok(None);
        };
        let changed = target > m.delivered_seq;
        m.delivered_seq = m.delivered_seq.max(target);
        let m = r.members.get(&user).ok_or(StoreError::NotFound)?;
        Ok(Some(ReceiptChange {
            receipt: receipt_of(r, m),
            changed,
        }))
    }

    async fn receipts(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<Receipt>, StoreError> {
        let s = self.lock();
        let Some(r) = s.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut members: Vec<&Membership> = r
            .members
            .values()
            .filter(|m| after.is_none_or(|a| m.user_id > a))
            .collect();
        members.sort_by_key(|m| m.user_id);
        Ok(members
            .into_iter()
            .take(limit as usize)
            .map(|m| receipt_of(r, m))
            .collect())
    }

    async fn unread(
        &self,
        user: UserId,
        room: Option<RoomId>,
        max: u32,
    ) -> Result<Vec<UnreadCount>, StoreError> {
        let s = self.lock();
        Ok(s.rooms
            .values()
            .filter(|r| room.is_none_or(|id| r.room.id == id))
            .filter_map(|r| r.members.get(&user).map(|m| unread_in(r, m)))
            .take(max as usize)
            .collect())
    }
}
