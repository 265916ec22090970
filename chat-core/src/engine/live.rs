//! Live sessions: one per connection. A session follows every room of its user and hands out
//! frames so that, per room, each message seq arrives at most once and in increasing order,
//! whether it comes live or from a `sync` replay. Gaps it can see (a message seq beyond the
//! next expected one) are filled from the store, which is the source of truth.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ChatEngine, Inner};
use crate::auth::Identity;
use crate::domain::{HistoryAnchor, Message, Rev, RoomId, RoomPosition, Seq, UserId};
use crate::error::ChatError;
use crate::events::{changed_event, Event, Frame};
use crate::hub::{Inbox, Item};

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its queue filled up: the client did not keep up and must reconnect and `sync`.
    SlowConsumer,
    /// The sign-in session it was opened with was signed out (logout, a password change, a
    /// stolen refresh token).
    SignedOut,
    /// The engine shut down.
    Closed,
}

/// Where a `sync` starts in one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SyncSince {
    /// New messages after this seq.
    Seq(Seq),
    /// New messages after `seq`, and messages up to it changed after `rev`.
    SeqRev {
        /// The newest seq the client has.
        seq: Seq,
        /// The newest rev the client has.
        rev: Rev,
    },
}

/// How a room stands after a `sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SyncedRoom {
    /// The room's newest seq.
    pub last_seq: Seq,
    /// The room's change counter.
    pub rev: Rev,
    /// `false` when the replay stopped at the cap; read the rest with history `after=`.
    pub complete: bool,
}

/// Per room: live delivery continues after `sent`; seqs in `(baseline, sent]` went out live.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    baseline: Seq,
    sent: Seq,
}

/// A live connection's view of the engine.
#[derive(Debug)]
pub struct Session {
    inner: Arc<Inner>,
    user: UserId,
    inbox: Inbox,
    cursors: HashMap<RoomId, Cursor>,
    ready: VecDeque<Arc<str>>,
    pending: Option<Fill>,
    /// Rooms joined while connected whose catch-up read is still owed. It runs after the
    /// room's next event (the `member.joined` that follows the join), so the client learns of
    /// the membership before it gets the room's messages.
    catch_up: HashSet<RoomId>,
    positions: Vec<RoomPosition>,
    /// Whether presence counts this connection (so dropping it must count it closed).
    counted: bool,
}

/// A gap to fill from the store before live delivery of the room goes on.
#[derive(Clone, Debug)]
struct Fill {
    room: RoomId,
    /// Fill up to (not including) this seq; `None`: up to the newest.
    until: Option<Seq>,
    /// The live frame that revealed the gap, delivered after the fill.
    then: Option<Arc<Frame>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.inner.hub.unregister(self.inbox.key);
        // Counting the connection closed needs the store; it runs after the session is gone.
        // Without a runtime (the process is ending) the node's heartbeat runs out instead.
        if !self.counted {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            let user = self.user;
            runtime.spawn(async move { inner.connection_closed(user).await });
        }
    }
}

/// What a user with all their connections open is told to wait before trying another.
const CONNECTION_RETRY_SECS: u64 = 5;

impl ChatEngine {
    /// Whether the user may open another live session on this node (`RateLimited` when they
    /// have [`Limits::max_connections_per_user`](super::Limits::max_connections_per_user)
    /// already): hosts ask before upgrading a connection, and [`ChatEngine::connect`] enforces
    /// it.
    pub fn may_connect(&self, actor: UserId) -> Result<(), ChatError> {
        let inner = &self.inner;
        if inner.hub.sessions_of(actor) >= inner.limits.max_connections_per_user {
            return Err(ChatError::RateLimited {
                retry_after_secs: CONNECTION_RETRY_SECS,
            });
        }
        Ok(())
    }

