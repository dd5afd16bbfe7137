//! Access-token negatives (RFC 8725): every forged or misused token is 401.

use crate::util::{test_secret, TestApp};
use base64::Engine as _;
use guildhall::auth::tokens::TokenService;
use serde_json::json;
use std::time::Duration;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign_hs256(header: &serde_json::Value, claims: &serde_json::Value, key: &[u8]) -> String {
    let h = jsonwebtoken::Header {
        typ: header["typ"].as_str().map(str::to_owned),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    jsonwebtoken::encode(&h, claims, &jsonwebtoken::EncodingKey::from_secret(key)).unwrap()
}

fn claims(user_id: i64, aud: &str, exp_offset: i64, typ: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user_id.to_string(), "iss": "guildhall", "aud": aud, "exp": now + exp_offset, "iat": now, "typ": typ, "jti": "x"})
}

#[actix_web::test]
async fn forged_and_misused_tokens_are_rejected() {
    let app = TestApp::new();
    let u = app.user("jwt").await;
    let key = test_secret().0;
    let at = json!({"typ": "at+jwt"});

    // Control: a correctly made token passes.
    let good = sign_hs256(&at, &claims(u.id, "guildhall-api", 600, "access"), &key);
    app.get("/api/v1/me", Some(&good)).await.expect(200);

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&claims(u.id, "guildhall-api", 600, "access"))
    );
    app.get("/api/v1/me", Some(&none)).await.expect(401);
    // Another algorithm with the same key material (HS512).
    let h512 = jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512)
    };
    let hs512 = jsonwebtoken::encode(
        &h512,
        &claims(u.id, "guildhall-api", 600, "access"),
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap();
    app.get("/api/v1/me", Some(&hs512)).await.expect(401);
    // Wrong audience.
    app.get(
        "/api/v1/me",
        Some(&sign_hs256(
            &at,
            &claims(u.id, "someone-else", 600, "access"),
            &key,
        )),
    )
    .await
    .expect(401);
    // Wrong issuer.
    let mut c = claims(u.id, "guildhall-api", 600, "access");
    c["iss"] = json!("evil");
    app.get("/api/v1/me", Some(&sign_hs256(&at, &c, &key)))
        .await
        .expect(401);
    // Expired (beyond the 5 s leeway).
    let r = app
        .get(
            "/api/v1/me",
            Some(&sign_hs256(
                &at,
                &claims(u.id, "guildhall-api", -60, "access"),
                &key,
            )),
        )
        .await
        .expect(401);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));
    // Missing exp.
    let mut c = claims(u.id, "guildhall-api", 600, "access");
    c.as_object_mut().unwrap().remove("exp");
    app.get("/api/v1/me", Some(&sign_hs256(&at, &c, &key)))
        .await
        .expect(401);
    // A token of another purpose (typ claim), or without the at+jwt header.
    app.get(
        "/api/v1/me",
        Some(&sign_hs256(
            &at,
            &claims(u.id, "guildhall-api", 600, "refresh"),
            &key,
        )),
    )
    .await
    .expect(401);
    app.get(
        "/api/v1/me",
        Some(&sign_hs256(
            &json!({"typ": "JWT"}),
            &claims(u.id, "guildhall-api", 600, "access"),
            &key,
        )),
    )
    .await
    .expect(401);
    // The refresh token presented as an access token.
    app.get("/api/v1/me", Some(&u.refresh)).await.expect(401);
    // Tampered signature and tampered payload.
    let mut tampered = u.access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    app.get("/api/v1/me", Some(&tampered)).await.expect(401);
    let parts: Vec<&str> = u.access.split('.').collect();
    let forged_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(u.id + 1, "guildhall-api", 600, "access")),
        parts[2]
    );
    app.get("/api/v1/me", Some(&forged_payload))
        .await
        .expect(401);
    // Signed with another key.
    app.get(
        "/api/v1/me",
        Some(&sign_hs256(
            &at,
            &claims(u.id, "guildhall-api", 600, "access"),
            b"another-key-another-key-another-key!",
        )),
    )
    .await
    .expect(401);
    // Not a bearer header at all.
    let r = app
        .request(actix_web::http::Method::GET, "/api/v1/me", None, None)
        .await
        .expect(401);
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
}

#[test]
fn issued_tokens_carry_the_checked_claims() {
    let svc = TokenService::new(
        &test_secret(),
        "guildhall",
        "guildhall-api",
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let token = svc.issue_access(42).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["sub"], "42");
    assert_eq!(payload["aud"], "guildhall-api");
    assert_eq!(payload["iss"], "guildhall");
    assert_eq!(payload["typ"], "access");
    let ttl = payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap();
    assert_eq!(ttl, 900);
    assert_eq!(svc.verify_access(&token).unwrap().user_id, 42);
}
