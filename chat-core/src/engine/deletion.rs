//! Deleting an account: it closes at once (no sign-in, no sessions, no user to anyone), then
//! what it left is purged: its messages become tombstones, its memberships end (owned rooms
//! hand over), its uploads go. A purge that stops half-way is finished by the purger.

use std::sync::Weak;

use serde::Deserialize;
use time::Duration;

use super::{ChatEngine, Inner};
use crate::auth::Identity;
use crate::domain::{UserId, Username};
use crate::error::{ChatError, StoreError};
use crate::events::changed_event;
use crate::ports::HintKind;

/// The confirmation an account deletion needs.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    /// The account's password.
    pub password: String,
}

impl std::fmt::Debug for DeleteAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords never reach a log.
        f.debug_struct("DeleteAccount").finish_non_exhaustive()
    }
}

/// Messages, or uploads, a purge step reads at once.
const PURGE_BATCH: u32 = 200;

/// How often the purger looks for closed accounts whose purge did not finish.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// How long after closing an account the purger may take it over from the request that closed
/// it (which normally finishes in well under a second).
const PURGE_GRACE_SECS: i64 = 600;

impl ChatEngine {
    /// Deletes the caller's account after checking its password: it can no longer sign in,
    /// every session of it is signed out on every node, nobody finds it; its messages become
    /// tombstones, its memberships end with `member.left` (an owner's rooms hand over as when
    /// they leave), its uploads are deleted. Its username is free again after
    /// [`Limits::username_quarantine_secs`](super::Limits::username_quarantine_secs), so
    /// nobody can pass for it at once. A wrong password is `Validation` on `password` and
    /// counts as a failed login; a host application's user is `Forbidden` (the host owns the
    /// account).
    pub async fn delete_account(
        &self,
        who: Identity,
        input: DeleteAccount,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        if who.session.is_none() {
            return Err(ChatError::Forbidden(
                "a host application's account is deleted by the host application",
            ));
        }
        inner
            .confirm_password(who.user, &input.password, "password")
            .await?;
        let revoked = inner
            .store()
            .close_account(who.user, inner.clock.now())
            .await
            .map_err(|e| match e {
                // Deleted by another request meanwhile.
                StoreError::NotFound => ChatError::Unauthorized,
                other => other.into(),
            })?;
        inner.signed_out(&revoked).await;
        // The account is closed whatever happens next. The purge runs in its own task so a
        // caller who hangs up does not cut it short; what a failure leaves, the purger finishes.
        let purging = self.inner.clone();
        let user = who.user;
        match tokio::spawn(async move { purging.purge_account(user).await }).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, %user, "purging a closed account failed"),
            Err(e) => tracing::warn!(error = %e, %user, "purging a closed account stopped"),
        }
        Ok(())
    }

    /// Finishes the purges that stopped half-way (the purger does this every [`PURGE_EVERY`]);
    /// returns how many accounts it purged.
    pub async fn finish_account_purges(&self) -> Result<usize, ChatError> {
        self.inner.finish_purges().await
    }
}

impl Inner {
    /// Frees `username` for a new account when the account holding it was closed longer ago
    /// than the quarantine; `true` when it did.
    pub(super) async fn release_quarantined(&self, username: &Username) -> Result<bool, ChatError> {
        let closed_before =
            self.clock.now() - Duration::seconds(self.limits.username_quarantine_secs);
        Ok(self
            .store()
            .release_username(&username.key(), closed_before)
            .await?)
    }

    /// Purges what a closed account left; every step can run again (or on two nodes at once)
    /// without harm.
    async fn purge_account(&self, user: UserId) -> Result<(), ChatError> {
        self.tombstone_messages_of(user).await?;
        // One pass is enough: a closed account cannot gain memberships.
        let rooms = self
            .store()
            .room_positions(user, self.limits.max_rooms_per_user)
            .await?;
        for position in rooms {
            let Some(membership) = self.store().membership(position.room_id, user).await? else {
                continue;
            };
            match self.end_membership(position.room_id, membership).await {
                // Ended meanwhile by another purge, or the room was deleted.
                Ok(()) | Err(ChatError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            let uploads = self.store().uploads_by(user, PURGE_BATCH).await?;
            for &id in &uploads {
                self.discard_upload(id).await?;
            }
            if uploads.len() < PURGE_BATCH as usize {
                break;
            }
        }
        Ok(self.store().finish_purge(user).await?)
    }

    /// Makes every message of `user` a tombstone, announced to its room like a deletion.
    async fn tombstone_messages_of(&self, user: UserId) -> Result<(), ChatError> {
        loop {
            let batch = self.store().live_messages_by(user, PURGE_BATCH).await?;
            let mut deleted = 0;
            for &(room, id) in &batch {
                if let Some(tombstone) = self.store().delete_message(room, id).await? {
                    self.announce(changed_event(tombstone), HintKind::MessageChanged { id })
                        .await;
                    deleted += 1;
                }
            }
            // A full batch of which nothing could be deleted would come back the same forever.
            if batch.len() < PURGE_BATCH as usize || deleted == 0 {
                return Ok(());
            }
        }
    }

    /// Finishes the purges that stopped half-way: of accounts closed more than
    /// [`PURGE_GRACE_SECS`] ago and still not purged.
    async fn finish_purges(&self) -> Result<usize, ChatError> {
        let closed_before = self.clock.now() - Duration::seconds(PURGE_GRACE_SECS);
        let users = self.store().unpurged_accounts(closed_before, 100).await?;
        for &user in &users {
            self.purge_account(user).await?;
        }
        Ok(users.len())
    }
}

/// Finishes interrupted purges every [`PURGE_EVERY`] until the engine is dropped.
pub(super) fn spawn_purger(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            let Some(inner) = engine.upgrade() else {
                return;
            };
            match inner.finish_purges().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(accounts = n, "finished purging closed accounts"),
                Err(e) => tracing::warn!(error = %e, "purging closed accounts failed"),
            }
        }
    });
}
