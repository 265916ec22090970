//! Registration, sign-in, refresh and profiles.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};
use time::Duration;

use super::ChatEngine;
use sha2::{Digest, Sha256};

use crate::auth::host::HostUser;
use crate::auth::{hex, new_opaque_token, opaque_token_hash, Identity};
use crate::domain::{
    DisplayName, Email, NameCursor, PageSize, Password, SessionId, User, UserId, UserPatch,
    Username,
};
use crate::error::{ChatError, FieldCheck, FieldErrors, StoreError};
use crate::ports::{constraint, AuthSession, TicketGrant};

/// A registration.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// 3-32 characters of `[A-Za-z0-9_.-]`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::Username))]
    pub username: String,
    /// 8-1024 characters.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::Password))]
    pub password: String,
    /// An optional email, unique.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::domain::Email>))]
    pub email: Option<String>,
    /// The name shown to others (default: the username).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::domain::DisplayName>))]
    pub display_name: Option<String>,
}

/// A profile change; absent fields stay, `email: null` removes the email.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// A new display name.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::domain::DisplayName>))]
    pub display_name: Option<String>,
    /// A new email, or `null` (`Some(None)`) to remove it.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::domain::Email>))]
    pub email: Option<Option<String>>,
}

/// Tells "absent" (`None`, by `default`) from "null" (`Some(None)`).
pub(super) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A page of users found by a search.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPage {
    /// The users (without email), by username.
    pub users: Vec<User>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// The longest search text looked at; the rest is ignored, so any `q` is a valid search.
const MAX_QUERY_CHARS: usize = 100;

/// A search text as looked at: trimmed and cut to [`MAX_QUERY_CHARS`]; `None` when it holds a
/// control character, which no name does (so it finds nothing, and never reaches a store that
/// cannot hold one, as PostgreSQL cannot hold NUL).
pub(super) fn search_text(q: &str) -> Option<String> {
    let text: String = q.trim().chars().take(MAX_QUERY_CHARS).collect();
    (!text.chars().any(char::is_control)).then_some(text)
}

/// What a successful sign-in returns.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResult {
    /// The JWT to send as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The single-use token that gets the next access token.
    pub refresh_token: String,
    /// The signed-in user (with email).
    pub user: User,
}

/// How long a WebSocket ticket works, in seconds.
pub const WS_TICKET_SECS: i64 = 30;

/// A single-use credential for opening a WebSocket without headers (browsers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WsTicket {
    /// The ticket, for `GET /v1/ws?ticket=`.
    pub ticket: String,
    /// Seconds it works for.
    pub expires_in: i64,
}

/// What failed logins are counted by: the account named, and the client's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum LoginKey {
    Account(String),
    Address(IpAddr),
}

impl ChatEngine {
    /// Issues a WebSocket ticket for the caller: it works once, on any node, for
    /// [`WS_TICKET_SECS`]. Only its hash is stored.
    pub async fn ws_ticket(&self, who: Identity) -> Result<WsTicket, ChatError> {
        let inner = &self.inner;
        let ticket = new_opaque_token();
        let now = inner.clock.now();
        let grant = TicketGrant {
            user: who.user,
            session: who.session,
        };
        let expires_at = now + Duration::seconds(WS_TICKET_SECS);
        inner
            .store()
            .create_ticket(&opaque_token_hash(&ticket), grant, expires_at, now)
            .await?;
        Ok(WsTicket {
            ticket,
            expires_in: WS_TICKET_SECS,
        })
    }

    /// Who a WebSocket ticket was issued to, taking it (it never works again); `Unauthorized`
    /// for an unknown, used or expired ticket.
    pub async fn redeem_ws_ticket(&self, ticket: &str) -> Result<Identity, ChatError> {
        let inner = &self.inner;
        // Our tickets are 64 hex digits; anything much longer is not one and costs no lookup.
        if ticket.len() > 128 {
            return Err(ChatError::Unauthorized);
        }
        let grant = inner
            .store()
            .take_ticket(&opaque_token_hash(ticket), inner.clock.now())
            .await?
            .ok_or(ChatError::Unauthorized)?;
        let identity = Identity {
            user: grant.user,
            session: grant.session,
        };
        // A ticket outlives nothing: its session may have been signed out since.
        if identity.session.is_some() {
            inner.check_session(&identity).await?;
        }
        Ok(identity)
    }

