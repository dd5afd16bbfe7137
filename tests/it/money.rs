//! Bounties through HTTP with the sandbox gateway.

use crate::util::TestApp;
use actix_web::http::Method;
use actix_web::test::TestRequest;
use guildhall::ledger::{self, AccountKind};
use serde_json::json;

#[actix_web::test]
async fn bounty_claim_resolve_accept_splits_85_10_5() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let project = app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Paid question", "public")
        .await;

    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 10_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["bounty"]["status"], "funded");
    assert_eq!(
        r.body["payment"],
        json!({"gateway": "sandbox", "status": "succeeded", "client_secret": null, "test_money": true})
    );
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["paid"], json!({"amount": 10_000, "currency": "usd"}));
    let q = app
        .get("/api/v1/projects/proj/queue", None)
        .await
        .expect(200);
    assert_eq!(q.body["items"][0]["paid"], true);

    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);

    let b = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(
        b.body["items"],
        json!([{"available": 8_500, "pending": 0, "currency": "usd"}])
    );
    let lines = app
        .get("/api/v1/me/transfers", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(lines.body["items"][0]["direction"], "credit");
    assert_eq!(lines.body["items"][0]["ticket_id"], id);
    // Others see nothing of it.
    assert_eq!(
        app.get("/api/v1/me/balance", Some(&requester.access))
            .await
            .expect(200)
            .body["items"],
        json!([])
    );
    app.get("/api/v1/me/balance", None).await.expect(401);

    let mut conn = app.conn();
    let project_id = project["id"].as_i64().unwrap();
    assert_eq!(
        ledger::account(
            &mut conn,
            AccountKind::ProjectRevenue,
            Some(project_id),
            "usd"
        )
        .unwrap()
        .balance(),
        1_000
    );
    assert_eq!(
        ledger::account(&mut conn, AccountKind::PlatformRevenue, None, "usd")
            .unwrap()
            .balance(),
        500
    );
    assert_eq!(
        ledger::account(&mut conn, AccountKind::TicketEscrow, Some(id), "usd")
            .unwrap()
            .balance(),
        0
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
    let bounties = app
        .get(&format!("/api/v1/tickets/{id}/bounties"), None)
        .await
        .expect(200);
    assert_eq!(bounties.body[0]["status"], "released");
}

#[actix_web::test]
async fn idempotency_keys_replay_or_refuse() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Idempotent money", "public")
        .await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let send = |amount: i64, key: &str| {
        TestRequest::default()
            .method(Method::POST)
            .uri(&format!("/api/v1/tickets/{id}/bounties"))
            .insert_header(("authorization", format!("Bearer {}", requester.access)))
            .insert_header(("idempotency-key", key.to_owned()))
            .set_json(json!({"amount": amount, "currency": "usd"}))
    };
    let first = app.send(&svc, send(2_500, "k1")).await.expect(201);
    let again = app.send(&svc, send(2_500, "k1")).await.expect(201);
    assert_eq!(first.body, again.body, "the first response is replayed");
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    let r = app.send(&svc, send(3_000, "k1")).await.expect(422);
    assert!(r.text.contains("idempotency_mismatch"));
    app.send(&svc, send(3_000, "k2")).await.expect(201);
    // Errors are replayed too, and nothing was written twice.
    app.send(&svc, send(5, "k3")).await.expect(422);
    app.send(&svc, send(5, "k3")).await.expect(422);
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["paid"]["amount"], 5_500);
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}/bounties"), None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[actix_web::test]
async fn cancelling_refunds_backers_and_bad_bounties_are_refused() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    let backer = app.user("backer").await;
    app.project(&owner, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Refund me", "public")
        .await;
    let secret = app
        .open_ticket(&requester, "proj", "Private one", "private")
        .await;
    app.post(
        &format!("/api/v1/tickets/{secret}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        Some(&backer.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "eur"}),
        Some(&backer.access),
    )
    .await
    .expect(422);
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 99, "currency": "usd"}),
        Some(&backer.access),
    )
    .await
    .expect(422);
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        None,
    )
    .await
    .expect(401);
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        Some(&backer.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 4_000, "currency": "usd"}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/tickets/{id}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    let bounties = app
        .get(&format!("/api/v1/tickets/{id}/bounties"), None)
        .await
        .expect(200);
    assert!(bounties
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "refunded"));
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}"), None).await.body["paid"]["amount"],
        0
    );
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        Some(&backer.access),
    )
    .await
    .expect(409);
    let mut conn = app.conn();
    assert_eq!(
        ledger::account(&mut conn, AccountKind::TicketEscrow, Some(id), "usd")
            .unwrap()
            .balance(),
        0
    );
    assert_eq!(
        ledger::clearing_account(&mut conn, "sandbox", "usd")
            .unwrap()
            .balance(),
        0,
        "all money went back out"
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
    // The refund job sends each refund through the gateway once.
    use diesel::prelude::*;
    use guildhall::db::schema::bounties as b;
    let unsent: i64 = b::table
        .filter(b::ticket_id.eq(id))
        .filter(b::refund_id.is_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(
        unsent, 2,
        "queued in the cancelling transaction, not yet sent"
    );
    drop(conn);
    assert!(
        app.run_jobs() >= 2,
        "one refund job per bounty (and the index job)"
    );
    let refunds: Vec<Option<String>> = b::table
        .filter(b::ticket_id.eq(id))
        .select(b::refund_id)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(refunds.len(), 2);
    assert!(refunds
        .iter()
        .all(|r| r.as_deref().is_some_and(|r| r.starts_with("sandbox_re_"))));
    assert_eq!(app.run_jobs(), 0, "nothing left to send");
}

#[actix_web::test]
async fn concurrent_accepts_release_once() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .funded_and_resolved(&requester, &helper, "proj", "Accept race", 7_777)
        .await;
    let path = format!("/api/v1/tickets/{id}/accept");
    let results = futures_util::future::join_all(
        (0..50).map(|_| app.post(&path, json!({}), Some(&requester.access))),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.status.as_u16() == 200).count(),
        1
    );
    assert!(results
        .iter()
        .all(|r| matches!(r.status.as_u16(), 200 | 409)));
    let b = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    let split = ledger::split(7_777, 500, 1000).unwrap();
    assert_eq!(b.body["items"][0]["available"], split.helper);
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn bids_accept_withdraw_and_authorization() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let h1 = app.user("h1").await;
    let h2 = app.user("h2").await;
    let requester = app.user("req").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &h1, "proj").await;
    app.approved_helper(&owner, &h2, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Bid on me", "public")
        .await;
    let bid = |amount: i64| json!({"amount": amount, "currency": "usd", "eta_hours": 24, "message": "I can fix this"});

    app.post(
        &format!("/api/v1/tickets/{id}/bids"),
        bid(5_000),
        Some(&other.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/tickets/{id}/bids"),
        json!({"amount": 5_000, "currency": "usd", "eta_hours": 0}),
        Some(&h1.access),
    )
    .await
    .expect(422);
    let b1 = app
        .post(
            &format!("/api/v1/tickets/{id}/bids"),
            bid(5_000),
            Some(&h1.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/tickets/{id}/bids"),
        bid(4_000),
        Some(&h1.access),
    )
    .await
    .expect(409);
    let b2 = app
        .post(
            &format!("/api/v1/tickets/{id}/bids"),
            bid(6_000),
            Some(&h2.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();

    // Bidders see only their own bids; the requester sees all.
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}/bids"), Some(&h1.access))
            .await
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/tickets/{id}/bids"),
            Some(&requester.access)
        )
        .await
        .expect(200)
        .body
        .as_array()
        .unwrap()
        .len(),
        2
    );
    // Only the bidder withdraws; only the requester accepts (others do not learn the bid exists).
    app.post(
        &format!("/api/v1/bids/{b2}/withdraw"),
        json!({}),
        Some(&h1.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/bids/{b1}/accept"),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/bids/{b1}/accept"),
        json!({}),
        Some(&h1.access),
    )
    .await
    .expect(403);
    let b3 = app
        .post(
            &format!("/api/v1/tickets/{id}/bids"),
            bid(7_000),
            Some(&owner.access),
        )
        .await;
    assert_eq!(
        b3.status.as_u16(),
        403,
        "maintainers who are not approved helpers do not bid"
    );

    let r = app
        .post(
            &format!("/api/v1/bids/{b1}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["bid"]["status"], "accepted");
    assert_eq!(r.body["bounty"]["status"], "funded");
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(
        (
            t.body["status"].as_str(),
            t.body["claimed_by"].as_i64(),
            t.body["paid"]["amount"].as_i64()
        ),
        (Some("claimed"), Some(h1.id), Some(5_000))
    );
    let all = app
        .get(
            &format!("/api/v1/tickets/{id}/bids"),
            Some(&requester.access),
        )
        .await
        .body;
    assert_eq!(all[1]["status"], "rejected");
    app.post(
        &format!("/api/v1/bids/{b2}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    app.post(
        &format!("/api/v1/bids/{b1}/withdraw"),
        json!({}),
        Some(&h1.access),
    )
    .await
    .expect(409);
    let events = app
        .get(&format!("/api/v1/tickets/{id}/events"), None)
        .await
        .body;
    assert_eq!(
        events.as_array().unwrap().last().unwrap()["action"],
        "assign"
    );

    // Resolve; the acceptance window lapses; the job accepts and releases.
    app.patch(
        "/api/v1/projects/proj",
        json!({"acceptance_days": 2}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({}),
        Some(&h1.access),
    )
    .await
    .expect(200);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::tickets;
        let old = chrono::Utc::now().naive_utc() - chrono::Duration::days(3);
        diesel::update(tickets::table.find(id))
            .set(tickets::resolved_at.eq(Some(old)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    use guildhall_jobs::BackgroundJob as _;
    guildhall::jobs::AutoAcceptResolutions
        .enqueue(&mut app.conn())
        .unwrap();
    app.run_jobs();
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(
        (t.body["status"].as_str(), t.body["close_reason"].as_str()),
        (Some("closed"), Some("accepted automatically"))
    );
    let b = app
        .get("/api/v1/me/balance", Some(&h1.access))
        .await
        .expect(200);
    assert_eq!(b.body["items"][0]["available"], 4_250);
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn project_statement_for_maintainers_in_json_and_csv() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.patch(
        "/api/v1/projects/proj",
        json!({"commission_bps": 3000}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    app.approved_helper(&owner, &helper, "proj").await;
    for (title, amount) in [("First, paid", 10_000), ("Second \"quoted\"", 999)] {
        let id = app.open_ticket(&requester, "proj", title, "public").await;
        app.post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": amount, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
        app.post(
            &format!("/api/v1/tickets/{id}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
        app.post(
            &format!("/api/v1/tickets/{id}/resolve"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
        app.post(
            &format!("/api/v1/tickets/{id}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    }
    app.get("/api/v1/projects/proj/statement", Some(&helper.access))
        .await
        .expect(403);
    app.get("/api/v1/projects/proj/statement", None)
        .await
        .expect(401);
    app.get(
        "/api/v1/projects/proj/statement?from=yesterday",
        Some(&owner.access),
    )
    .await
    .expect(422);
    let s = app
        .get("/api/v1/projects/proj/statement", Some(&owner.access))
        .await
        .expect(200)
        .body;
    assert_eq!(s["lines"].as_array().unwrap().len(), 2);
    assert_eq!(s["lines"][0]["commission"], 3_000);
    assert_eq!(s["lines"][0]["platform_fee"], 500);
    assert_eq!(s["lines"][0]["commission_bps"], 3000);
    assert_eq!(s["lines"][1]["commission"], 299);
    assert_eq!(s["lines"][1]["platform_fee"], 49);
    assert_eq!(s["total_amount"], 10_999);
    assert_eq!(s["total_commission"], 3_299);
    assert_eq!(s["total_helpers"].as_i64().unwrap() + 3_299 + 549, 10_999);
    let future = app
        .get(
            "/api/v1/projects/proj/statement?from=2999-01-01",
            Some(&owner.access),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(future["lines"], json!([]));
    let csv = app
        .get(
            "/api/v1/projects/proj/statement?format=csv",
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[1].contains(",\"First, paid\",")
            && lines[1].ends_with(",usd,10000,6500,3000,500,3000,500,1"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("\"Second \"\"quoted\"\"\""),
        "{}",
        lines[2]
    );
}

/// The sandbox, except that transfers fail the first `fail` times.
struct FlakyTransfers {
    fail: std::sync::atomic::AtomicUsize,
    calls: std::sync::Mutex<Vec<String>>,
}

impl guildhall::payments::PaymentGateway for FlakyTransfers {
    fn name(&self) -> &'static str {
        "sandbox"
    }
    fn test_money(&self) -> bool {
        true
    }
    fn create_payment(
        &self,
        r: &guildhall::payments::PaymentRequest,
    ) -> anyhow::Result<guildhall::payments::Payment> {
        guildhall::payments::Sandbox.create_payment(r)
    }
    fn refund(&self, p: &str, a: Option<i64>, k: &str) -> anyhow::Result<String> {
        guildhall::payments::Sandbox.refund(p, a, k)
    }
    fn create_payout_account(&self, k: &str) -> anyhow::Result<String> {
        guildhall::payments::Sandbox.create_payout_account(k)
    }
    fn onboarding_link(&self, a: &str) -> anyhow::Result<String> {
        guildhall::payments::Sandbox.onboarding_link(a)
    }
    fn payout_account_ready(&self, a: &str) -> anyhow::Result<bool> {
        guildhall::payments::Sandbox.payout_account_ready(a)
    }
    fn transfer(
        &self,
        amount: i64,
        c: &str,
        d: &str,
        g: &str,
        key: &str,
    ) -> anyhow::Result<String> {
        self.calls.lock().unwrap().push(key.to_owned());
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            anyhow::bail!("gateway timeout");
        }
        guildhall::payments::Sandbox.transfer(amount, c, d, g, key)
    }
}

#[actix_web::test]
async fn payouts_pay_ready_payees_once_and_retry_with_the_same_key() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let project = app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.paid_and_accepted(&requester, &helper, "proj", "Pay me out", 10_000)
        .await;

    let gateway = FlakyTransfers {
        fail: std::sync::atomic::AtomicUsize::new(1),
        calls: Default::default(),
    };
    // Nobody has a payout account yet: nothing moves.
    assert_eq!(
        guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap(),
        Default::default()
    );
    let o = app
        .post(
            "/api/v1/me/payouts/onboarding",
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(o.body["ready"], true);
    assert!(o.body["url"].as_str().unwrap().starts_with("https://"));
    let again = app
        .post(
            "/api/v1/me/payouts/onboarding",
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(
        again.body["account_id"], o.body["account_id"],
        "one payout account per payee"
    );
    app.post(
        "/api/v1/projects/proj/payouts/onboarding",
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/projects/proj/payouts/onboarding",
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);

    let mut conn = app.conn();
    // The first transfer call fails: the payout stays pending with its hold.
    let first = guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap();
    assert_eq!(
        (first.paid, first.failed),
        (1, 1),
        "the project's 10.00 went out; the helper's failed"
    );
    let helper_acct =
        ledger::account(&mut conn, AccountKind::UserPayable, Some(helper.id), "usd").unwrap();
    assert_eq!(
        (helper_acct.balance(), helper_acct.available()),
        (8_500, 0),
        "reserved while in flight"
    );
    // The retry uses the same idempotency key and pays once.
    let second = guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap();
    assert_eq!((second.paid, second.failed), (1, 0));
    let third = guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap();
    assert_eq!(third, Default::default(), "nothing left to pay");
    let calls = gateway.calls.lock().unwrap().clone();
    let helper_calls: Vec<&String> = calls
        .iter()
        .filter(|k| calls.iter().filter(|c| c == k).count() == 2)
        .collect();
    assert_eq!(
        helper_calls.len(),
        2,
        "the failed payout was retried with the same key: {calls:?}"
    );
    assert_eq!(
        ledger::account(&mut conn, AccountKind::UserPayable, Some(helper.id), "usd")
            .unwrap()
            .balance(),
        0
    );
    let project_id = project["id"].as_i64().unwrap();
    assert_eq!(
        ledger::account(
            &mut conn,
            AccountKind::ProjectRevenue,
            Some(project_id),
            "usd"
        )
        .unwrap()
        .balance(),
        0
    );
    // The platform's fee stays; everything else left through the gateway.
    assert_eq!(
        ledger::clearing_account(&mut conn, "sandbox", "usd")
            .unwrap()
            .balance(),
        -500
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
    drop(conn);
    assert_eq!(
        app.get("/api/v1/me/balance", Some(&helper.access))
            .await
            .body["items"][0]["available"],
        0
    );
}

#[actix_web::test]
async fn concurrent_payout_runs_pay_once() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.paid_and_accepted(&requester, &helper, "proj", "Concurrent payouts", 4_000)
        .await;
    app.post(
        "/api/v1/me/payouts/onboarding",
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    let paid: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let pool = app.pool.clone();
                s.spawn(move || {
                    guildhall::domain::payouts::run(&pool, &guildhall::payments::Sandbox, 1000)
                        .map(|r| r.paid)
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(paid, 1, "one runner records the payout");
    use diesel::prelude::*;
    use guildhall::db::schema::payouts;
    let rows: Vec<(String, i64)> = payouts::table
        .select((payouts::status, payouts::amount))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(
        rows,
        vec![("paid".to_owned(), 3_400)],
        "one payout of the helper's 34.00"
    );
    let mut conn = app.conn();
    assert_eq!(
        ledger::account(&mut conn, AccountKind::UserPayable, Some(helper.id), "usd")
            .unwrap()
            .balance(),
        0
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}

#[actix_web::test]
async fn expired_bounties_go_back_to_their_backers() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    let backer = app.user("backer").await;
    app.project(&owner, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Expiring money", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "usd", "expires_in_days": 0}),
        Some(&backer.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 1_000, "currency": "usd", "expires_in_days": 3}),
            Some(&backer.access),
        )
        .await
        .expect(201);
    assert!(r.body["bounty"]["expires_at"].is_string());
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 2_000, "currency": "usd"}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::bounties;
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
        diesel::update(bounties::table.filter(bounties::expires_at.is_not_null()))
            .set(bounties::expires_at.eq(Some(past)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    use guildhall_jobs::BackgroundJob as _;
    guildhall::jobs::ExpireBounties
        .enqueue(&mut app.conn())
        .unwrap();
    app.run_jobs();
    let b = app
        .get(&format!("/api/v1/tickets/{id}/bounties"), None)
        .await
        .body;
    assert_eq!(
        (b[0]["status"].as_str(), b[1]["status"].as_str()),
        (Some("refunded"), Some("funded"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}"), None).await.body["paid"]["amount"],
        2_000
    );
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn payouts_go_out_per_ticket_and_never_pay_a_ticket_twice() {
    use diesel::prelude::*;
    use guildhall::db::schema::payouts as po;
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let first = app
        .paid_and_accepted(&requester, &helper, "proj", "First", 10_000)
        .await;
    let second = app
        .paid_and_accepted(&requester, &helper, "proj", "Second", 5_000)
        .await;
    app.post(
        "/api/v1/me/payouts/onboarding",
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    let gateway = guildhall::payments::Sandbox;
    let helper_payouts =
        |conn: &mut guildhall::db::DbConnection| -> Vec<(Option<i64>, i64, String)> {
            let acct =
                ledger::account(conn, AccountKind::UserPayable, Some(helper.id), "usd").unwrap();
            po::table
                .filter(po::ledger_account_id.eq(acct.id))
                .select((po::ticket_id, po::amount, po::status))
                .order(po::id)
                .load(conn)
                .unwrap()
        };
    let mut conn = app.conn();
    let report = guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap();
    assert_eq!(report.paid, 2);
    assert_eq!(
        helper_payouts(&mut conn),
        vec![
            (Some(first), 8_500, "paid".to_owned()),
            (Some(second), 4_250, "paid".to_owned()),
        ]
    );
    drop(conn);
    // A later ticket is paid on its own; the earlier ones are not paid again.
    let third = app
        .paid_and_accepted(&requester, &helper, "proj", "Third", 2_000)
        .await;
    let mut conn = app.conn();
    let report = guildhall::domain::payouts::run(&app.pool, &gateway, 1000).unwrap();
    assert_eq!(report.paid, 1);
    assert_eq!(
        helper_payouts(&mut conn).last().unwrap(),
        &(Some(third), 1_700, "paid".to_owned())
    );
    assert_eq!(helper_payouts(&mut conn).len(), 3);
    assert_eq!(
        ledger::account(&mut conn, AccountKind::UserPayable, Some(helper.id), "usd")
            .unwrap()
            .balance(),
        0
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}

#[actix_web::test]
async fn accept_and_cancel_take_an_idempotency_key() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .funded_and_resolved(&requester, &helper, "proj", "Accept once", 10_000)
        .await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let post = |path: String, key: &str| {
        TestRequest::default()
            .method(Method::POST)
            .uri(&path)
            .insert_header(("authorization", format!("Bearer {}", requester.access)))
            .insert_header(("idempotency-key", key.to_owned()))
            .set_json(json!({}))
    };
    let first = app
        .send(&svc, post(format!("/api/v1/tickets/{id}/accept"), "acc-1"))
        .await
        .expect(200);
    // A retry of the same accept (a lost answer) gets the same answer, not 409.
    let again = app
        .send(&svc, post(format!("/api/v1/tickets/{id}/accept"), "acc-1"))
        .await
        .expect(200);
    assert_eq!(first.body, again.body);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    // Without the key a second accept is a conflict, as before.
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    // The same key on another request is refused.
    let other = app
        .open_ticket(&requester, "proj", "Cancel me", "public")
        .await;
    let r = app
        .send(
            &svc,
            post(format!("/api/v1/tickets/{other}/cancel"), "acc-1"),
        )
        .await
        .expect(422);
    assert!(r.text.contains("idempotency_mismatch"), "{}", r.text);
    app.send(
        &svc,
        post(format!("/api/v1/tickets/{other}/cancel"), "can-1"),
    )
    .await
    .expect(200);
    let balance = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(
        balance.body["items"][0]["available"], 8_500,
        "released once"
    );
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}
