//! The webhook signature: `X-Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`. The timestamp is signed with the body so a captured request cannot be
//! replayed later than a receiver's tolerance allows.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Error;

/// The header carrying the event's id (consumers dedupe by it).
pub const EVENT_ID_HEADER: &str = "X-Chat-Event-Id";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Chat-Signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
pub(crate) fn signature_header(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Checks a received `X-Chat-Signature` header against the raw request body, for receivers:
/// `Ok` when one of its `v1=` values is the body's signature with `secret` and its `t=` lies
/// within `tolerance` of `now` (either side, for clocks a little ahead).
///
/// Several `v1=` values are accepted so a sender may sign with an old and a new secret while
/// the secret is rotated. The comparison takes the same time whatever the bytes.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// # fn handle(secret: &[u8], header: &str, body: &[u8]) -> Result<(), chat_events::Error> {
/// chat_events::verify_signature(secret, header, body, SystemTime::now(), Duration::from_secs(300))?;
/// // The event is authentic: parse `body` and dedupe by its `id`.
/// # Ok(())
/// # }
/// ```
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), Error> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                let t: u64 = value.parse().map_err(|_| Error::MalformedSignature)?;
                if timestamp.replace(t).is_some() {
                    return Err(Error::MalformedSignature);
                }
            }
            Some(("v1", value)) => signatures.push(decode_hex(value)?),
            // Other schemes a later sender may add are not ours to judge.
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(Error::MalformedSignature);
    };
    if signatures.is_empty() {
        return Err(Error::MalformedSignature);
    }
    let expected = mac(secret, timestamp, body);
    if !signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok())
    {
        return Err(Error::SignatureMismatch);
    }
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(timestamp);
    let skew = match now.duration_since(signed_at) {
        Ok(age) => age,
        Err(ahead) => ahead.duration(),
    };
    if skew > tolerance {
        return Err(Error::StaleSignature);
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, Error> {
    if !hex.len().is_multiple_of(2) {
        return Err(Error::MalformedSignature);
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(Error::MalformedSignature)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{signature_header, verify_signature};
    use crate::Error;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac "$SECRET"
        assert_eq!(
            signature_header(SECRET, 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=f05f2539e3ae1c49aec5f8cfdad75ef6b06480b133973ffbb7ec9e18827af177"
        );
    }

    #[test]
    fn a_fresh_signature_verifies_and_anything_changed_does_not() {
        let body = br#"{"id":"x"}"#;
        let header = signature_header(SECRET, 1_700_000_000, body);
        let now = at(1_700_000_100);
        assert!(verify_signature(SECRET, &header, body, now, TOLERANCE).is_ok());
        assert!(matches!(
            verify_signature(SECRET, &header, br#"{"id":"y"}"#, now, TOLERANCE),
            Err(Error::SignatureMismatch)
        ));
        assert!(matches!(
            verify_signature(b"another secret", &header, body, now, TOLERANCE),
            Err(Error::SignatureMismatch)
        ));
        let moved = header.replace("t=1700000000", "t=1700000090");
        assert!(matches!(
            verify_signature(SECRET, &moved, body, now, TOLERANCE),
            Err(Error::SignatureMismatch)
        ));
    }

    #[test]
    fn stale_and_far_future_timestamps_are_refused() {
        let body = b"{}";
        let header = signature_header(SECRET, 1_700_000_000, body);
        for now in [at(1_700_000_301), at(1_699_999_699)] {
            assert!(matches!(
                verify_signature(SECRET, &header, body, now, TOLERANCE),
                Err(Error::StaleSignature)
            ));
        }
        assert!(verify_signature(SECRET, &header, body, at(1_700_000_300), TOLERANCE).is_ok());
    }

    #[test]
    fn one_matching_v1_among_several_is_enough() {
        let body = b"{}";
        let header = signature_header(SECRET, 1_700_000_000, body);
        let old = signature_header(b"the old secret", 1_700_000_000, body);
        let old_v1 = old.split_once(",v1=").unwrap().1;
        let both = format!("{header},v1={old_v1}");
        assert!(verify_signature(SECRET, &both, body, at(1_700_000_000), TOLERANCE).is_ok());
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=0",
            "t=1,v1=zz",
            "t=1,t=1,v1=00",
        ] {
            assert!(
                matches!(
                    verify_signature(SECRET, header, b"{}", at(1), TOLERANCE),
                    Err(Error::MalformedSignature)
                ),
                "{header:?}"
            );
        }
    }
}
