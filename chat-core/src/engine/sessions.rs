//! Sign-in sessions after login: refresh with rotation (a spent token presented again signs the
//! whole session out), sign-out, password changes, and the check that an access token's session
//! is still live.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use serde::Deserialize;
use time::Duration;

use super::accounts::LoginKey;
use super::{ChatEngine, Inner, LoginResult};
use crate::auth::{new_opaque_token, opaque_token_hash, Identity};
use crate::domain::{Password, SessionId, UserId, Username};
use crate::error::{ChatError, FieldCheck, FieldErrors, StoreError};
use crate::ports::{Hint, HintKind, Rotation};

/// A password change.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password in force, as proof that the caller is the account's owner.
    pub current_password: String,
    /// The new one: 8-1024 characters.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::Password))]
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords never reach a log.
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

/// The most sessions remembered as live. Past it the memory is emptied, which costs one store
/// read per session afterwards, never a wrong answer.
const MAX_REMEMBERED: usize = 100_000;

/// Sessions found live in the store, trusted for a short time so that not every request reads
/// the store. Revocations made on this node forget their session at once, and those of other
/// nodes arrive as bus hints; the time limit bounds how long a lost hint can be missed.
#[derive(Debug)]
pub(super) struct LiveSessions {
    trust: StdDuration,
    seen: Mutex<HashMap<SessionId, Instant>>,
}

impl LiveSessions {
    pub(super) fn new(trust: StdDuration) -> LiveSessions {
        LiveSessions {
            trust,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Instant>> {
        // Each critical section is one map operation: a poisoned lock still holds a usable map.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_live(&self, id: SessionId) -> bool {
        self.seen()
            .get(&id)
            .is_some_and(|at| at.elapsed() < self.trust)
    }

    fn remember(&self, id: SessionId) {
        if self.trust.is_zero() {
            return;
        }
        let mut seen = self.seen();
        if seen.len() >= MAX_REMEMBERED {
            let trust = self.trust;
            seen.retain(|_, at| at.elapsed() < trust);
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(id, Instant::now());
    }

    pub(super) fn forget(&self, id: SessionId) {
        self.seen().remove(&id);
    }

    /// Hints may have been lost: ask the store again about every session.
    pub(super) fn forget_all(&self) {
        self.seen().clear();
    }
}

impl ChatEngine {
    /// Trades a refresh token for new tokens; each refresh token works once. A token that was
    /// already traded in means two parties hold the session: it is signed out everywhere
    /// (access tokens, refresh token, live connections) and the caller gets `Unauthorized`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<LoginResult, ChatError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let next = new_opaque_token();
        let rotation = inner
            .store()
            .rotate_refresh(
                &opaque_token_hash(refresh_token),
                &opaque_token_hash(&next),
                now,
                now + Duration::seconds(inner.limits.refresh_ttl_secs),
            )
            .await?;
        let session = match rotation {
            Rotation::Rotated(session) => session,
            Rotation::Reused(id) => {
                tracing::warn!(session = %id, "a spent refresh token came back: signing its session out");
                if inner.store().revoke_session(id, now).await? {
                    inner.signed_out(&[id]).await;
                }
                return Err(ChatError::Unauthorized);
            }
            Rotation::Unknown => return Err(ChatError::Unauthorized),
        };
        let user = inner
            .store()
            .user(session.user_id)
            .await?
            .ok_or(ChatError::Unauthorized)?;
        self.tokens_for(user, session.id, next)
    }

    /// `Unauthorized` when the sign-in session `who` acts in has been signed out since it was
    /// authenticated (for connections that outlive a request). A host application's user has
    /// no session here and always passes.
    pub async fn check_signed_in(&self, who: Identity) -> Result<(), ChatError> {
        match who.session {
            Some(_) => self.inner.check_session(&who).await,
            None => Ok(()),
        }
    }

    /// Signs the caller's session out: its access and refresh tokens stop working on every node
    /// and its live connections close. A host application's token has no session here (the host
    /// signs its users out), so it is `Forbidden`.
    pub async fn logout(&self, who: Identity) -> Result<(), ChatError> {
        let inner = &self.inner;
        let Some(session) = who.session else {
            return Err(ChatError::Forbidden(
                "a host application's token is signed out by the host application",
            ));
        };
        if inner
            .store()
            .revoke_session(session, inner.clock.now())
            .await?
        {
            inner.signed_out(&[session]).await;
        }
        Ok(())
    }

    /// Changes the caller's password after checking the current one, and signs out every other
    /// session of theirs; the caller's own session goes on. A wrong current password is
    /// `Validation` and counts as a failed login of the account.
    pub async fn change_password(
        &self,
        who: Identity,
        input: ChangePassword,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        let mut errors = FieldErrors::default();
        let new_password = Password::parse(&input.new_password).check(&mut errors, "new_password");
        errors.into_result()?;
        let Some(new_password) = new_password else {
            return Err(ChatError::Internal);
        };
        inner
            .confirm_password(who.user, &input.current_password, "current_password")
            .await?;
        let hash = inner.hasher.hash(&new_password).await?;
        let revoked = inner
            .store()
            .change_password(who.user, &hash, who.session, inner.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ChatError::Unauthorized,
                other => other.into(),
            })?;
        inner.signed_out(&revoked).await;
        Ok(())
    }

    /// An operator's reset of `username`'s password, with no current password asked (for a
    /// host's admin tools, never for a user acting on their own account): every session of the
    /// user is signed out, as after a leak. `NotFound` for an unknown username; a user
    /// provisioned from a host's token gets a password they can sign in with.
    pub async fn set_password(&self, username: &str, new_password: &str) -> Result<(), ChatError> {
        let inner = &self.inner;
        let mut errors = FieldErrors::default();
        let new_password = Password::parse(new_password).check(&mut errors, "password");
        errors.into_result()?;
        let Some(new_password) = new_password else {
            return Err(ChatError::Internal);
        };
        // A valid username has no `@`, so the lookup cannot match someone's email instead.
        let username = Username::parse(username).map_err(|_| ChatError::NotFound)?;
        let user = inner
            .store()
            .credentials(username.as_str())
            .await?
            .ok_or(ChatError::NotFound)?
            .user;
        let hash = inner.hasher.hash(&new_password).await?;
        let revoked = inner
            .store()
            .change_password(user.id, &hash, None, inner.clock.now())
            .await?;
        inner.signed_out(&revoked).await;
        Ok(())
    }
}

impl Inner {
    /// Checks that `password` is the user's, as proof that the caller owns the account before
    /// a change that needs it. A wrong one is `Validation` on `field` and counts as a failed
    /// login of the account; past the limit, `RateLimited`.
    pub(super) async fn confirm_password(
        &self,
        user: UserId,
        password: &str,
        field: &'static str,
    ) -> Result<(), ChatError> {
        let me = self
            .store()
            .user(user)
            .await?
            .ok_or(ChatError::Unauthorized)?;
        let key = LoginKey::Account(me.username.key());
        let now = self.clock.now();
        if let Some(limiter) = &self.failed_logins {
            limiter
                .check(&key, now)
                .map_err(|retry_after_secs| ChatError::RateLimited { retry_after_secs })?;
        }
        let credentials = self.store().credentials(me.username.as_str()).await?;
        let hash = credentials
            .as_ref()
            .filter(|c| c.user.id == user)
            .map(|c| c.password_hash.as_str())
            .filter(|hash| !hash.is_empty());
        if !self.hasher.verify(password, hash).await? {
            if let Some(limiter) = &self.failed_logins {
                limiter.spend(&key, now);
            }
            return Err(ChatError::Validation(FieldErrors::one(
                field,
                "is not the account's password",
            )));
        }
        Ok(())
    }

