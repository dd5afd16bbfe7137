use crate::util::{TestApp, PASSWORD};
use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde_json::json;

#[actix_web::test]
async fn bad_bodies_get_problems() {
    let app = TestApp::new();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;

    // Malformed JSON → 400.
    let r = app
        .send(
            &svc,
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .insert_header(("content-type", "application/json"))
                .set_payload("{not json"),
        )
        .await
        .expect(400);
    assert_eq!(r.body["code"], "invalid_json");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    // Wrong type → 422 naming the field.
    let r = app
        .send(
            &svc,
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .set_json(json!({"email": 5, "password": PASSWORD, "display_name": "x"})),
        )
        .await
        .expect(422);
    assert_eq!(
        r.body["errors"][0]["message"]
            .as_str()
            .map(|m| m.contains("invalid type")),
        Some(true)
    );
    // Not JSON → 415.
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/auth/register")
            .insert_header(("content-type", "text/plain"))
            .set_payload("hi"),
    )
    .await
    .expect(415);
    // Over the 256 KiB limit → 413, nothing written.
    let huge = json!({"email": "big@example.com", "password": PASSWORD, "display_name": "x".repeat(300 * 1024)});
    let r = app
        .send(
            &svc,
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .set_json(huge),
        )
        .await
        .expect(413);
    assert_eq!(r.body["code"], "payload_too_large");
    app.post(
        "/api/v1/auth/login",
        json!({"email": "big@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .expect(401);
    // Unknown paths and bad path parameters → 404 problem.
    let r = app.get("/api/v1/does-not-exist", None).await.expect(404);
    assert_eq!(r.body["status"], 404);
    let owner = app.user("owner").await;
    app.project(&owner, "p1").await;
    app.post(
        "/api/v1/projects/p1/helpers/not-a-number/approve",
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(404);
    // Bad query strings → 400.
    app.get("/api/v1/projects?limit=abc", None)
        .await
        .expect(400);
    // Every response carries a request id.
    let r = app
        .request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(r.body, json!({"status": "ok"}));
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

#[actix_web::test]
async fn unreachable_database_is_503_not_a_panic() {
    let app = TestApp::builder()
        .env("GUILDHALL_DB_POOL_TIMEOUT_MS", "300")
        .raw_database("postgres://nobody@127.0.0.1:1/nothing")
        .build();
    let r = app.get("/healthz", None).await.expect(503);
    assert_eq!(r.body["code"], "service_unavailable");
    assert!(r.header("retry-after").is_some());
    let r = app.get("/api/v1/projects", None).await.expect(503);
    assert!(
        !r.text.contains("127.0.0.1"),
        "no internals leak: {}",
        r.text
    );
    app.post(
        "/api/v1/auth/register",
        json!({"email": "x@example.com", "password": PASSWORD, "display_name": "x"}),
        None,
    )
    .await
    .expect(503);
}

#[actix_web::test]
async fn openapi_covers_every_route_and_metrics_count_requests() {
    let app = TestApp::new();
    let doc = app.get("/api/v1/openapi.json", None).await.expect(200).body;
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/projects", "post"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects/{slug}", "get"),
        ("/api/v1/projects/{slug}", "patch"),
        ("/api/v1/projects/{slug}/maintainers", "post"),
        ("/api/v1/projects/{slug}/coc/accept", "post"),
        ("/api/v1/projects/{slug}/helpers", "get"),
        ("/api/v1/projects/{slug}/helpers/apply", "post"),
        ("/api/v1/projects/{slug}/helpers/{user_id}/approve", "post"),
        ("/api/v1/projects/{slug}/helpers/{user_id}/revoke", "post"),
        ("/api/v1/projects/{slug}/helpers/{user_id}/endorse", "post"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/tickets", "post"),
        ("/api/v1/tickets", "get"),
        ("/api/v1/tickets/{id}", "get"),
        ("/api/v1/tickets/{id}", "patch"),
        ("/api/v1/tickets/{id}/submit", "post"),
        ("/api/v1/tickets/{id}/claim", "post"),
        ("/api/v1/tickets/{id}/unclaim", "post"),
        ("/api/v1/tickets/{id}/transfer", "post"),
        ("/api/v1/tickets/{id}/resolve", "post"),
        ("/api/v1/tickets/{id}/accept", "post"),
        ("/api/v1/tickets/{id}/reopen", "post"),
        ("/api/v1/tickets/{id}/close", "post"),
        ("/api/v1/tickets/{id}/cancel", "post"),
        ("/api/v1/tickets/{id}/rating", "post"),
        ("/api/v1/tickets/{id}/messages", "post"),
        ("/api/v1/tickets/{id}/messages", "get"),
        ("/api/v1/tickets/{id}/events", "get"),
        ("/api/v1/tickets/{id}/similar", "get"),
        ("/api/v1/projects/{slug}/templates", "post"),
        ("/api/v1/projects/{slug}/templates", "get"),
        ("/api/v1/projects/{slug}/queue", "get"),
        ("/api/v1/search/tickets", "get"),
        ("/api/v1/tickets/{id}/bounties", "post"),
        ("/api/v1/tickets/{id}/bounties", "get"),
        ("/api/v1/me/balance", "get"),
        ("/api/v1/me/transfers", "get"),
        ("/api/v1/tickets/{id}/bids", "post"),
        ("/api/v1/tickets/{id}/bids", "get"),
        ("/api/v1/bids/{id}/accept", "post"),
        ("/api/v1/bids/{id}/withdraw", "post"),
        ("/api/v1/webhooks/stripe", "post"),
        ("/api/v1/projects/{slug}/statement", "get"),
        ("/api/v1/me/payouts/onboarding", "post"),
        ("/api/v1/projects/{slug}/payouts/onboarding", "post"),
        ("/api/v1/users/{id}/reputation", "get"),
        ("/api/v1/projects/{slug}/reputation", "get"),
        ("/api/v1/tickets/{id}/matches", "get"),
        ("/api/v1/route", "post"),
        ("/api/v1/me/notifications", "get"),
        ("/api/v1/me/notifications", "put"),
        ("/api/v1/tickets/{id}/notifications", "put"),
        ("/api/v1/projects/{slug}/notifications", "put"),
        ("/api/v1/inbound/email", "post"),
        ("/api/v1/webhooks/github", "post"),
        ("/api/v1/projects/{slug}/verification", "post"),
        ("/api/v1/tickets/{id}/github-issue", "post"),
        ("/api/v1/webhooks/discord", "post"),
        ("/api/v1/projects/{slug}/calendar", "get"),
        ("/api/v1/projects/{slug}/calendar", "put"),
        ("/api/v1/admin/audit", "get"),
        ("/api/v1/webhooks/slack/commands", "post"),
        ("/api/v1/webhooks/slack/interactions", "post"),
        ("/api/v1/projects/{slug}/plans", "post"),
        ("/api/v1/projects/{slug}/plans", "get"),
        ("/api/v1/projects/{slug}/subscriptions", "post"),
        ("/api/v1/me/subscriptions", "get"),
        ("/api/v1/subscriptions/{id}/cancel", "post"),
        ("/api/v1/tickets/{id}/upgrade", "post"),
        ("/api/v1/me/invoices", "get"),
        ("/api/v1/invoices/{id}", "get"),
        ("/api/v1/invoices/{id}/pdf", "get"),
        ("/api/v1/me/billing", "get"),
        ("/api/v1/me/billing", "put"),
        ("/api/v1/flags", "post"),
        ("/api/v1/projects/{slug}/flags", "get"),
        ("/api/v1/flags/{id}/uphold", "post"),
        ("/api/v1/flags/{id}/dismiss", "post"),
        ("/api/v1/projects/{slug}/bans", "post"),
        ("/api/v1/projects/{slug}/bans/{user_id}", "delete"),
        ("/api/v1/admin/bans", "post"),
        ("/api/v1/admin/bans/{user_id}", "delete"),
        ("/api/v1/projects/{slug}/handovers", "post"),
        ("/api/v1/projects/{slug}/handovers", "get"),
        ("/api/v1/me/handovers", "get"),
        ("/api/v1/handovers/{id}", "get"),
        ("/api/v1/handovers/{id}/accept", "post"),
        ("/api/v1/handovers/{id}/reverse", "post"),
        ("/api/v1/handovers/{id}/cancel", "post"),
        ("/api/v1/me/earnings", "get"),
        ("/api/v1/subscriptions/{id}/consulting", "post"),
        ("/api/v1/subscriptions/{id}/consulting", "get"),
        ("/api/v1/projects/{slug}/consulting", "get"),
        ("/api/v1/consulting/{id}/schedule", "post"),
        ("/api/v1/consulting/{id}/done", "post"),
        ("/api/v1/consulting/{id}/cancel", "post"),
        ("/api/v1/code-of-conduct", "get"),
        ("/api/v1/code-of-conduct/accept", "post"),
        ("/api/v1/admin/code-of-conduct", "put"),
        ("/api/v1/projects/{slug}/appeals", "get"),
        ("/api/v1/admin/appeals", "get"),
        ("/api/v1/appeals/{id}/decide", "post"),
        ("/api/v1/admin/flags", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from OpenAPI"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        111,
        "document and routes in step"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    app.get("/api/v1/projects/nope", None).await.expect(404);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let r = app
        .send(&svc, TestRequest::get().uri("/metrics"))
        .await
        .expect(200);
    assert!(r.text.contains(r#"guildhall_http_requests_total{method="GET",route="/api/v1/projects/{slug}",status="404"} 1"#), "{}", r.text);
    assert!(r
        .text
        .contains("guildhall_http_request_duration_seconds_bucket"));
    assert!(r.text.contains("guildhall_db_pool_connections"));
}
