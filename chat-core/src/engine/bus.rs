//! The bus listener: turns other nodes' hints into events for this node's sessions. Hints only
//! name changes, so the data is read from the store.

use std::sync::{Arc, Weak};

use futures_util::StreamExt;

use super::Inner;
use crate::domain::{HistoryAnchor, RoomId, Seq};
use crate::error::ChatError;
use crate::events::{changed_event, reaction_event, Event};
use crate::ports::{BusSignal, BusStream, Hint, HintKind};

/// Runs until the bus closes or the engine is dropped.
pub(super) fn spawn(engine: Weak<Inner>, mut bus: BusStream) {
    tokio::spawn(async move {
        while let Some(signal) = bus.next().await {
            let Some(inner) = engine.upgrade() else {
                return;
            };
            let result = match signal {
                BusSignal::Hints(hints) => apply_all(&inner, &hints).await,
                BusSignal::Resync => resync(&inner).await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "applying bus hints failed; sessions recover on sync");
            }
        }
    });
}

async fn apply_all(inner: &Arc<Inner>, hints: &[Hint]) -> Result<(), ChatError> {
    for hint in hints.iter().filter(|h| h.origin != inner.node) {
        apply(inner, hint).await?;
    }
    Ok(())
}

async fn apply(inner: &Arc<Inner>, hint: &Hint) -> Result<(), ChatError> {
    let room = match (&hint.kind, hint.room) {
        (HintKind::Presence { user }, _) => return inner.presence_hint(*user).await,
        (HintKind::SignedOut { session }, _) => {
            inner.apply_sign_out(*session);
            return Ok(());
        }
        (_, Some(room)) => room,
        (kind, None) => {
            tracing::warn!(?kind, "ignoring a room hint without a room");
            return Ok(());
        }
    };
    match hint.kind.clone() {
        HintKind::Presence { .. } | HintKind::SignedOut { .. } => Ok(()),
        HintKind::Message { seq } => publish_message(inner, room, seq).await,
        HintKind::MessageChanged { id } => {
            if let Some(message) = inner.store().message(room, id).await? {
                inner.hub.publish(changed_event(message).into_frame());
            }
            Ok(())
        }
        HintKind::Reaction {
            message,
            user,
            emoji,
            added,
        } => {
            if let Some(message) = inner.store().message(room, message).await? {
                inner
                    .hub
                    .publish(reaction_event(message, user, emoji, added).into_frame());
            }
            Ok(())
        }
        HintKind::MemberJoined { user, baseline } => {
            // Read first, so that the sessions get `member.joined` right after they start
            // following the room. No membership: it already ended, and its hint follows.
            if let Some(m) = inner.store().membership(room, user).await? {
                let member = inner.member_view(m).await?;
                inner.hub.join(user, room, baseline);
                inner.hub.publish(
                    Event::MemberJoined {
                        room_id: room,
                        member,
                    }
                    .into_frame(),
                );
            }
            Ok(())
        }
        HintKind::MemberUpdated { user } => {
            if let Some(m) = inner.store().membership(room, user).await? {
                let member = inner.member_view(m).await?;
                inner.hub.publish(
                    Event::MemberUpdated {
                        room_id: room,
                        member,
                    }
                    .into_frame(),
                );
            }
            Ok(())
        }
        HintKind::RoomUpdated => {
            if let Some(found) = inner.store().room(room).await? {
                inner
                    .hub
                    .publish(Event::RoomUpdated { room: found }.into_frame());
            }
            Ok(())
        }
        HintKind::RoomDeleted => {
            inner
                .hub
                .close_room(Event::RoomDeleted { room_id: room }.into_frame());
            Ok(())
        }
        HintKind::Receipt { user } => {
            if let Some(m) = inner.store().membership(room, user).await? {
                inner.hub.publish(
                    Event::Receipt {
                        room_id: room,
                        user_id: user,
                        delivered_seq: m.delivered_seq,
                        read_seq: m.read_seq,
                    }
                    .into_frame(),
                );
            }
            Ok(())
        }
        HintKind::Typing { user, typing } => {
            inner.hub.publish(
                Event::Typing {
                    room_id: room,
                    user_id: user,
                    typing,
                }
                .into_frame(),
            );
            Ok(())
        }
        HintKind::MemberLeft { user } => {
            inner.hub.publish(
                Event::MemberLeft {
                    room_id: room,
                    user_id: user,
                }
                .into_frame(),
            );
            inner.hub.leave(user, room);
            Ok(())
        }
    }
}

/// Publishes the message at `seq` to local sessions; they fill any gap before it themselves.
async fn publish_message(inner: &Inner, room: RoomId, seq: Seq) -> Result<(), ChatError> {
    let page = inner
        .store()
        .history(room, HistoryAnchor::After(Seq(seq.0 - 1)), 1)
        .await?;
    for message in page.messages {
        let seq = message.seq;
        inner
            .hub
            .publish(Event::MessageCreated { message }.into_frame());
        inner.publish_order.published(room, seq);
    }
    Ok(())
}

/// Hints were lost: publish every followed room's newest message, so each session notices any
/// gap and fills it from the store, and ask the store again whether sessions are signed out.
async fn resync(inner: &Inner) -> Result<(), ChatError> {
    inner.live_sessions.forget_all();
    for room in inner.hub.followed_rooms() {
        if let Some(found) = inner.store().room(room).await? {
            if found.last_seq > Seq::ZERO {
                publish_message(inner, room, found.last_seq).await?;
            }
        }
    }
    Ok(())
}