    /// Registers a user; `Conflict` when the username or email is taken.
    pub async fn register(&self, input: Register) -> Result<User, ChatError> {
        let mut errors = FieldErrors::default();
        let username = Username::parse(&input.username).check(&mut errors, "username");
        let password = Password::parse(&input.password).check(&mut errors, "password");
        let email = input
            .email
            .as_deref()
            .map(|e| Email::parse(e).check(&mut errors, "email"));
        let display_name = input
            .display_name
            .as_deref()
            .map(|d| DisplayName::parse(d).check(&mut errors, "display_name"));
        errors.into_result()?;
        let (Some(username), Some(password)) = (username, password) else {
            return Err(ChatError::Internal);
        };
        let inner = &self.inner;
        let user = User {
            id: UserId(inner.ids.new_id()),
            display_name: display_name.flatten().unwrap_or_else(|| (&username).into()),
            username,
            email: email.flatten(),
            created_at: inner.clock.now(),
        };
        let hash = inner.hasher.hash(&password).await?;
        let created = match inner.store().create_user(&user, &hash).await {
            // A deleted account's username is free again once its quarantine is over.
            Err(StoreError::Conflict { constraint: c })
                if c == constraint::USERNAME
                    && inner.release_quarantined(&user.username).await? =>
            {
                inner.store().create_user(&user, &hash).await
            }
            other => other,
        };
        created.map_err(|e| match e {
            StoreError::Conflict { constraint: c } if c == constraint::EMAIL => {
                ChatError::Conflict("email is taken")
            }
            StoreError::Conflict { .. } => ChatError::Conflict("username is taken"),
            other => other.into(),
        })?;
        Ok(user)
    }

