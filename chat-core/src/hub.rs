//! The hub routes events to the live sessions of this node: per-room fan-out of one shared
//! frame, each session behind a bounded queue. A session whose queue is full is cut (the
//! connection is closed as a slow consumer), never allowed to grow.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::domain::{RoomId, Seq, SessionId, UserId};
use crate::engine::SessionEnd;
use crate::events::Frame;

/// Why the hub dropped a session, for the session to read once its queue has ended.
#[derive(Debug, Default)]
pub(crate) struct Cut(AtomicU8);

impl Cut {
    const SLOW: u8 = 1;
    const SIGNED_OUT: u8 = 2;

    fn set(&self, why: u8) {
        // The first reason stands: a session signed out while full was still signed out.
        let _ = self
            .0
            .compare_exchange(0, why, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the session was cut, if it was.
    pub(crate) fn reason(&self) -> Option<SessionEnd> {
        match self.0.load(Ordering::SeqCst) {
            Self::SLOW => Some(SessionEnd::SlowConsumer),
            Self::SIGNED_OUT => Some(SessionEnd::SignedOut),
            _ => None,
        }
    }
}

/// What a session's queue carries.
#[derive(Debug)]
pub(crate) enum Item {
    /// An event for the client.
    Frame(Arc<Frame>),
    /// The session now follows the room; live messages start after `baseline`.
    Joined { room: RoomId, baseline: Seq },
    /// The session no longer follows the room.
    Left { room: RoomId },
}

/// The receiving end a session reads from.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) key: u64,
    pub(crate) rx: mpsc::Receiver<Item>,
    pub(crate) cut: Arc<Cut>,
}

#[derive(Debug)]
struct Entry {
    user: UserId,
    /// The sign-in session the connection was opened with (none for a host's token).
    auth: Option<SessionId>,
    tx: mpsc::Sender<Item>,
    cut: Arc<Cut>,
}

#[derive(Debug, Default)]
struct Routes {
    sessions: HashMap<u64, Entry>,
    by_user: HashMap<UserId, HashSet<u64>>,
    by_room: HashMap<RoomId, HashSet<u64>>,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Frames queued to sessions.
    pub deliveries: AtomicU64,
    /// Sessions cut because their queue was full.
    pub slow_consumers: AtomicU64,
}

/// Routes frames to the sessions of this node.
#[derive(Debug)]
pub struct Hub {
    routes: RwLock<Routes>,
    queue_len: usize,
    next_key: AtomicU64,
    stats: HubStats,
}

impl Hub {
    /// A hub whose sessions each queue at most `queue_len` items.
    pub fn new(queue_len: usize) -> Hub {
        Hub {
            routes: RwLock::new(Routes::default()),
            queue_len: queue_len.max(1),
            next_key: AtomicU64::new(1),
            stats: HubStats::default(),
        }
    }

