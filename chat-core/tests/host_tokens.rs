//! Tokens a host application issues: verified with its key, algorithm pinned, `iss`/`aud`
//! checked, users provisioned on first use; and the audience of the engine's own tokens.
//! The keys in `tests/keys/` were made for these tests with `openssl genpkey`.

mod support;

use chat_core::auth::host::{HostKey, HostTokens, HostUser};
use chat_core::auth::{TokenConfigError, TokenIssuer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::*;

const ISSUER: &str = "https://host.example";
const SECRET: &[u8] = b"host-secret-host-secret-host-secret!";
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("keys/ec_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("keys/ec_private.pem");
const EC384_PUBLIC: &[u8] = include_bytes!("keys/ec384_public.pem");
const EC384_PRIVATE: &[u8] = include_bytes!("keys/ec384_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("keys/ed_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("keys/ed_private.pem");

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Valid claims for subject `sub`, to be spoiled by each test.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "iat": now(), "exp": now() + 600})
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn rsa_token(claims: &Value) -> String {
    sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        claims,
    )
}

fn rsa_host(audience: Option<&str>) -> HostTokens {
    HostTokens::new(
        HostKey::PublicKeyPem(RSA_PUBLIC.to_vec()),
        None,
        ISSUER,
        audience,
    )
    .unwrap()
}

#[test]
fn each_kind_of_key_verifies_its_own_tokens() {
    let mut with_names = claims("42");
    with_names["preferred_username"] = json!("carol");
    with_names["name"] = json!("Carol C.");
    let cases = [
        (
            HostKey::PublicKeyPem(RSA_PUBLIC.to_vec()),
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        ),
        (
            HostKey::PublicKeyPem(EC_PUBLIC.to_vec()),
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        ),
        (
            HostKey::PublicKeyPem(EC384_PUBLIC.to_vec()),
            Algorithm::ES384,
            EncodingKey::from_ec_pem(EC384_PRIVATE).unwrap(),
        ),
        (
            HostKey::PublicKeyPem(ED_PUBLIC.to_vec()),
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
        ),
        (
            HostKey::Secret(SECRET.to_vec()),
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET),
        ),
    ];
    for (key, alg, signing) in cases {
        let host = HostTokens::new(key, None, ISSUER, None).unwrap();
        let user = host.verify(&sign(alg, &signing, &with_names)).unwrap();
        assert_eq!(
            user,
            HostUser {
                id: chat_core::domain::ExternalId {
                    issuer: ISSUER.into(),
                    subject: "42".into()
                },
                preferred_username: Some("carol".into()),
                name: Some("Carol C.".into()),
            },
            "{alg:?}"
        );
    }
}

#[test]
fn the_algorithm_is_pinned_to_the_key() {
    let host = rsa_host(None);
    // The classic confusion: HS256 keyed with the public key's bytes.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC),
        &claims("42"),
    );
    assert!(matches!(
        host.verify(&confused),
        Err(ChatError::Unauthorized)
    ));
    // Another key type altogether.
    let ec = sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        &claims("42"),
    );
    assert!(matches!(host.verify(&ec), Err(ChatError::Unauthorized)));
    // The right key with another RSA algorithm than the configured one.
    let rs512 = sign(
        Algorithm::RS512,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        &claims("42"),
    );
    assert!(matches!(host.verify(&rs512), Err(ChatError::Unauthorized)));
    let rs512_host = HostTokens::new(
        HostKey::PublicKeyPem(RSA_PUBLIC.to_vec()),
        Some("RS512"),
        ISSUER,
        None,
    )
    .unwrap();
    assert!(rs512_host.verify(&rs512).is_ok());
}

#[test]
fn issuer_audience_expiry_and_subject_are_checked() {
    let host = rsa_host(Some("chat"));
    let mut good = claims("42");
    good["aud"] = json!("chat");
    assert!(host.verify(&rsa_token(&good)).is_ok());

    let mut spoiled = Vec::new();
    for (field, value) in [
        ("aud", json!("other")),
        ("iss", json!("https://evil.example")),
        ("exp", json!(now() - 60)),
        ("exp", json!((now() + 600).to_string())),
        ("sub", json!("")),
        ("sub", json!("x".repeat(256))),
        ("sub", json!(42)),
    ] {
        let mut c = good.clone();
        c[field] = value;
        spoiled.push((format!("{field} = {}", c[field]), c));
    }
    // Not valid yet.
    let mut early = good.clone();
    early["nbf"] = json!(now() + 600);
    spoiled.push(("nbf in the future".into(), early));
    for missing in ["aud", "exp", "iat", "iss", "sub"] {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(missing);
        spoiled.push((format!("no {missing}"), c));
    }
    for (what, c) in spoiled {
        assert!(
            matches!(host.verify(&rsa_token(&c)), Err(ChatError::Unauthorized)),
            "{what} must be refused"
        );
    }
}

#[test]
fn without_an_audience_a_token_for_another_service_is_refused() {
    let host = rsa_host(None);
    assert!(host.verify(&rsa_token(&claims("42"))).is_ok());
    let mut elsewhere = claims("42");
    elsewhere["aud"] = json!("billing");
    assert!(matches!(
        host.verify(&rsa_token(&elsewhere)),
        Err(ChatError::Unauthorized)
    ));
}