    /// Opens a live session for the user, following all of their rooms. Given the caller's
    /// [`Identity`] rather than a bare user, the session ends when that sign-in session is
    /// signed out.
    pub async fn connect(&self, who: impl Into<Identity>) -> Result<Session, ChatError> {
        let who: Identity = who.into();
        let actor = who.user;
        let inner = self.inner.clone();
        let max = inner.limits.max_rooms_per_user;
        // Subscribe first, then read positions again: every message committed before the
        // second read is at or below its `last_seq` (the client syncs for those), and every
        // later one reaches the subscription.
        let first = inner.store().room_positions(actor, max).await?;
        let max_sessions = inner.limits.max_connections_per_user;
        let inbox = inner
            .hub
            .register(
                actor,
                who.session,
                first.iter().map(|p| p.room_id),
                max_sessions,
            )
            .ok_or(ChatError::RateLimited {
                retry_after_secs: CONNECTION_RETRY_SECS,
            })?;
        // From here the session exists: if anything below fails, dropping it undoes the
        // registration (and the connection count, once counted).
        let mut session = Session {
            inner,
            user: actor,
            inbox,
            cursors: HashMap::new(),
            ready: VecDeque::new(),
            pending: None,
            catch_up: HashSet::new(),
            positions: Vec::new(),
            counted: false,
        };
        let positions = session.inner.store().room_positions(actor, max).await?;
        for p in &positions {
            session.inner.hub.follow(session.inbox.key, p.room_id);
        }
        session.cursors = positions
            .iter()
            .map(|p| {
                let cursor = Cursor {
                    baseline: p.last_seq,
                    sent: p.last_seq,
                };
                (p.room_id, cursor)
            })
            .collect();
        session.positions = positions;
        session.inner.connection_opened(actor).await?;
        session.counted = true;
        Ok(session)
    }
}

fn frame_of(event: Event) -> Arc<str> {
    event.into_frame().json.clone()
}

impl Session {
    /// The user this session speaks for.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Where each room stood when the session opened (for the `ready` frame).
    pub fn positions(&self) -> &[RoomPosition] {
        &self.positions
    }

    /// The next frame to send to the client. Cancel-safe: a gap fill interrupted by the caller
    /// is resumed by the next call, and nothing taken from the queue is lost.
    pub async fn next_frame(&mut self) -> Result<Arc<str>, SessionEnd> {
        loop {
            if let Some(end) = self.inbox.cut.reason() {
                return Err(end);
            }
            if let Some(frame) = self.ready.pop_front() {
                return Ok(frame);
            }
            if let Some(fill) = self.pending.clone() {
                // Store reads fail only when storage is down; the client's next `sync` then
                // recovers what this fill could not.
                if let Err(e) = self.fill(&fill).await {
                    tracing::warn!(error = %e, room = %fill.room, "filling a gap failed");
                }
                self.pending = None;
                if let Some(frame) = fill.then {
                    self.push_message(fill.room, &frame);
                }
                continue;
            }
            let Some(item) = self.inbox.rx.recv().await else {
                return Err(self.inbox.cut.reason().unwrap_or(SessionEnd::Closed));
            };
            match item {
                Item::Frame(frame) => match (frame.room, frame.seq) {
                    (Some(room), Some(seq)) => {
                        let Some(cursor) = self.cursors.get(&room).copied() else {
                            continue;
                        };
                        if self.catch_up.remove(&room) {
                            // Everything committed since the join, this message included.
                            self.pending = Some(Fill {
                                room,
                                until: None,
                                then: Some(frame),
                            });
                        } else if seq > cursor.sent.next() {
                            self.pending = Some(Fill {
                                room,
                                until: Some(seq),
                                then: Some(frame),
                            });
                        } else {
                            self.push_message(room, &frame);
                        }
                    }
                    (Some(room), None) if !self.cursors.contains_key(&room) => continue,
                    (Some(room), None) => {
                        self.ready.push_back(frame.json.clone());
                        if self.catch_up.remove(&room) {
                            self.pending = Some(Fill {
                                room,
                                until: None,
                                then: None,
                            });
                        }
                    }
                    _ => self.ready.push_back(frame.json.clone()),
                },
                Item::Joined { room, baseline } => {
                    if self.cursors.contains_key(&room) {
                        continue;
                    }
                    self.cursors.insert(
                        room,
                        Cursor {
                            baseline,
                            sent: baseline,
                        },
                    );
                    // Messages committed after the join but published before this session
                    // followed the room never reach the queue: read them after the
                    // `member.joined` that follows this item.
                    self.catch_up.insert(room);
                }
                Item::Left { room } => {
                    self.cursors.remove(&room);
                    self.catch_up.remove(&room);
                }
            }
        }
    }