    /// Delivery counters.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// How many sessions are connected to this node.
    pub fn session_count(&self) -> usize {
        self.read().sessions.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        // Route maps are updated in single statements that cannot panic halfway, so a
        // poisoned lock still holds consistent routes.
        self.routes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sessions `user` has on this node.
    pub fn sessions_of(&self, user: UserId) -> usize {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_user
            .get(&user)
            .map_or(0, HashSet::len)
    }

    /// Registers a session of `user`, opened with the sign-in session `auth`, following
    /// `rooms`, unless the user already has `max` sessions here (checked and registered under
    /// one lock, so racing connections cannot both slip in).
    pub(crate) fn register(
        &self,
        user: UserId,
        auth: Option<SessionId>,
        rooms: impl IntoIterator<Item = RoomId>,
        max: usize,
    ) -> Option<Inbox> {
        let mut routes = self.write();
        if routes.by_user.get(&user).map_or(0, HashSet::len) >= max {
            return None;
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue_len);
        let cut = Arc::new(Cut::default());
        routes.sessions.insert(
            key,
            Entry {
                user,
                auth,
                tx,
                cut: cut.clone(),
            },
        );
        routes.by_user.entry(user).or_default().insert(key);
        for room in rooms {
            routes.by_room.entry(room).or_default().insert(key);
        }
        Some(Inbox { key, rx, cut })
    }

    /// Makes one session follow or stop following rooms (used when a session learns of rooms
    /// it was not registered for).
    pub(crate) fn follow(&self, key: u64, room: RoomId) {
        let mut routes = self.write();
        if routes.sessions.contains_key(&key) {
            routes.by_room.entry(room).or_default().insert(key);
        }
    }

    /// Removes a session and its routes.
    pub(crate) fn unregister(&self, key: u64) {
        let mut routes = self.write();
        let Some(entry) = routes.sessions.remove(&key) else {
            return;
        };
        if let Some(keys) = routes.by_user.get_mut(&entry.user) {
            keys.remove(&key);
            if keys.is_empty() {
                routes.by_user.remove(&entry.user);
            }
        }
        routes.by_room.retain(|_, keys| {
            keys.remove(&key);
            !keys.is_empty()
        });
    }

    /// Ends every session opened with the sign-in session `auth`, at once.
    pub(crate) fn sign_out(&self, auth: SessionId) {
        let keys: Vec<u64> = {
            let routes = self.read();
            routes
                .sessions
                .iter()
                .filter(|(_, entry)| entry.auth == Some(auth))
                .map(|(key, entry)| {
                    entry.cut.set(Cut::SIGNED_OUT);
                    *key
                })
                .collect()
        };
        for key in keys {
            self.unregister(key);
        }
    }

    /// Queues the frame to every session following its room.
    pub fn publish(&self, frame: Arc<Frame>) {
        let Some(room) = frame.room else {
            return;
        };
        let full: Vec<u64> = {
            let routes = self.read();
            let Some(keys) = routes.by_room.get(&room) else {
                return;
            };
            keys.iter()
                .filter(|key| {
                    routes
                        .sessions
                        .get(key)
                        .is_some_and(|entry| !self.offer(entry, Item::Frame(frame.clone())))
                })
                .copied()
                .collect()
        };
        for key in full {
            self.unregister(key);
        }
    }

    /// Queues the frame once to every session following any of `rooms` (a session in several
    /// of them gets it once), except the sessions of `except`.
    pub fn publish_to_rooms(&self, rooms: &[RoomId], except: UserId, frame: &Arc<Frame>) {
        let full: Vec<u64> = {
            let routes = self.read();
            let mut keys: Vec<u64> = rooms
                .iter()
                .filter_map(|room| routes.by_room.get(room))
                .flatten()
                .copied()
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter()
                .filter(|key| {
                    routes.sessions.get(key).is_some_and(|entry| {
                        entry.user != except && !self.offer(entry, Item::Frame(frame.clone()))
                    })
                })
                .collect()
        };
        for key in full {
            self.unregister(key);
        }
    }

    /// Makes every session of `user` follow `room`, live after `baseline`.
    pub(crate) fn join(&self, user: UserId, room: RoomId, baseline: Seq) {
        self.route_user(user, room, true, || Item::Joined { room, baseline });
    }

    /// Stops every session of `user` following `room`, at once.
    pub(crate) fn leave(&self, user: UserId, room: RoomId) {
        self.route_user(user, room, false, || Item::Left { room });
    }

    /// Queues the frame to every session following its room, then stops them all following
    /// it, in one critical section so nothing of the room reaches them after the frame (a
    /// deleted room).
    pub(crate) fn close_room(&self, frame: Arc<Frame>) {
        let Some(room) = frame.room else {
            return;
        };
        let full: Vec<u64> = {
            let mut routes = self.write();
            let Some(keys) = routes.by_room.remove(&room) else {
                return;
            };
            keys.into_iter()
                .filter(|key| {
                    routes.sessions.get(key).is_some_and(|entry| {
                        !(self.offer(entry, Item::Frame(frame.clone()))
                            && self.offer(entry, Item::Left { room }))
                    })
                })
                .collect()
        };
        for key in full {
            self.unregister(key);
        }
    }

    /// Adds or removes the routes from `room` to the user's sessions and tells each session,
    /// in one critical section so no frame of the room slips between the two.
    fn route_user(&self, user: UserId, room: RoomId, follow: bool, item: impl Fn() -> Item) {
        let full: Vec<u64> = {
            let mut routes = self.write();
            let keys: Vec<u64> = routes
                .by_user
                .get(&user)
                .map(|k| k.iter().copied().collect())
                .unwrap_or_default();
            if follow {
                routes
                    .by_room
                    .entry(room)
                    .or_default()
                    .extend(keys.iter().copied());
            } else if let Some(followers) = routes.by_room.get_mut(&room) {
                for key in &keys {
                    followers.remove(key);
                }
                if followers.is_empty() {
                    routes.by_room.remove(&room);
                }
            }
            keys.into_iter()
                .filter(|key| {
                    routes
                        .sessions
                        .get(key)
                        .is_some_and(|entry| !self.offer(entry, item()))
                })
                .collect()
        };
        for key in full {
            self.unregister(key);
        }
    }

    /// The rooms some session of this node follows.
    pub fn followed_rooms(&self) -> Vec<RoomId> {
        self.read().by_room.keys().copied().collect()
    }

    /// Queues an item; `false` when the session is gone or full (and is then cut).
    fn offer(&self, entry: &Entry, item: Item) -> bool {
        // Joins and leaves re-route the session; only frames reach its client.
        let frame = matches!(item, Item::Frame(_));
        match entry.tx.try_send(item) {
            Ok(()) => {
                if frame {
                    self.stats.deliveries.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                entry.cut.set(Cut::SLOW);
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn frame(room: RoomId, n: i64) -> Arc<Frame> {
        Arc::new(Frame {
            room: Some(room),
            seq: Some(Seq(n)),
            json: format!("{{\"n\":{n}}}").into(),
        })
    }

    #[test]
    fn a_user_has_at_most_the_sessions_allowed() {
        let hub = Hub::new(4);
        let user = UserId(Uuid::new_v4());
        let first = hub.register(user, None, [], 2).expect("first");
        let _second = hub.register(user, None, [], 2).expect("second");
        assert!(hub.register(user, None, [], 2).is_none());
        assert_eq!(hub.sessions_of(user), 2);
        hub.unregister(first.key);
        assert!(
            hub.register(user, None, [], 2).is_some(),
            "a closed session frees its place"
        );
    }

    #[test]
    fn frames_reach_followers_of_the_room_only() {
        let hub = Hub::new(8);
        let room = RoomId(Uuid::new_v4());
        let other = RoomId(Uuid::new_v4());
        let mut a = hub
            .register(UserId(Uuid::new_v4()), None, [room], usize::MAX)
            .expect("registered");
        let mut b = hub
            .register(UserId(Uuid::new_v4()), None, [other], usize::MAX)
            .expect("registered");
        hub.publish(frame(room, 1));
        assert!(matches!(a.rx.try_recv(), Ok(Item::Frame(f)) if f.seq == Some(Seq(1))));
        assert!(b.rx.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_cuts_the_session_and_spares_the_others() {
        let hub = Hub::new(2);
        let room = RoomId(Uuid::new_v4());
        let slow = hub
            .register(UserId(Uuid::new_v4()), None, [room], usize::MAX)
            .expect("registered");
        let mut fast = hub
            .register(UserId(Uuid::new_v4()), None, [room], usize::MAX)
            .expect("registered");
        for n in 1..=3 {
            hub.publish(frame(room, n));
            assert!(fast.rx.try_recv().is_ok());
        }
        assert_eq!(slow.cut.reason(), Some(SessionEnd::SlowConsumer));
        assert_eq!(hub.session_count(), 1);
        assert_eq!(hub.stats().slow_consumers.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_frame_for_several_rooms_reaches_each_session_once() {
        let hub = Hub::new(8);
        let (r1, r2, r3) = (
            RoomId(Uuid::new_v4()),
            RoomId(Uuid::new_v4()),
            RoomId(Uuid::new_v4()),
        );
        let me = UserId(Uuid::new_v4());
        let mut mine = hub
            .register(me, None, [r1], usize::MAX)
            .expect("registered");
        let mut both = hub
            .register(UserId(Uuid::new_v4()), None, [r1, r2], usize::MAX)
            .expect("registered");
        let mut other = hub
            .register(UserId(Uuid::new_v4()), None, [r3], usize::MAX)
            .expect("registered");
        let f = Arc::new(Frame {
            room: None,
            seq: None,
            json: "{}".into(),
        });
        hub.publish_to_rooms(&[r1, r2], me, &f);
        assert!(mine.rx.try_recv().is_err(), "not to the excepted user");
        assert!(both.rx.try_recv().is_ok());
        assert!(both.rx.try_recv().is_err(), "once, not once per room");
        assert!(other.rx.try_recv().is_err());
    }

    #[test]
    fn join_and_leave_change_routes_at_once() {
        let hub = Hub::new(8);
        let user = UserId(Uuid::new_v4());
        let room = RoomId(Uuid::new_v4());
        let mut inbox = hub
            .register(user, None, [], usize::MAX)
            .expect("registered");
        hub.join(user, room, Seq(4));
        assert!(matches!(
            inbox.rx.try_recv(),
            Ok(Item::Joined {
                baseline: Seq(4),
                ..
            })
        ));
        hub.publish(frame(room, 5));
        assert!(matches!(inbox.rx.try_recv(), Ok(Item::Frame(_))));
        hub.leave(user, room);
        assert!(matches!(inbox.rx.try_recv(), Ok(Item::Left { .. })));
        hub.publish(frame(room, 6));
        assert!(inbox.rx.try_recv().is_err());
        assert_eq!(
            hub.stats().deliveries.load(Ordering::Relaxed),
            1,
            "the frame counts as a delivery, the join and the leave do not"
        );
        assert!(hub.followed_rooms().is_empty());
        hub.unregister(inbox.key);
        assert_eq!(hub.session_count(), 0);
    }

    #[test]
    fn a_closed_room_gets_its_last_frame_then_nothing() {
        let hub = Hub::new(8);
        let room = RoomId(Uuid::new_v4());
        let other = RoomId(Uuid::new_v4());
        let mut inbox = hub
            .register(UserId(Uuid::new_v4()), None, [room, other], 4)
            .unwrap();
        hub.close_room(frame(room, 1));
        assert!(matches!(inbox.rx.try_recv(), Ok(Item::Frame(f)) if f.seq == Some(Seq(1))));
        assert!(matches!(inbox.rx.try_recv(), Ok(Item::Left { room: r }) if r == room));
        hub.publish(frame(room, 2));
        assert!(inbox.rx.try_recv().is_err());
        assert_eq!(hub.followed_rooms(), [other]);
    }
}