#[test]
fn unusable_settings_are_refused() {
    let refused = |key: HostKey, alg: Option<&str>, issuer: &str| {
        HostTokens::new(key, alg, issuer, None).err()
    };
    assert!(matches!(
        refused(HostKey::Secret(b"short".to_vec()), None, ISSUER),
        Some(TokenConfigError::SecretTooShort)
    ));
    assert!(matches!(
        refused(HostKey::PublicKeyPem(RSA_PRIVATE.to_vec()), None, ISSUER),
        Some(TokenConfigError::BadKey(_))
    ));
    assert!(matches!(
        refused(HostKey::PublicKeyPem(b"not a key".to_vec()), None, ISSUER),
        Some(TokenConfigError::BadKey(_))
    ));
    for alg in ["ES256", "HS256", "none", "rs256"] {
        assert!(
            matches!(
                refused(
                    HostKey::PublicKeyPem(RSA_PUBLIC.to_vec()),
                    Some(alg),
                    ISSUER
                ),
                Some(TokenConfigError::BadKey(_))
            ),
            "{alg} on an RSA key"
        );
    }
    // The curve decides between ES256 and ES384.
    for (key, alg) in [(EC_PUBLIC, "ES384"), (EC384_PUBLIC, "ES256")] {
        assert!(
            matches!(
                refused(HostKey::PublicKeyPem(key.to_vec()), Some(alg), ISSUER),
                Some(TokenConfigError::BadKey(_))
            ),
            "{alg} on the other curve"
        );
    }
    assert!(matches!(
        refused(HostKey::PublicKeyPem(RSA_PUBLIC.to_vec()), None, ""),
        Some(TokenConfigError::NoIssuer)
    ));
}

async fn host_engine() -> (ChatEngine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let engine = ChatEngine::builder(store.clone())
        .limits(limits())
        .host_tokens(rsa_host(None))
        .build()
        .await
        .unwrap();
    (engine, store)
}

#[tokio::test]
async fn a_host_user_is_provisioned_once_and_has_no_password() {
    let (engine, store) = host_engine().await;
    let mut c = claims("42");
    c["preferred_username"] = json!("carol");
    c["name"] = json!("Carol C.");
    let first = engine.authenticate(&rsa_token(&c)).await.unwrap();
    assert_eq!(first.session, None);
    let again = engine
        .authenticate(&rsa_token(&claims("42")))
        .await
        .unwrap();
    assert_eq!(again.user, first.user, "the same subject is the same user");
    let carol = store.user(first.user).await.unwrap().unwrap();
    assert_eq!(carol.username.as_str(), "carol");
    assert_eq!(carol.display_name.as_str(), "Carol C.");
    // No password signs a provisioned user in.
    for password in ["", "password-1", "anything at all"] {
        assert!(matches!(
            engine.login("carol", password, None).await,
            Err(ChatError::Unauthorized)
        ));
    }
}

#[tokio::test]
async fn a_taken_or_invalid_username_gets_a_derived_one() {
    let (engine, store) = host_engine().await;
    engine
        .register(register("dave", "password-1", None))
        .await
        .unwrap();
    let mut taken = claims("7");
    taken["preferred_username"] = json!("Dave");
    let mut invalid = claims("8");
    invalid["preferred_username"] = json!("not a username!");
    for c in [taken, invalid] {
        let id = engine.authenticate(&rsa_token(&c)).await.unwrap();
        let user = store.user(id.user).await.unwrap().unwrap();
        assert!(
            user.username.as_str().starts_with("user-"),
            "{}",
            user.username.as_str()
        );
        assert_eq!(user.display_name.as_str(), user.username.as_str());
    }
    let dave = engine.login("dave", "password-1", None).await.unwrap();
    assert_eq!(
        dave.user.username.as_str(),
        "dave",
        "the registered user is untouched"
    );
}

#[tokio::test]
async fn without_host_tokens_a_host_token_is_refused() {
    let (engine, _) = engine().await;
    assert!(matches!(
        engine.authenticate(&rsa_token(&claims("42"))).await,
        Err(ChatError::Unauthorized)
    ));
}

#[tokio::test]
async fn an_audience_is_issued_and_then_required() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let tokens = TokenIssuer::new(secret, "chat-server", 3600)
        .unwrap()
        .with_audience("chat-api");
    let store = Arc::new(MemoryStore::new());
    let engine = ChatEngine::builder(store.clone())
        .limits(limits())
        .tokens(tokens)
        .build()
        .await
        .unwrap();
    engine
        .register(register("erin", "password-1", None))
        .await
        .unwrap();
    let login = engine.login("erin", "password-1", None).await.unwrap();
    let session = engine
        .authenticate(&login.access_token)
        .await
        .unwrap()
        .session
        .expect("the engine's tokens name their session");

    let mut c = json!({
        "sub": login.user.id.to_string(), "iss": "chat-server", "jti": "j",
        "iat": now(), "exp": now() + 600, "sid": session.to_string(),
    });
    let forged = |c: &Value| sign(Algorithm::HS256, &EncodingKey::from_secret(secret), c);
    assert!(
        matches!(
            engine.authenticate(&forged(&c)).await,
            Err(ChatError::Unauthorized)
        ),
        "a token without aud"
    );
    c["aud"] = json!("another-api");
    assert!(
        matches!(
            engine.authenticate(&forged(&c)).await,
            Err(ChatError::Unauthorized)
        ),
        "a token for another audience"
    );
    c["aud"] = json!("chat-api");
    assert!(engine.authenticate(&forged(&c)).await.is_ok());
    c.as_object_mut().unwrap().remove("sid");
    assert!(
        matches!(
            engine.authenticate(&forged(&c)).await,
            Err(ChatError::Unauthorized)
        ),
        "a token of the engine's that names no session cannot be signed out, so it is refused"
    );
}
