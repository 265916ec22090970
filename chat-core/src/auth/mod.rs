//! Passwords (argon2id, hashed off the async runtime under a concurrency cap) and access tokens
//! (JWT, HS256, pinned); [`host`] verifies the tokens of a host application.

pub mod host;

use std::sync::{Arc, Mutex};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Block, Params, Version};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::clock::random_bytes;
use crate::domain::{Password, SessionId, UserId};
use crate::error::ChatError;

/// Hashes and verifies passwords with argon2id at OWASP's parameters (m=19 MiB, t=2, p=1, the
/// crate's defaults). Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so it
/// runs off the async runtime on `max_concurrent` threads of its own, and a burst of logins
/// queues instead of starving every other request. Dedicated threads, not tokio's blocking
/// pool: the allocator keeps freed memory per thread, and hashing on up to 512 pool threads
/// left gigabytes resident after a few hundred sign-ins; a few long-lived threads keep it to a
/// few hashes' worth.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// A real hash of a random password, verified against when the login names nobody, so an
    /// unknown user costs the same as a wrong password.
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes at once, each on a thread of its own.
    /// The threads end when the last clone of the hasher is dropped.
    pub fn new(max_concurrent: usize) -> PasswordHasher {
        let threads = max_concurrent.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // One idle thread waits in `recv` holding the lock; the others wait for it.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password hashing thread failed");
            }
        }
        PasswordHasher {
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
            decoy: Arc::new(OnceCell::new()),
        }
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, ChatError> {
        let secret = password.expose().to_owned();
        self.blocking(move || {
            hash_phc(secret.as_bytes()).ok_or_else(|| {
                tracing::error!("password hashing failed");
                ChatError::Internal
            })
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash (no such user) it does the same work and
    /// answers `false`.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ChatError> {
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.decoy().await?.clone(), false),
        };
        let secret = password.to_owned();
        let matches = self
            .blocking(move || verify_phc(secret.as_bytes(), &hash))
            .await?;
        Ok(real && matches)
    }

    async fn decoy(&self) -> Result<&String, ChatError> {
        self.decoy
            .get_or_try_init(|| async {
                let mut bytes = [0u8; 16];
                random_bytes(&mut bytes);
                let decoy = Password::parse(&hex(&bytes)).map_err(|_| ChatError::Internal)?;
                self.hash(&decoy).await
            })
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ChatError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ChatError::Internal)?;
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| ChatError::Internal)?;
        result.await.map_err(|_| ChatError::Internal)
    }
}

thread_local! {
    /// argon2's working memory (19 MiB at the default parameters), kept by each hashing thread
    /// and reused, so no hash allocates: the allocator would otherwise keep the freed blocks of
    /// every hash around.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's argon2 memory, grown to `blocks` if needed.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        f(&mut memory[..blocks])
    })
}

/// argon2id at OWASP's parameters over a fresh 16-byte salt, as a PHC string.
fn hash_phc(password: &[u8]) -> Option<String> {
    let params = Params::default();
    let argon = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    random_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, &salt, &mut out, memory)
    })
    .ok()?;
    let phc = PasswordHash {
        algorithm: Argon2Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).ok()?,
        salt: Some(Salt::new(&salt).ok()?),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(phc.to_string())
}

/// Whether `password` matches the PHC string, with the parameters stored in it; the final
/// comparison takes constant time.
fn verify_phc(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Argon2Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let computed = with_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
    });
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

/// A unit of hashing work for the hasher's threads.
type Job = Box<dyn FnOnce() + Send>;

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The issuer.
    pub iss: String,
    /// The token's unique id.
    pub jti: String,
    /// The sign-in session it belongs to (absent on tokens issued by a host application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The audience, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Who an access token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: UserId,
    /// The sign-in session, for tokens this engine issued.
    pub session: Option<SessionId>,
}

impl From<UserId> for Identity {
    /// A user acting without a sign-in session of this engine (a host application's user, or
    /// an embedding program acting for its users).
    fn from(user: UserId) -> Identity {
        Identity {
            user,
            session: None,
        }
    }
}

/// The shortest JWT secret accepted: HS256 with fewer than 32 bytes of key is guessable.
pub const MIN_SECRET_BYTES: usize = 32;

/// Issues and verifies HS256 access tokens. The algorithm is pinned (a token naming another is
/// refused), `exp`, `iat`, `iss` and `sub` are required (`aud` too once an audience is set), and
/// the leeway is explicit.
#[derive(Clone)]
pub struct TokenIssuer {
    /// Signs upload links: derived from the secret, so every node that shares the secret
    /// verifies every node's links, and a link's signature is never a valid token's.
    link_key: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: Option<String>,
    ttl_secs: i64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Why a token configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenConfigError {
    /// The secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
    SecretTooShort,
    /// The lifetime is not positive.
    #[error("the token lifetime must be at least one second")]
    BadTtl,
    /// No issuer was named.
    #[error("the token issuer must not be empty")]
    NoIssuer,
    /// The key cannot verify tokens.
    #[error("the token key is unusable: {0}")]
    BadKey(String),
}

impl TokenIssuer {
    /// Seconds of clock skew tolerated on `exp`.
    pub const LEEWAY_SECS: u64 = 5;

