use crate::util::{captured_logs, TestApp, PASSWORD};
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn register_login_me_refresh_logout() {
    let app = TestApp::new();
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "Ada@Example.com", "password": PASSWORD, "display_name": "Ada"}),
            None,
        )
        .await
        .expect(201);
    assert_eq!(r.body["email"], "Ada@Example.com");
    assert_eq!(r.body["display_name"], "Ada");
    assert!(
        r.body.get("password_hash").is_none(),
        "no hash in responses: {}",
        r.text
    );

    // Email is unique case-insensitively.
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "ada@EXAMPLE.com", "password": PASSWORD, "display_name": "Other"}),
            None,
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "email_taken");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // Stored as argon2id, never in plain text.
    let stored: Option<String> = {
        use guildhall::db::schema::users::dsl::*;
        users.select(password_hash).first(&mut *app.conn()).unwrap()
    };
    assert!(stored.unwrap().starts_with("$argon2id$"));

    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "ADA@example.com", "password": PASSWORD}),
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();

    let me = app.get("/api/v1/me", Some(&access)).await.expect(200);
    assert_eq!(me.body["email"], "Ada@Example.com");
    assert_eq!(me.body["roles"], json!(["user"]));
    app.get("/api/v1/me", None).await.expect(401);

    // Refresh rotates: a new pair, and the old refresh token is spent.
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
            None,
        )
        .await
        .expect(200);
    let refresh2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    app.get("/api/v1/me", Some(r.body["access_token"].as_str().unwrap()))
        .await
        .expect(200);

    // Only hashes are stored.
    let hashes: Vec<String> = {
        use guildhall::db::schema::refresh_tokens::dsl::*;
        refresh_tokens
            .select(token_hash)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(hashes.len(), 2);
    assert!(hashes
        .iter()
        .all(|h| h.len() == 64 && !h.starts_with("ghr_")));

    // Logout revokes the family: the current refresh token no longer works.
    app.post(
        "/api/v1/auth/logout",
        json!({"refresh_token": refresh2}),
        None,
    )
    .await
    .expect(204);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh2}),
            None,
        )
        .await
        .expect(401);
    assert_eq!(r.body["code"], "unauthorized");
}

#[actix_web::test]
async fn reusing_a_refresh_token_revokes_its_family() {
    let app = TestApp::new();
    let u = app.user("reuse").await;
    let other_session = app
        .post(
            "/api/v1/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
            None,
        )
        .await
        .expect(200);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": u.refresh}),
            None,
        )
        .await
        .expect(200);
    let successor = r.body["refresh_token"].as_str().unwrap().to_owned();

    // An attacker replays the spent token: refused, and the legitimate
    // successor from the same family dies with it.
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": u.refresh}),
            None,
        )
        .await
        .expect(401);
    assert!(
        r.body["detail"].as_str().unwrap().contains("already used"),
        "{}",
        r.text
    );
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": successor}),
        None,
    )
    .await
    .expect(401);

    // Another login (another family) is unaffected.
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": other_session.body["refresh_token"]}),
        None,
    )
    .await
    .expect(200);
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": "ghr_unknown"}),
        None,
    )
    .await
    .expect(401);
}

#[actix_web::test]
async fn registration_validation() {
    let app = TestApp::new();
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "short", "display_name": ""}),
            None,
        )
        .await
        .expect(422);
    assert_eq!(r.body["code"], "validation_failed");
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "display_name"]);

    let long = "x".repeat(1025);
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "a@b.co", "password": long, "display_name": "A"}),
            None,
        )
        .await
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "password");
    // 12 characters (not bytes) is enough; 1024 is the maximum.
    app.post(
        "/api/v1/auth/register",
        json!({"email": "a@b.co", "password": "ünïcödé-pass", "display_name": "A"}),
        None,
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/auth/register",
        json!({"email": "b@b.co", "password": "y".repeat(1024), "display_name": "B"}),
        None,
    )
    .await
    .expect(201);

    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "c@b.co", "display_name": "C"}),
            None,
        )
        .await
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "password");
    let count: i64 = {
        use guildhall::db::schema::users::dsl::*;
        users.count().get_result(&mut *app.conn()).unwrap()
    };
    assert_eq!(count, 2, "failed registrations write nothing");
}

