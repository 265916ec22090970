//! The bus between server nodes. It carries hints, not the truth: a node that missed hints
//! re-reads the store.

use std::fmt::Debug;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Emoji, MessageId, RoomId, Seq, SessionId, UserId};
use crate::error::StoreError;

/// Identifies one engine instance (one server node) on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub Uuid);

/// What changed in a room. Kept small: a hint names the change, the store holds the data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum HintKind {
    /// A message with this seq was appended.
    Message {
        /// Its seq.
        seq: Seq,
    },
    /// The user became a member when the room's last seq was `baseline`.
    MemberJoined {
        /// The new member.
        user: UserId,
        /// The room's last seq at joining: live delivery to the member starts after it.
        baseline: Seq,
    },
    /// A message was edited or deleted (read it from the store).
    MessageChanged {
        /// The message.
        id: MessageId,
    },
    /// A user added or took back a reaction (the counts are read from the store).
    Reaction {
        /// The message.
        message: MessageId,
        /// Who reacted.
        user: UserId,
        /// With what.
        emoji: Emoji,
        /// Whether it was added.
        added: bool,
    },
    /// The room's details changed (read it from the store).
    RoomUpdated,
    /// The room was deleted: sessions stop following it.
    RoomDeleted,
    /// The user's role changed (read it from the store).
    MemberUpdated {
        /// The member.
        user: UserId,
    },
    /// The user's membership ended.
    MemberLeft {
        /// The former member.
        user: UserId,
    },
    /// The user's presence may have changed (read it from the store).
    Presence {
        /// The user.
        user: UserId,
    },
    /// A member's read or delivered watermark moved (read it from the store).
    Receipt {
        /// The member.
        user: UserId,
    },
    /// A sign-in session was revoked: its access tokens stop working and its connections close.
    SignedOut {
        /// The session.
        session: SessionId,
    },
    /// The user started or stopped typing (not stored: the hint is the whole event).
    Typing {
        /// Who types.
        user: UserId,
        /// Whether they are typing now.
        typing: bool,
    },
}

/// One change, from one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// The node whose engine made the change.
    pub origin: NodeId,
    /// The room it concerns (none for a user's presence or a sign-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    /// What changed.
    pub kind: HintKind,
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusSignal {
    /// Hints, in the order they were published.
    Hints(Vec<Hint>),
    /// Hints may have been lost (a lagging subscriber, a reconnected listener): re-read the store
    /// for every room this node serves.
    Resync,
}

/// A subscription's stream of signals.
pub type BusStream = Pin<Box<dyn Stream<Item = BusSignal> + Send>>;

/// Carries hints between the nodes that share one store.
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Publishes hints to every subscriber, this node's included.
    async fn publish(&self, hints: &[Hint]) -> Result<(), StoreError>;
    /// Subscribes to every hint published from now on.
    async fn subscribe(&self) -> Result<BusStream, StoreError>;
}
