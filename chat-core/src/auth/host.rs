//! Access tokens issued by a host application, for a service that signs its users in itself
//! and lets them chat with the token it already gives them.
//!
//! The host signs with a shared secret (HS256) or a private key whose public half is
//! configured here (RS256, ES256, ES384 or EdDSA by default, after the key's type and curve).
//! The algorithm is pinned to the key: a token naming another one, such as HS256 "signed" with
//! the public key, is refused. `exp`, `iat`, `iss` and `sub` are required, `aud` too when an audience is
//! configured. The user is found by issuer and subject, and provisioned on first use
//! (`preferred_username` and `name` suggest their names).

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{TokenConfigError, MIN_SECRET_BYTES};
use crate::domain::ExternalId;
use crate::error::ChatError;

/// Longest `sub` accepted: subjects are ids, and the store keys users by them.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// How a host application's tokens are verified.
#[derive(Clone)]
pub enum HostKey {
    /// A shared secret (HS256), at least [`MIN_SECRET_BYTES`] long.
    Secret(Vec<u8>),
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`): RSA, EC P-256 or
    /// P-384, or Ed25519.
    PublicKeyPem(Vec<u8>),
}

/// Verifies the tokens of one host application.
#[derive(Clone)]
pub struct HostTokens {
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for HostTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTokens")
            .field("issuer", &self.issuer)
            .field("algorithms", &self.validation.algorithms)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

/// What a verified host token says about its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUser {
    /// Issuer and subject: who the user is for the host.
    pub id: ExternalId,
    /// The `preferred_username` claim, if any: a suggestion for the username here.
    pub preferred_username: Option<String>,
    /// The `name` claim, if any: a suggestion for the display name here.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct HostClaims {
    sub: String,
    iss: String,
    // jsonwebtoken checks the presence of the registered claims it validates, not of `iat`:
    // a field without a default makes a token without it undecodable.
    #[serde(rename = "iat")]
    _issued_at: i64,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl HostTokens {
    /// Tokens from `issuer`, verified with `key`; with `audience`, tokens must name it in
    /// `aud`. `algorithm` (a JWS name: `RS512`, `ES384`, ...) overrides the one the key implies;
    /// it must suit the key.
    pub fn new(
        key: HostKey,
        algorithm: Option<&str>,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<Self, TokenConfigError> {
        if issuer.is_empty() {
            return Err(TokenConfigError::NoIssuer);
        }
        if audience.is_some_and(str::is_empty) {
            return Err(TokenConfigError::BadKey(
                "the audience must not be empty".into(),
            ));
        }
        let (decoding, implied) = match &key {
            HostKey::Secret(secret) if secret.len() < MIN_SECRET_BYTES => {
                return Err(TokenConfigError::SecretTooShort)
            }
            HostKey::Secret(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
            HostKey::PublicKeyPem(pem) => public_key(pem)?,
        };
        let algorithm = match algorithm {
            Some(name) => name
                .parse::<Algorithm>()
                .map_err(|_| TokenConfigError::BadKey(format!("unknown algorithm {name:?}")))?,
            None => implied,
        };
        if algorithm.family() != implied.family() || !curve_fits(&decoding, algorithm) {
            return Err(TokenConfigError::BadKey(format!(
                "{algorithm:?} does not suit this key (it implies {implied:?})"
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        let mut required = vec!["exp", "iat", "iss", "sub"];
        // Without an audience of our own, a token that names one (another service's) is
        // refused (RFC 7519 4.1.3); jsonwebtoken does that when `aud` stays validated.
        if let Some(audience) = audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = super::TokenIssuer::LEEWAY_SECS;
        validation.validate_nbf = true;
        Ok(HostTokens {
            decoding,
            validation,
            issuer: issuer.to_owned(),
        })
    }

    /// The user a token names, if it is valid; `Unauthorized` otherwise.
    pub fn verify(&self, token: &str) -> Result<HostUser, ChatError> {
        let claims = jsonwebtoken::decode::<HostClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| ChatError::Unauthorized)?
            .claims;
        let subject_len = claims.sub.chars().count();
        if subject_len == 0 || subject_len > MAX_SUBJECT_CHARS {
            return Err(ChatError::Unauthorized);
        }
        Ok(HostUser {
            id: ExternalId {
                issuer: claims.iss,
                subject: claims.sub,
            },
            preferred_username: claims.preferred_username,
            name: claims.name,
        })
    }
}

/// The key in a PEM public key and the algorithm its type implies.
fn public_key(pem: &[u8]) -> Result<(DecodingKey, Algorithm), TokenConfigError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("PRIVATE KEY") {
        // Refused outright: a private key in a verifier's settings has leaked to a place that
        // never needs it.
        return Err(TokenConfigError::BadKey(
            "this is a private key; configure the public one".into(),
        ));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        let algorithm = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(P256_POINT_BYTES) => Algorithm::ES256,
            Ok(P384_POINT_BYTES) => Algorithm::ES384,
            _ => {
                return Err(TokenConfigError::BadKey(
                    "an EC key must be on P-256 or P-384".into(),
                ))
            }
        };
        return Ok((key, algorithm));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((key, Algorithm::EdDSA));
    }
    Err(TokenConfigError::BadKey(
        "not a PEM RSA, EC or Ed25519 public key".into(),
    ))
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A secret never reaches a log.
        match self {
            HostKey::Secret(_) => f.write_str("Secret(***)"),
            HostKey::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
        }
    }
}

/// An uncompressed point on P-256 (0x04, x, y): what an ES256 key holds.
const P256_POINT_BYTES: usize = 65;
/// The same on P-384, for ES384.
const P384_POINT_BYTES: usize = 97;

/// Whether an EC key's curve is the one `algorithm` signs on (ES256 on P-256, ES384 on
/// P-384); other keys have no curve to mismatch.
fn curve_fits(key: &DecodingKey, algorithm: Algorithm) -> bool {
    let point = key.try_get_as_bytes().map(<[u8]>::len);
    match algorithm {
        Algorithm::ES256 => point == Ok(P256_POINT_BYTES),
        Algorithm::ES384 => point == Ok(P384_POINT_BYTES),
        _ => true,
    }
}
