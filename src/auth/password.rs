//! argon2id password hashing. Call from a blocking thread: hashing is
//! deliberately slow.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 12;
/// Longest accepted password, in characters (bounds hashing work).
pub const MAX_LEN: usize = 1024;

/// Hashes a password into a PHC string (argon2id, default parameters).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Checks a password against a stored PHC string. With `None` (unknown
/// account or one that cannot log in) a dummy hash is verified anyway, so the
/// answer takes as long as for a real account and does not reveal which
/// emails exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default());
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_argon2id() {
        let h = super::hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", Some(&h)));
        assert!(!super::verify("wrong horse battery", Some(&h)));
        assert!(!super::verify("dummy password for timing", None));
    }
}
