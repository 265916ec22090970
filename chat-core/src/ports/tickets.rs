//! The WebSocket ticket port: short-lived, single-use credentials for browsers, which cannot
//! set headers on a WebSocket. Kept in the store so a ticket works once on any node.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{SessionId, UserId};
use crate::error::StoreError;

/// Who a ticket was issued to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketGrant {
    /// The user.
    pub user: UserId,
    /// The sign-in session it was issued from, for tokens this engine issued.
    pub session: Option<SessionId>,
}

/// WebSocket tickets.
#[async_trait]
pub trait TicketStore: Send + Sync + Debug {
    /// Stores a ticket, by the hash of its secret, valid until `expires_at`; also forgets the
    /// tickets that expired before `now`.
    async fn create_ticket(
        &self,
        hash: &str,
        grant: TicketGrant,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Takes the ticket with this hash: its grant if it has not expired at `now`, and never
    /// again (one use, whichever node asks).
    async fn take_ticket(
        &self,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TicketGrant>, StoreError>;
}