#[actix_web::test]
async fn failed_logins_are_rate_limited_per_account_and_address() {
    let app = TestApp::builder()
        .env("GUILDHALL_LOGIN_MAX_FAILURES_ACCOUNT", "3")
        .env("GUILDHALL_LOGIN_MAX_FAILURES_ADDRESS", "5")
        .build();
    let u = app.user("limited").await;
    for _ in 0..3 {
        app.post(
            "/api/v1/auth/login",
            json!({"email": u.email, "password": "wrong password!!"}),
            None,
        )
        .await
        .expect(401);
    }
    // Even the right password is refused while the account is locked.
    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
            None,
        )
        .await
        .expect(429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
    assert_eq!(r.body["code"], "rate_limited");

    // The same address trying other accounts hits the address limit.
    app.post(
        "/api/v1/auth/login",
        json!({"email": "ghost1@example.com", "password": "wrong password!!"}),
        None,
    )
    .await
    .expect(401);
    app.post(
        "/api/v1/auth/login",
        json!({"email": "ghost2@example.com", "password": "wrong password!!"}),
        None,
    )
    .await
    .expect(401);
    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "ghost3@example.com", "password": "wrong password!!"}),
            None,
        )
        .await
        .expect(429);
    assert!(r.header("retry-after").is_some());
}

#[actix_web::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let app = TestApp::new();
    let attempts = (0..20).map(|i| {
        app.post(
            "/api/v1/auth/register",
            json!({"email": if i % 2 == 0 { "Race@Example.com" } else { "race@example.com" }, "password": PASSWORD, "display_name": format!("r{i}")}),
            None,
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let conflicts = results.iter().filter(|r| r.status.as_u16() == 409).count();
    assert_eq!(
        (created, conflicts),
        (1, 19),
        "{:?}",
        results.iter().map(|r| r.text.clone()).collect::<Vec<_>>()
    );
    let rows: i64 = {
        use guildhall::db::schema::users::dsl::*;
        users
            .filter(email_normalized.eq("race@example.com"))
            .count()
            .get_result(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(rows, 1);
}

#[actix_web::test]
async fn secrets_never_reach_the_logs() {
    let app = TestApp::new();
    let secret_password = "log-canary-password-5f1e2d";
    app.post(
        "/api/v1/auth/register",
        json!({"email": "canary@example.com", "password": secret_password, "display_name": "C"}),
        None,
    )
    .await
    .expect(201);
    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "canary@example.com", "password": secret_password}),
            None,
        )
        .await
        .expect(200);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh}),
        None,
    )
    .await
    .expect(200);
    app.post(
        "/api/v1/auth/login",
        json!({"email": "canary@example.com", "password": "wrong-canary-password"}),
        None,
    )
    .await
    .expect(401);
    let logs = captured_logs();
    assert!(logs.contains("user logged in"), "logging is captured");
    for secret in [
        secret_password,
        "wrong-canary-password",
        &access,
        &refresh,
        crate::util::TEST_JWT_KEY,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

#[actix_web::test]
async fn concurrent_guesses_cannot_exceed_the_limit() {
    let app = TestApp::builder()
        .env("GUILDHALL_LOGIN_MAX_FAILURES_ACCOUNT", "5")
        .build();
    let u = app.user("target").await;
    let guesses = (0..30).map(|i| {
        app.post(
            "/api/v1/auth/login",
            json!({"email": u.email, "password": format!("wrong password {i}")}),
            None,
        )
    });
    let results = futures_util::future::join_all(guesses).await;
    let checked = results.iter().filter(|r| r.status.as_u16() == 401).count();
    let limited = results.iter().filter(|r| r.status.as_u16() == 429).count();
    assert_eq!(
        (checked, limited),
        (5, 25),
        "only five passwords are ever checked"
    );
}

#[actix_web::test]
async fn a_refresh_family_expires_with_its_login() {
    let app = TestApp::new();
    let u = app.user("family").await;
    let r = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": u.refresh}),
            None,
        )
        .await
        .expect(200);
    let successor = r.body["refresh_token"].as_str().unwrap().to_owned();
    let expiries: Vec<chrono::NaiveDateTime> = {
        use guildhall::db::schema::refresh_tokens::dsl::*;
        refresh_tokens
            .select(expires_at)
            .order(id)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(expiries.len(), 2);
    assert_eq!(
        expiries[0], expiries[1],
        "rotation does not extend the family"
    );
    // Once the family's time is up, its latest token is refused too.
    {
        use guildhall::db::schema::refresh_tokens::dsl::*;
        diesel::update(refresh_tokens)
            .set(expires_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    app.post(
        "/api/v1/auth/refresh",
        json!({"refresh_token": successor}),
        None,
    )
    .await
    .expect(401);
}