    /// Whether the session an access token names is live: trusted from memory for a short
    /// while, else read from the store. A token of this engine always names one.
    pub(super) async fn check_session(&self, who: &Identity) -> Result<(), ChatError> {
        let Some(id) = who.session else {
            return Err(ChatError::Unauthorized);
        };
        if self.live_sessions.is_live(id) {
            return Ok(());
        }
        match self.store().session(id).await? {
            Some(s) if s.revoked_at.is_none() && s.user_id == who.user => {
                self.live_sessions.remember(id);
                Ok(())
            }
            _ => Err(ChatError::Unauthorized),
        }
    }

    /// After the store revoked `sessions`: forget them here, close their connections on this
    /// node, and tell the other nodes to do the same.
    pub(super) async fn signed_out(&self, sessions: &[SessionId]) {
        if sessions.is_empty() {
            return;
        }
        for &id in sessions {
            self.live_sessions.forget(id);
            self.hub.sign_out(id);
        }
        let hints: Vec<Hint> = sessions
            .iter()
            .map(|&session| Hint {
                origin: self.node,
                room: None,
                kind: HintKind::SignedOut { session },
            })
            .collect();
        if let Err(e) = self.notifier.publish(&hints).await {
            // The revocation is stored: other nodes see it when their memory of the session
            // runs out (`Limits::session_trust_secs`).
            tracing::warn!(error = %e, "publishing sign-outs failed");
        }
    }

    /// Another node signed a session out.
    pub(super) fn apply_sign_out(&self, session: SessionId) {
        self.live_sessions.forget(session);
        self.hub.sign_out(session);
    }
}