    /// Queues a live message frame unless this session already sent its seq.
    fn push_message(&mut self, room: RoomId, frame: &Frame) {
        let Some(seq) = frame.seq else { return };
        if self.cursors.get(&room).is_some_and(|c| seq > c.sent) {
            self.advance(room, seq);
            self.ready.push_back(frame.json.clone());
        }
    }

    fn advance(&mut self, room: RoomId, seq: Seq) {
        if let Some(cursor) = self.cursors.get_mut(&room) {
            cursor.sent = cursor.sent.max(seq);
        }
    }

    /// Queues, as `message.created`, the messages after what this session sent of the room and
    /// before `fill.until`. Starting from the cursor makes a resumed fill repeat nothing.
    async fn fill(&mut self, fill: &Fill) -> Result<(), ChatError> {
        loop {
            let Some(after) = self.cursors.get(&fill.room).map(|c| c.sent) else {
                return Ok(());
            };
            let page = self
                .inner
                .store()
                .history(fill.room, HistoryAnchor::After(after), 100)
                .await?;
            let mut done = !page.has_more || page.messages.is_empty();
            for message in page.messages {
                if fill.until.is_some_and(|u| message.seq >= u) {
                    done = true;
                    break;
                }
                self.advance(fill.room, message.seq);
                self.ready
                    .push_back(frame_of(Event::MessageCreated { message }));
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Replays a room from where the client stands: up to the sync cap of messages, in order,
    /// leaving out those this session already sent live. Returns the frames to send, then the
    /// room's standing for `synced`.
    pub async fn sync(
        &mut self,
        room: RoomId,
        since: SyncSince,
    ) -> Result<(Vec<Arc<str>>, SyncedRoom), ChatError> {
        let inner = self.inner.clone();
        let (found, _) = inner
            .require_member(self.user, room, "not a member")
            .await
            .map_err(|e| match e {
                ChatError::Forbidden(_) => ChatError::NotFound,
                other => other,
            })?;
        if !self.cursors.contains_key(&room) {
            // A room joined on another node before its hint arrived here.
            inner.hub.follow(self.inbox.key, room);
            self.cursors.insert(
                room,
                Cursor {
                    baseline: found.last_seq,
                    sent: found.last_seq,
                },
            );
        }
        let cap = inner.limits.sync_max_messages;
        let (since_seq, changed) = match since {
            SyncSince::Seq(seq) => (seq, Vec::new()),
            SyncSince::SeqRev { seq, rev } => {
                (seq, inner.store().changed_since(room, seq, rev, cap).await?)
            }
        };
        let mut frames: Vec<Arc<str>> = changed.iter().cloned().map(changed_frame).collect();
        let budget = cap.saturating_sub(changed.len() as u32);
        let mut complete = changed.len() < cap as usize;
        if budget > 0 {
            let page = inner
                .store()
                .history(room, HistoryAnchor::After(since_seq), budget)
                .await?;
            complete = complete && !page.has_more;
            let cursor = self.cursors.get(&room).copied();
            for message in page.messages {
                let seq = message.seq;
                if cursor.is_some_and(|c| seq > c.baseline && seq <= c.sent) {
                    continue;
                }
                self.advance(room, seq);
                frames.push(frame_of(Event::MessageCreated { message }));
            }
        } else {
            complete = false;
        }
        let now = inner.store().room(room).await?.ok_or(ChatError::NotFound)?;
        Ok((
            frames,
            SyncedRoom {
                last_seq: now.last_seq,
                rev: now.rev,
                complete,
            },
        ))
    }
}

fn changed_frame(message: Message) -> Arc<str> {
    frame_of(changed_event(message))
}
