//! Stripe webhooks: signature verification and exactly-once application.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`. The signed
//! payload is `"{t}.{raw body}"`, HMAC-SHA256 with the endpoint's secret;
//! any matching `v1` passes (Stripe sends several while secrets roll); `v0`
//! is ignored; the timestamp must be within the tolerance (300 s) of now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a delivery was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    Missing,
    /// No `t=` or no `v1=` in it.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// Outside the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no matching v1 signature")]
    Mismatch,
}

/// Default tolerance, seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// The `v1` signature of `body` at `timestamp` with `secret`, as hex.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a delivery: header, timestamp tolerance, any `v1` matching
/// (compared in constant time).
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_owned()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    for candidate in candidates {
        let Ok(bytes) = hex::decode(&candidate) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return Err(SignatureError::Mismatch);
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_matching_v1_and_rejects_the_rest() {
        let secret = b"whsec_test";
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(secret, 1_700_000_000, body);
        let ok = format!("t=1700000000,v1={},v1={good},v0=deadbeef", "0".repeat(64));
        assert_eq!(verify(secret, Some(&ok), body, 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify(secret, Some(&ok), body, 1_700_000_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(secret, Some(&ok), b"{}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&ok), body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, None, body, 1_700_000_000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(secret, Some("v1=abc"), body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
        let v0_only = format!("t=1700000000,v0={good}");
        assert_eq!(
            verify(secret, Some(&v0_only), body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
    }
}
