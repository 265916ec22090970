//! Typing indicators: never stored. A member's "typing" lasts [`TYPING_TTL`] unless renewed;
//! the node that received it announces the end when it expires, so a client that vanished
//! mid-sentence does not leave the room watching it type forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{ChatEngine, Inner};
use crate::domain::{RoomId, UserId};
use crate::error::ChatError;
use crate::events::Event;
use crate::ports::HintKind;

/// How long "typing" lasts without renewal.
pub const TYPING_TTL: Duration = Duration::from_secs(6);

/// A typing change.
#[derive(Clone, Copy, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Typing {
    /// Whether the caller is typing.
    pub typing: bool,
}

/// Who is typing where, on this node, and until when.
#[derive(Debug, Default)]
pub(super) struct TypingState {
    until: Mutex<HashMap<(RoomId, UserId), Instant>>,
}

impl TypingState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(RoomId, UserId), Instant>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a change; `true` when others must be told (a start, or an end of typing).
    fn set(&self, room: RoomId, user: UserId, typing: bool, now: Instant) -> bool {
        let mut until = self.lock();
        if typing {
            until.insert((room, user), now + TYPING_TTL).is_none()
        } else {
            until.remove(&(room, user)).is_some()
        }
    }

    /// Removes and returns the entries that expired by `now`.
    fn expire(&self, now: Instant) -> Vec<(RoomId, UserId)> {
        let mut until = self.lock();
        let expired: Vec<(RoomId, UserId)> = until
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in &expired {
            until.remove(key);
        }
        expired
    }
}

impl ChatEngine {
    /// Starts, renews or stops the caller's typing indicator in a room they are a member of.
    pub async fn typing(
        &self,
        actor: UserId,
        room: RoomId,
        input: Typing,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        inner
            .require_member(actor, room, "join the room to type in it")
            .await?;
        if inner.typing.set(room, actor, input.typing, Instant::now()) {
            inner.announce_typing(room, actor, input.typing).await;
        }
        Ok(())
    }
}

impl Inner {
    async fn announce_typing(&self, room: RoomId, user: UserId, typing: bool) {
        self.announce(
            Event::Typing {
                room_id: room,
                user_id: user,
                typing,
            },
            HintKind::Typing { user, typing },
        )
        .await;
    }
}

/// Announces expired typing indicators, twice a second, until the engine is dropped.
pub(super) fn spawn_expiry(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let Some(inner): Option<Arc<Inner>> = engine.upgrade() else {
                return;
            };
            for (room, user) in inner.typing.expire(Instant::now()) {
                inner.announce_typing(room, user, false).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn starts_and_ends_are_announced_renewals_are_not() {
        let state = TypingState::default();
        let (room, user) = (RoomId(Uuid::new_v4()), UserId(Uuid::new_v4()));
        let t0 = Instant::now();
        assert!(state.set(room, user, true, t0));
        assert!(!state.set(room, user, true, t0 + Duration::from_secs(1)));
        assert!(
            state.expire(t0 + Duration::from_secs(5)).is_empty(),
            "renewed"
        );
        assert_eq!(
            state.expire(t0 + Duration::from_secs(8)),
            vec![(room, user)]
        );
        assert!(!state.set(room, user, false, t0), "already ended");
        assert!(state.set(room, user, true, t0));
        assert!(state.set(room, user, false, t0));
    }
}
