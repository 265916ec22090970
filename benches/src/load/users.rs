//! Who the load generator acts as. With the server's host-application secret it mints each
//! user's token itself, and the server provisions the user on first use: no password hashing,
//! so thousands of users take seconds. Without it, it registers and logs in every user, which
//! costs the server two argon2 hashes each (about 45 users a second on two cores).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{stream, StreamExt, TryStreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tokio::time::Instant;

use super::client::{Api, Error, User, PASSWORD};

/// Registering and logging in hash a password (argon2) each; the server caps how many it hashes
/// at once, so more requests in parallel would only queue there.
const REGISTER_CONCURRENCY: usize = 8;
/// Provisioning a host user is one small write; a few dozen in flight keep the server busy.
const PROVISION_CONCURRENCY: usize = 32;
/// Setup requests include the argon2 work above, queued behind each other: be patient.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Minted tokens outlive any run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The server refuses shorter host secrets (chat-core's `MIN_SECRET_BYTES`).
const MIN_SECRET_BYTES: usize = 32;

/// Mints HS256 tokens as the host application the server trusts (`CHAT_HOST_JWT_SECRET`,
/// `CHAT_HOST_JWT_ISSUER`, and `CHAT_HOST_JWT_AUDIENCE` when the server has one).
#[derive(Clone)]
pub struct HostIssuer {
    key: EncodingKey,
    issuer: String,
    audience: Option<String>,
}

impl std::fmt::Debug for HostIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("HostIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims the server's host-token check requires (`sub`, `iss`, `iat`, `exp`, and `aud`
/// when it has an audience), and the one that names the provisioned user.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    iat: u64,
    exp: u64,
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

impl HostIssuer {
    /// An issuer with the server's secret (its UTF-8 bytes, at least 32), issuer and audience.
    pub fn new(secret: &str, issuer: &str, audience: Option<&str>) -> Result<Self, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(
                format!("the host secret must be at least {MIN_SECRET_BYTES} bytes").into(),
            );
        }
        if issuer.is_empty() {
            return Err("the host issuer must not be empty".into());
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            issuer: issuer.to_owned(),
            audience: audience.map(str::to_owned),
        })
    }

    /// A token for the host's user `name` (its subject and preferred username).
    pub fn token(&self, name: &str) -> Result<String, Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: name,
            iss: &self.issuer,
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
            preferred_username: name,
            aud: self.audience.as_deref(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.key,
        )?)
    }
}

/// Signs in a user for each of `names` (valid usernames, new on the server) at `base`: with
/// `host`, by minting their tokens and provisioning them with `GET /v1/users/me`; otherwise by
/// registering and logging them in. The users in the order of `names`.
pub async fn sign_in_all(
    base: &str,
    names: &[String],
    host: Option<&HostIssuer>,
) -> Result<Vec<User>, Error> {
    let started = Instant::now();
    let users: Vec<User> = match host {
        Some(host) => {
            let api = Api::new(base, PROVISION_CONCURRENCY, SETUP_TIMEOUT)?;
            stream::iter(names)
                .map(|name| {
                    let api = &api;
                    async move {
                        let token = host.token(name)?;
                        let id = api.me(&token).await?;
                        Ok::<_, Error>(User { id, token })
                    }
                })
                .buffered(PROVISION_CONCURRENCY)
                .try_collect()
                .await?
        }
        None => {
            if names.len() > 100 {
                eprintln!(
                    "registering {} users (two password hashes each on the server; \
                     --host-secret and --host-issuer avoid them)",
                    names.len()
                );
            }
            let api = Api::new(base, REGISTER_CONCURRENCY, SETUP_TIMEOUT)?;
            stream::iter(names)
                .map(|name| api.register_and_login(name, PASSWORD))
                .buffered(REGISTER_CONCURRENCY)
                .try_collect()
                .await?
        }
    };
    eprintln!(
        "signed in {} users ({}) in {:.1?}",
        users.len(),
        if host.is_some() {
            "host tokens"
        } else {
            "registered"
        },
        started.elapsed()
    );
    Ok(users)
}
