//! Helpers' earnings statements (issue 13 §3): what a helper earned per
//! release, other credits and payouts, as JSON, CSV and a page.

use crate::util::TestApp;
use serde_json::json;

#[actix_web::test]
async fn a_helper_gets_a_statement_of_what_they_earned() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.paid_and_accepted(&requester, &helper, "proj", "=cmd| injected title", 10_000)
        .await;
    app.paid_and_accepted(&requester, &helper, "proj", "Second one", 4_000)
        .await;

    let e = app
        .get("/api/v1/me/earnings", Some(&helper.access))
        .await
        .expect(200);
    let lines = e.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{}", e.body);
    assert_eq!(lines[0]["amount"], 10_000);
    let earned: i64 = lines.iter().map(|l| l["earned"].as_i64().unwrap()).sum();
    let fees: i64 = lines
        .iter()
        .map(|l| l["commission"].as_i64().unwrap() + l["platform_fee"].as_i64().unwrap())
        .sum();
    assert_eq!(earned + fees, 14_000, "every cent is accounted for");
    assert_eq!(e.body["totals"][0]["currency"], "usd");
    assert_eq!(e.body["totals"][0]["earned"], earned);
    assert_eq!(e.body["totals"][0]["available_now"], earned);
    assert_eq!(e.body["totals"][0]["paid_out"], 0);
    // The requester earned nothing; a range before today holds nothing.
    let r = app
        .get("/api/v1/me/earnings", Some(&requester.access))
        .await
        .expect(200);
    assert_eq!(r.body["lines"].as_array().unwrap().len(), 0);
    let old = app
        .get("/api/v1/me/earnings?to=2020-01-01", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(old.body["lines"].as_array().unwrap().len(), 0);
    app.get("/api/v1/me/earnings?from=yesterday", Some(&helper.access))
        .await
        .expect(422);
    app.get("/api/v1/me/earnings", None).await.expect(401);

    // Paid out: the payout shows, and nothing is left available.
    app.post(
        "/api/v1/me/payouts/onboarding",
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    guildhall::domain::payouts::run(&app.pool, &guildhall::payments::Sandbox, 1).unwrap();
    let e = app
        .get("/api/v1/me/earnings", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(e.body["totals"][0]["paid_out"], earned);
    assert_eq!(e.body["totals"][0]["available_now"], 0);

    // CSV, with text a spreadsheet will not run.
    let csv = app
        .get("/api/v1/me/earnings?format=csv", Some(&helper.access))
        .await
        .expect(200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.text.starts_with("\"kind\",\"at\",\"ticket_id\""),
        "{}",
        csv.text
    );
    assert!(csv.text.contains("'=cmd| injected title"), "{}", csv.text);
    assert!(csv.text.contains("payout_paid"), "{}", csv.text);

    // The page.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &helper.email).await;
    let page = b.get("/me/earnings").await.expect(200);
    assert!(
        page.text.contains("Second one") && page.text.contains("Payout #"),
        "{}",
        page.text
    );
    let dl = b
        .get("/me/earnings.csv?from=2020-01-01&to=")
        .await
        .expect(200);
    assert!(dl.text.contains("Second one"));
}