    /// Signs in by username or email; a wrong login and a wrong password fail alike. Failed
    /// attempts count against the account and the client's address (when the host knows it);
    /// past the limit, every attempt is `RateLimited` until the bucket refills.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<LoginResult, ChatError> {
        let inner = &self.inner;
        let keys = [
            Some(LoginKey::Account(login.trim().to_lowercase())),
            client.map(LoginKey::Address),
        ];
        let now = inner.clock.now();
        if let Some(limiter) = &inner.failed_logins {
            for key in keys.iter().flatten() {
                limiter
                    .check(key, now)
                    .map_err(|retry_after_secs| ChatError::RateLimited { retry_after_secs })?;
            }
        }
        // Over-long inputs cannot match and must not cost a hash of megabytes; a login with a
        // control character names no username or email.
        let login = login.trim();
        let credentials = if login.chars().count() > Email::MAX_CHARS
            || login.chars().any(char::is_control)
            || password.chars().count() > Password::MAX_CHARS
        {
            None
        } else {
            inner.store().credentials(login).await?
        };
        // A user provisioned from a host's token has no password: they fail like a stranger.
        let hash = credentials
            .as_ref()
            .map(|c| c.password_hash.as_str())
            .filter(|hash| !hash.is_empty());
        let ok = inner.hasher.verify(password, hash).await?;
        let Some(credentials) = credentials.filter(|_| ok) else {
            if let Some(limiter) = &inner.failed_logins {
                for key in keys.iter().flatten() {
                    limiter.spend(key, now);
                }
            }
            return Err(ChatError::Unauthorized);
        };
        let refresh_token = new_opaque_token();
        let session = AuthSession {
            id: SessionId(inner.ids.new_id()),
            user_id: credentials.user.id,
            refresh_hash: opaque_token_hash(&refresh_token),
            created_at: now,
            expires_at: now + Duration::seconds(inner.limits.refresh_ttl_secs),
            revoked_at: None,
        };
        inner.store().create_session(&session).await?;
        self.tokens_for(credentials.user, session.id, refresh_token)
    }

    pub(super) fn tokens_for(
        &self,
        user: User,
        session: SessionId,
        refresh_token: String,
    ) -> Result<LoginResult, ChatError> {
        let inner = &self.inner;
        let access_token = inner
            .tokens
            .issue(user.id, Some(session), inner.clock.now())?;
        Ok(LoginResult {
            access_token,
            token_type: "bearer",
            expires_in: inner.tokens.ttl_secs(),
            refresh_token,
            user,
        })
    }

    /// Verifies an access token and that its session is live (not signed out). With host
    /// tokens configured, a token this engine did not issue may be the host's: its user is
    /// found, or provisioned on first use.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, ChatError> {
        let identity = match (self.inner.tokens.verify(token), &self.inner.host_tokens) {
            (Ok(identity), _) => identity,
            (Err(_), Some(host)) => return self.host_user(host.verify(token)?).await,
            (Err(e), None) => return Err(e),
        };
        self.inner.check_session(&identity).await?;
        Ok(identity)
    }

    /// The user a host token names, provisioned on first use: the username is the token's
    /// `preferred_username` when valid and free, else one derived from issuer and subject,
    /// else a random one; the display name is `name` when valid, else the username.
    async fn host_user(&self, host: HostUser) -> Result<Identity, ChatError> {
        let inner = &self.inner;
        let identity = |user: User| Identity {
            user: user.id,
            session: None,
        };
        if let Some(user) = inner.store().external_user(&host.id).await? {
            return Ok(identity(user));
        }
        let digest = hex(&Sha256::digest(
            format!("{}\0{}", host.id.issuer, host.id.subject).as_bytes(),
        ));
        let candidates = [
            host.preferred_username.clone(),
            Some(format!("user-{}", &digest[..12])),
            Some(format!(
                "user-{}",
                &inner.ids.new_id().simple().to_string()[..20]
            )),
        ];
        for username in candidates
            .iter()
            .flatten()
            .filter_map(|name| Username::parse(name).ok())
        {
            let display_name = host
                .name
                .as_deref()
                .and_then(|name| DisplayName::parse(name).ok())
                .or_else(|| DisplayName::parse(username.as_str()).ok())
                .ok_or(ChatError::Internal)?;
            let user = User {
                id: UserId(inner.ids.new_id()),
                username,
                display_name,
                email: None,
                created_at: inner.clock.now(),
            };
            match inner.store().provision_external_user(&host.id, &user).await {
                Ok(user) => return Ok(identity(user)),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!("no free username for a host application's user");
        Err(ChatError::Conflict("no username is free for this account"))
    }

    /// The caller's own account, with email.
    pub async fn me(&self, actor: UserId) -> Result<User, ChatError> {
        self.inner
            .store()
            .user(actor)
            .await?
            .ok_or(ChatError::Unauthorized)
    }

    /// Changes the caller's display name or email.
    pub async fn update_me(&self, actor: UserId, input: UpdateMe) -> Result<User, ChatError> {
        let mut errors = FieldErrors::default();
        let display_name = input
            .display_name
            .as_deref()
            .map(|d| DisplayName::parse(d).check(&mut errors, "display_name"));
        let email = input.email.as_ref().map(|e| {
            e.as_deref()
                .map(|e| Email::parse(e).check(&mut errors, "email"))
        });
        errors.into_result()?;
        let patch = UserPatch {
            display_name: display_name.flatten(),
            email: email.map(Option::flatten),
        };
        self.inner
            .store()
            .update_user(actor, &patch)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => ChatError::Conflict("email is taken"),
                StoreError::NotFound => ChatError::Unauthorized,
                other => other.into(),
            })
    }

    /// Users whose username or display name starts with `q`, to start a conversation with.
    pub async fn search_users(
        &self,
        _actor: UserId,
        q: &str,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<UserPage, ChatError> {
        // An empty cursor is the first page, as for every list.
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(|c| {
                NameCursor::decode(c)
                    .map(|c| c.0)
                    .ok_or_else(|| ChatError::BadRequest("invalid cursor".into()))
            })
            .transpose()?;
        let Some(text) = search_text(q) else {
            return Ok(UserPage {
                users: Vec::new(),
                next_cursor: None,
            });
        };
        let mut users = self
            .inner
            .store()
            .search_users(&text, after.as_deref(), limit.get() + 1)
            .await?;
        let more = users.len() > limit.get() as usize;
        users.truncate(limit.get() as usize);
        let next_cursor = more
            .then(|| users.last())
            .flatten()
            .and_then(|u| NameCursor(u.username.key()).encode());
        Ok(UserPage {
            users: users.into_iter().map(User::public).collect(),
            next_cursor,
        })
    }

    /// Another user's public profile.
    pub async fn user(&self, _actor: UserId, id: UserId) -> Result<User, ChatError> {
        let user = self
            .inner
            .store()
            .user(id)
            .await?
            .ok_or(ChatError::NotFound)?;
        Ok(user.public())
    }
}