    /// An issuer signing with `secret`, naming itself `issuer`, issuing tokens valid `ttl_secs`.
    pub fn new(secret: &[u8], issuer: &str, ttl_secs: i64) -> Result<Self, TokenConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenConfigError::SecretTooShort);
        }
        if ttl_secs < 1 {
            return Err(TokenConfigError::BadTtl);
        }
        if issuer.is_empty() {
            return Err(TokenConfigError::NoIssuer);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        // `aud` stays validated: with no audience configured, a token naming one is refused.
        validation.validate_nbf = true;
        validation.leeway = Self::LEEWAY_SECS;
        validation.validate_exp = true;
        Ok(TokenIssuer {
            link_key: hmac_sha256(secret, b"chat-core upload links").to_vec(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: None,
            ttl_secs,
        })
    }

    /// Issues tokens for `audience` and accepts only tokens that name it in `aud`.
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation
            .set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
        self.audience = Some(audience.to_owned());
        self
    }

    /// How long issued tokens live, in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues an access token for the user's session at `now`.
    pub fn issue(
        &self,
        user: UserId,
        session: Option<SessionId>,
        now: OffsetDateTime,
    ) -> Result<String, ChatError> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            exp: iat + self.ttl_secs,
            iat,
            iss: self.issuer.clone(),
            jti: Uuid::new_v4().to_string(),
            sid: session.map(|s| s.to_string()),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "signing a token failed");
            ChatError::Internal
        })
    }

    /// Verifies a token's signature, algorithm, issuer and expiry; `Unauthorized` otherwise.
    pub fn verify(&self, token: &str) -> Result<Identity, ChatError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ChatError::Unauthorized)?;
        let user = data
            .claims
            .sub
            .parse()
            .map_err(|_| ChatError::Unauthorized)?;
        let session = match data.claims.sid {
            Some(s) => Some(s.parse().map_err(|_| ChatError::Unauthorized)?),
            None => None,
        };
        Ok(Identity { user, session })
    }
}

impl TokenIssuer {
    /// The signature of a link's subject (hex HMAC-SHA256).
    pub fn sign_link(&self, subject: &str) -> String {
        hex(&hmac_sha256(&self.link_key, subject.as_bytes()))
    }

    /// Whether `signature` is the subject's, compared in constant time.
    pub fn verify_link(&self, subject: &str, signature: &str) -> bool {
        let Some(given) = unhex(signature) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.link_key)
            .expect("HMAC takes keys of any length");
        mac.update(subject.as_bytes());
        mac.verify_slice(&given).is_ok()
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// A new opaque token (256 random bits, hex): refresh tokens, WebSocket tickets.
pub fn new_opaque_token() -> String {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes);
    hex(&bytes)
}

/// The SHA-256 of an opaque token, hex: what the store keeps instead of the token.
pub fn opaque_token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SECRET, "chat-server", 3600).unwrap()
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            TokenIssuer::new(b"short", "x", 60),
            Err(TokenConfigError::SecretTooShort)
        ));
    }

    #[test]
    fn tokens_round_trip() {
        let user = UserId(Uuid::new_v4());
        let session = SessionId(Uuid::new_v4());
        let token = issuer()
            .issue(user, Some(session), OffsetDateTime::now_utc())
            .unwrap();
        let id = issuer().verify(&token).unwrap();
        assert_eq!(
            id,
            Identity {
                user,
                session: Some(session)
            }
        );
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_are_refused() {
        let user = UserId(Uuid::new_v4());
        let old = OffsetDateTime::now_utc() - time::Duration::hours(2);
        let expired = issuer().issue(user, None, old).unwrap();
        assert!(issuer().verify(&expired).is_err());
        let other = TokenIssuer::new(SECRET, "someone-else", 3600).unwrap();
        let foreign = other.issue(user, None, OffsetDateTime::now_utc()).unwrap();
        assert!(issuer().verify(&foreign).is_err());
        let good = issuer()
            .issue(user, None, OffsetDateTime::now_utc())
            .unwrap();
        let mut tampered = good.clone();
        tampered.pop();
        assert!(issuer().verify(&tampered).is_err());
        assert!(issuer().verify("not.a.jwt").is_err());
    }

    #[test]
    fn tokens_naming_another_algorithm_are_refused() {
        let user = UserId(Uuid::new_v4());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user.to_string(),
            exp: now + 60,
            iat: now,
            iss: "chat-server".into(),
            jti: "x".into(),
            sid: None,
            aud: None,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(issuer().verify(&hs512).is_err());
    }

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_fail() {
        let hasher = PasswordHasher::new(2);
        let pw = Password::parse("correct horse").unwrap();
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a phc string")).await.unwrap());
        // Hashes made by the argon2 crate's own API (and so by earlier versions of this code)
        // still verify.
        let theirs = {
            use argon2::password_hash::PasswordHasher as _;
            Argon2::default()
                .hash_password(b"older")
                .unwrap()
                .to_string()
        };
        assert!(hasher.verify("older", Some(&theirs)).await.unwrap());
        assert!(!hasher.verify("newer", Some(&theirs)).await.unwrap());
        assert!(hash.contains("$m=19456,t=2,p=1$"), "{hash}");
        assert_eq!(opaque_token_hash("a").len(), 64);
        assert_ne!(new_opaque_token(), new_opaque_token());
    }
}
