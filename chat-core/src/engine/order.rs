//! Publishing each room's new messages to this node's sessions in seq order.
//!
//! Concurrent sends to one room commit together (group commit), then each send's task
//! publishes its own message; the tasks run in whatever order the runtime picks. A session
//! that sees seq 6 before seq 5 takes it for a gap and reads the room from the store, so in a
//! busy room every reordering cost one store read per member's session. Here a message waits,
//! briefly, for the one before it to be published first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::{RoomId, Seq};

/// How long a message waits for the messages before it. Past it, it is published anyway and
/// the sessions fill the gap from the store: its sender may have been cancelled between the
/// commit and the publish, or it came from another node whose hint is still on the way.
const WAIT_FOR_PREDECESSOR: Duration = Duration::from_millis(5);

/// Rooms remembered at most; past it, the rooms nobody waits in are forgotten (their next
/// message is published at once, as if it were the room's first).
const MAX_ROOMS: usize = 10_000;

#[derive(Debug, Default)]
pub(super) struct PublishOrder {
    rooms: Mutex<HashMap<RoomId, Turn>>,
}

#[derive(Debug)]
struct Turn {
    /// The highest seq published on this node.
    published: Seq,
    /// Tasks waiting for their turn in this room.
    waiting: usize,
    wake: Arc<Notify>,
}

impl PublishOrder {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, Turn>> {
        // A panic while holding the lock leaves the map consistent (every update is one
        // assignment), so a poisoned lock is still usable.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `publish` for the message `seq` of `room` once every message before it has been
    /// published on this node, or once it has waited [`WAIT_FOR_PREDECESSOR`].
    pub(super) async fn publish(&self, room: RoomId, seq: Seq, publish: impl FnOnce()) {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_PREDECESSOR;
        loop {
            let wake: Arc<Notify>;
            let mut notified;
            {
                let mut rooms = self.rooms();
                if !rooms.contains_key(&room) && rooms.len() >= MAX_ROOMS {
                    rooms.retain(|_, turn| turn.waiting > 0);
                }
                let turn = rooms.entry(room).or_insert_with(|| Turn {
                    published: Seq(seq.0 - 1),
                    waiting: 0,
                    wake: Arc::new(Notify::new()),
                });
                if turn.published.next() >= seq || tokio::time::Instant::now() >= deadline {
                    publish();
                    turn.published = turn.published.max(seq);
                    turn.wake.notify_waiters();
                    return;
                }
                turn.waiting += 1;
                wake = turn.wake.clone();
                // Registered while the lock is held, so a publish right after it is not missed.
                notified = Box::pin(wake.notified());
                notified.as_mut().enable();
            }
            let _waiting = Waiting { order: self, room };
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// A message published by another path (another node's, read from the store): the ones
    /// after it need not wait for it.
    pub(super) fn published(&self, room: RoomId, seq: Seq) {
        if let Some(turn) = self.rooms().get_mut(&room) {
            turn.published = turn.published.max(seq);
            turn.wake.notify_waiters();
        }
    }
}

/// One task waiting in a room, counted until it stops waiting (even when it is cancelled), so
/// that a room with waiters is never forgotten.
struct Waiting<'a> {
    order: &'a PublishOrder,
    room: RoomId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(turn) = self.order.rooms().get_mut(&self.room) {
            turn.waiting -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::from(uuid::Uuid::from_u128(7))
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_waits_for_the_one_before_it() {
        let order = Arc::new(PublishOrder::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let publish = |seq: i64| {
            let (order, seen) = (order.clone(), seen.clone());
            async move {
                order
                    .publish(room(), Seq(seq), || seen.lock().unwrap().push(seq))
                    .await
            }
        };
        publish(1).await;
        // 3 and 2 committed, 3's task runs first.
        let third = tokio::spawn(publish(3));
        tokio::task::yield_now().await;
        publish(2).await;
        third.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_predecessor_delays_a_message_only_briefly() {
        let order = PublishOrder::default();
        let seen = Mutex::new(Vec::new());
        order
            .publish(room(), Seq(1), || seen.lock().unwrap().push(1))
            .await;
        // Seq 2's sender never publishes (cancelled after its commit).
        order
            .publish(room(), Seq(3), || seen.lock().unwrap().push(3))
            .await;
        assert_eq!(*seen.lock().unwrap(), vec![1, 3]);
        assert_eq!(order.rooms().get(&room()).map(|t| t.waiting), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_from_elsewhere_releases_the_ones_after_it() {
        let order = Arc::new(PublishOrder::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        order.publish(room(), Seq(1), || {}).await;
        let waiting = {
            let (order, seen) = (order.clone(), seen.clone());
            tokio::spawn(async move {
                order
                    .publish(room(), Seq(3), || seen.lock().unwrap().push(3))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(seen.lock().unwrap().is_empty(), "3 waits for 2");
        order.published(room(), Seq(2));
        waiting.await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![3]);
    }
}
