//! Access tokens (JWT, HS256, 15 minutes) and opaque refresh tokens.
//!
//! Access tokens follow RFC 8725: the algorithm is pinned to HS256 (a token
//! with `alg: none` or any other algorithm is rejected), and `exp`, `iss`,
//! `aud`, `sub` and our `typ` claim are all required and checked, as is the
//! header's `typ: at+jwt` (RFC 9068), so a token minted for another purpose
//! never passes as an access token.

use crate::config::Secret;
use crate::error::AppError;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// `typ` claim of an access token.
pub const ACCESS_TYP: &str = "access";
/// JOSE header `typ` of an access token.
pub const ACCESS_HEADER_TYP: &str = "at+jwt";
/// Prefix of refresh tokens, so leaked ones are recognisable.
pub const REFRESH_PREFIX: &str = "ghr_";

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a string.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Token purpose: always [`ACCESS_TYP`].
    pub typ: String,
    /// Unique id.
    pub jti: String,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// The user.
    pub user_id: i64,
}

/// Issues and verifies tokens with one key.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
    /// Key of the web app's CSRF tokens, derived from the signing key (so
    /// one secret serves both, and neither reveals the other).
    csrf_key: [u8; 32],
}

impl TokenService {
    /// A service signing with `key`.
    pub fn new(
        key: &Secret,
        issuer: &str,
        audience: &str,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        TokenService {
            encoding: EncodingKey::from_secret(&key.0),
            decoding: DecodingKey::from_secret(&key.0),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl,
            refresh_ttl,
            csrf_key: Sha256::new()
                .chain_update(b"guildhall web csrf key\0")
                .chain_update(&key.0)
                .finalize()
                .into(),
        }
    }

    /// The key the web app signs its CSRF tokens with.
    pub fn csrf_key(&self) -> &[u8] {
        &self.csrf_key
    }

    /// Claims for a new access token for `user_id`, valid from now.
    pub fn access_claims(&self, user_id: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + i64::try_from(self.access_ttl.as_secs()).unwrap_or(900),
            iat: now,
            typ: ACCESS_TYP.to_owned(),
            jti: random_token(16),
        }
    }

    /// Signs claims with the access-token header.
    pub fn sign(&self, claims: &Claims) -> Result<String, AppError> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_HEADER_TYP.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AppError::internal)
    }

    /// A signed access token for `user_id`.
    pub fn issue_access(&self, user_id: i64) -> Result<String, AppError> {
        self.sign(&self.access_claims(user_id))
    }

    /// Verifies an access token; every failure is a 401 without detail on
    /// which check failed beyond what helps a legitimate client.
    pub fn verify_access(&self, token: &str) -> Result<Verified, AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        AppError::Unauthorized("the access token has expired".into())
                    }
                    _ => AppError::Unauthorized("invalid access token".into()),
                }
            })?;
        if data.header.typ.as_deref() != Some(ACCESS_HEADER_TYP) || data.claims.typ != ACCESS_TYP {
            return Err(AppError::Unauthorized("invalid access token".into()));
        }
        let user_id = data
            .claims
            .sub
            .parse::<i64>()
            .map_err(|_| AppError::Unauthorized("invalid access token".into()))?;
        Ok(Verified { user_id })
    }
}

/// A new opaque refresh token.
pub fn new_refresh_token() -> String {
    format!("{REFRESH_PREFIX}{}", random_token(32))
}

/// The stored form of a refresh token (SHA-256, hex). Refresh tokens carry
/// 256 random bits, so a fast hash is enough: there is nothing to brute-force.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
