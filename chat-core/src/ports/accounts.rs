//! The account-closing port: an account closes at once, in one transaction; what it left
//! behind (memberships, messages, uploads) is purged after, in steps that can be repeated.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{MessageId, RoomId, SessionId, UploadId, UserId};
use crate::error::StoreError;

/// Closing accounts and finding what they left.
#[async_trait]
pub trait AccountStore: Send + Sync + Debug {
    /// Closes the account at `now`, all together: from then on it is no user to lookups,
    /// sign-in, search, profile changes or new memberships (rooms created with it, members
    /// added, direct rooms opened: `NotFound`); its email is free; every session of it is
    /// revoked; its blocks (both ways) and bans end. Its username stays taken until
    /// [`release_username`](Self::release_username). Returns the sessions revoked; `NotFound`
    /// (and nothing changed) when there is no open account with this id.
    async fn close_account(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError>;
    /// Up to `limit` accounts closed before `closed_before` whose purge is not finished,
    /// oldest closure first.
    async fn unpurged_accounts(
        &self,
        closed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;
    /// Up to `limit` messages `sender` sent that are not deleted, in any room.
    async fn live_messages_by(
        &self,
        sender: UserId,
        limit: u32,
    ) -> Result<Vec<(RoomId, MessageId)>, StoreError>;
    /// Up to `limit` of the uploads `uploader` made.
    async fn uploads_by(&self, uploader: UserId, limit: u32) -> Result<Vec<UploadId>, StoreError>;
    /// Records that the purge of a closed account is finished.
    async fn finish_purge(&self, user: UserId) -> Result<(), StoreError>;
    /// Frees the username whose key (lowercase) is `username_key` when an account closed
    /// before `closed_before` holds it; `true` when it did.
    async fn release_username(
        &self,
        username_key: &str,
        closed_before: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
