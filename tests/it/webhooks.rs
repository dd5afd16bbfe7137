//! Stripe webhooks: signatures, exactly-once application, disputes.
//! Event bodies are built from Stripe's published fixtures
//! (tests/fixtures/stripe/fixtures3.json).

use crate::util::{AwaitingWebhook, TestApp};
use actix_web::test::TestRequest;
use guildhall::ledger::{self, AccountKind};
use guildhall::payments::stripe_webhook::sign;
use serde_json::{json, Value};
use std::sync::Arc;

const SECRET: &str = "whsec_test_secret";

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe/fixtures3.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(
    fx: &Value,
    id: &str,
    kind: &str,
    object_kind: &str,
    object_id: &str,
    payment_intent: &str,
) -> Value {
    let mut e = fx["resources"]["event"].clone();
    let mut object = fx["resources"][object_kind].clone();
    object["id"] = json!(object_id);
    if object_kind != "payment_intent" {
        object["payment_intent"] = json!(payment_intent);
    }
    if object_kind == "charge" {
        // What Stripe sends once the whole 100.00 charge was refunded.
        object["amount"] = json!(10_000);
        object["amount_refunded"] = json!(10_000);
        object["refunded"] = json!(true);
    }
    e["id"] = json!(id);
    e["type"] = json!(kind);
    e["data"]["object"] = object;
    e
}

fn delivery(body: &Value, t: i64, secret: &str) -> TestRequest {
    let raw = serde_json::to_vec(body).unwrap();
    let sig = sign(secret.as_bytes(), t, &raw);
    TestRequest::post()
        .uri("/api/v1/webhooks/stripe")
        .insert_header(("stripe-signature", format!("t={t},v1={sig}")))
        .insert_header(("content-type", "application/json"))
        .set_payload(raw)
}

async fn setup() -> (TestApp, crate::util::User, crate::util::User, i64, String) {
    let mut app = TestApp::builder()
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", SECRET)
        .build();
    app.state.gateway = Arc::new(AwaitingWebhook);
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.verify_project("proj");
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Paid by card", "public")
        .await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 10_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["bounty"]["status"], "pending_payment");
    assert_eq!(r.body["payment"]["status"], "requires_action");
    assert_eq!(
        r.body["payment"]["client_secret"],
        "pi_secret_for_the_browser"
    );
    let bounty = r.body["bounty"]["id"].as_i64().unwrap();
    (
        app,
        helper,
        requester,
        id,
        format!("pi_test_bounty_{bounty}"),
    )
}

#[actix_web::test]
async fn duplicate_and_concurrent_deliveries_apply_once() {
    let (app, _, _, id, pi) = setup().await;
    let fx = fixtures();
    let now = chrono::Utc::now().timestamp();
    let paid = succeeded(&fx, "evt_paid", &pi);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let deliveries = (0..50).map(|_| app.send(&svc, delivery(&paid, now, SECRET)));
    let results = futures_util::future::join_all(deliveries).await;
    assert!(
        results.iter().all(|r| r.status.as_u16() == 200),
        "{:?}",
        results.iter().map(|r| r.text.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.body["outcome"] == "bounty funded")
            .count(),
        1
    );
    // Another event about the same payment intent funds nothing more.
    let again = succeeded(&fx, "evt_paid_twice", &pi);
    let r = app
        .send(&svc, delivery(&again, now, SECRET))
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "nothing to fund");
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["paid"]["amount"], 10_000);
    let mut conn = app.conn();
    assert_eq!(
        ledger::account(&mut conn, AccountKind::TicketEscrow, Some(id), "usd")
            .unwrap()
            .balance(),
        10_000
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());

    // A refund reported by Stripe returns the escrow to the clearing account, once.
    drop(conn);
    let refunded = event(&fx, "evt_refund", "charge.refunded", "charge", "ch_1", &pi);
    assert_eq!(
        app.send(&svc, delivery(&refunded, now, SECRET))
            .await
            .expect(200)
            .body["outcome"],
        "bounty refunded"
    );
    assert_eq!(
        app.send(&svc, delivery(&refunded, now, SECRET))
            .await
            .expect(200)
            .body["outcome"],
        "duplicate delivery; already applied"
    );
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}"), None).await.body["paid"]["amount"],
        0
    );
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn bad_deliveries_are_400_and_apply_nothing() {
    let (app, _, _, id, pi) = setup().await;
    let fx = fixtures();
    let now = chrono::Utc::now().timestamp();
    let ev = succeeded(&fx, "evt_x", &pi);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let r = app
        .send(&svc, delivery(&ev, now, "whsec_wrong"))
        .await
        .expect(400);
    assert_eq!(r.body["code"], "invalid_signature");
    app.send(&svc, delivery(&ev, now - 301, SECRET))
        .await
        .expect(400);
    let raw = serde_json::to_vec(&ev).unwrap();
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/webhooks/stripe")
            .set_payload(raw.clone()),
    )
    .await
    .expect(400);
    // A tampered body with the original signature.
    let sig = sign(SECRET.as_bytes(), now, &raw);
    let mut tampered = ev.clone();
    tampered["data"]["object"]["amount"] = json!(1);
    let req = TestRequest::post()
        .uri("/api/v1/webhooks/stripe")
        .insert_header(("stripe-signature", format!("t={now},v1={sig}")))
        .set_payload(serde_json::to_vec(&tampered).unwrap());
    app.send(&svc, req).await.expect(400);
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}/bounties"), None)
            .await
            .body[0]["status"],
        "pending_payment"
    );
    use diesel::prelude::*;
    let events: i64 = guildhall::db::schema::stripe_events::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(events, 0);
    // Not configured → 404.
    let plain = TestApp::new();
    plain
        .post("/api/v1/webhooks/stripe", json!({}), None)
        .await
        .expect(404);
}

#[actix_web::test]
async fn a_dispute_freezes_the_escrow_it_funded() {
    let (app, helper, requester, id, pi) = setup().await;
    let fx = fixtures();
    let now = chrono::Utc::now().timestamp();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    app.send(&svc, delivery(&succeeded(&fx, "evt_ok", &pi), now, SECRET))
        .await
        .expect(200);
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
    let r = app
        .send(
            &svc,
            delivery(
                &event(
                    &fx,
                    "evt_dispute",
                    "charge.dispute.created",
                    "dispute",
                    "dp_1",
                    &pi,
                ),
                now,
                SECRET,
            ),
        )
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "escrow frozen");
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "account_frozen");
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{id}"), None).await.body["status"],
        "resolved",
        "nothing half-written"
    );
    assert_eq!(
        app.get("/api/v1/me/balance", Some(&helper.access))
            .await
            .body["items"],
        json!([])
    );
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

/// 50 requests race on one funded, resolved ticket: accepts (release),
/// closes (refund), and charge.refunded deliveries (some duplicates). Exactly
/// one of release or refund happens, once; no money is created or lost.
#[actix_web::test]
async fn accepts_refunds_and_webhooks_racing_on_one_ticket_move_money_once() {
    let (app, helper, requester, id, pi) = setup().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let now = chrono::Utc::now().timestamp();
    let paid = succeeded(&fx, "evt_paid", &pi);
    app.send(&svc, delivery(&paid, now, SECRET))
        .await
        .expect(200);
    for step in ["claim", "resolve"] {
        app.post(
            &format!("/api/v1/tickets/{id}/{step}"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    }
    let refund_events: Vec<Value> = (0..5)
        .map(|i| {
            event(
                &fx,
                &format!("evt_refund_{i}"),
                "charge.refunded",
                "charge",
                "ch_1",
                &pi,
            )
        })
        .collect();
    let mut racers = Vec::new();
    for i in 0..50 {
        let req = match i % 3 {
            0 => TestRequest::post()
                .uri(&format!("/api/v1/tickets/{id}/accept"))
                .insert_header(("authorization", format!("Bearer {}", requester.access)))
                .set_json(json!({})),
            1 => TestRequest::post()
                .uri(&format!("/api/v1/tickets/{id}/close"))
                .insert_header(("authorization", format!("Bearer {}", requester.access)))
                .set_json(json!({"reason": "changed my mind"})),
            _ => delivery(&refund_events[i % 5], now, SECRET),
        };
        racers.push(app.send(&svc, req));
    }
    let results = futures_util::future::join_all(racers).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r.status.as_u16(), 200 | 409)),
        "{:?}",
        results
            .iter()
            .map(|r| (r.status, r.text.clone()))
            .collect::<Vec<_>>()
    );
    let mut conn = app.conn();
    let escrow = ledger::account(&mut conn, AccountKind::TicketEscrow, Some(id), "usd").unwrap();
    assert_eq!(escrow.balance(), 0, "the escrow was emptied exactly once");
    let helper_acct =
        ledger::account(&mut conn, AccountKind::UserPayable, Some(helper.id), "usd").unwrap();
    let clearing = ledger::clearing_account(&mut conn, "stripe", "usd").unwrap();
    match helper_acct.balance() {
        // Released: the payer's 100.00 is split, nothing went back.
        8_500 => assert_eq!(clearing.balance(), -10_000),
        // Refunded: the clearing account is square, nobody was paid.
        0 => assert_eq!(clearing.balance(), 0),
        other => panic!("helper holds {other}: money moved twice or partly"),
    }
    let applied: i64 = {
        use diesel::prelude::*;
        use guildhall::db::schema::stripe_events as se;
        se::table
            .filter(se::event_type.eq("charge.refunded"))
            .count()
            .get_result(&mut conn)
            .unwrap()
    };
    assert_eq!(applied, 5, "each event id recorded once");
    // A refund that Stripe reports after the money was released to the
    // helper cannot come out of the escrow: ledger check asks a person to
    // look at each such event, and reports nothing else.
    let violations = ledger::check(&mut conn).unwrap();
    assert!(
        violations
            .iter()
            .all(|v| v.ends_with("refund after release; needs review")),
        "{violations:?}"
    );
    if helper_acct.balance() == 0 {
        assert_eq!(violations, Vec::<String>::new());
    }
}

/// `payment_intent.succeeded` for `pi`, as event `id`.
fn succeeded(fx: &Value, id: &str, pi: &str) -> Value {
    event(fx, id, "payment_intent.succeeded", "payment_intent", pi, pi)
}

/// Sends one signed event through the app and returns its outcome.
async fn deliver<S, B>(app: &TestApp, svc: &S, body: &Value) -> String
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let now = chrono::Utc::now().timestamp();
    let r = app.send(svc, delivery(body, now, SECRET)).await.expect(200);
    r.body["outcome"].as_str().unwrap_or_default().to_owned()
}

fn escrow_of(app: &TestApp, ticket: i64) -> i64 {
    let mut conn = app.conn();
    ledger::account(&mut conn, AccountKind::TicketEscrow, Some(ticket), "usd")
        .unwrap()
        .balance()
}

fn paid_amount(app: &TestApp, ticket: i64) -> i64 {
    use diesel::prelude::*;
    use guildhall::db::schema::tickets;
    tickets::table
        .find(ticket)
        .select(tickets::paid_amount)
        .first(&mut app.conn())
        .unwrap()
}

fn bounty_row(app: &TestApp, ticket: i64) -> (String, i64, Option<String>) {
    use diesel::prelude::*;
    use guildhall::db::schema::bounties as b;
    b::table
        .filter(b::ticket_id.eq(ticket))
        .order(b::id.desc())
        .select((b::status, b::refunded_amount, b::dispute_status))
        .first(&mut app.conn())
        .unwrap()
}

fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

/// Issue 9 §2.2: a payment that succeeds after its ticket was cancelled is
/// booked and refunded at once, never left in a dead ticket's escrow.
#[actix_web::test]
async fn money_arriving_for_a_cancelled_ticket_is_refunded_at_once() {
    let (app, _, requester, id, pi) = setup().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    app.post(
        &format!("/api/v1/tickets/{id}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    let paid = succeeded(&fx, "evt_late", &pi);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    assert_eq!(escrow_of(&app, id), 0);
    assert_eq!(paid_amount(&app, id), 0);
    assert_eq!(bounty_row(&app, id).0, "refunded");
    // The refund goes back through the gateway: its job is queued with the
    // booking.
    use diesel::prelude::*;
    use guildhall_jobs::schema::background_jobs as bj;
    let queued: Vec<String> = bj::table
        .filter(bj::job_type.eq("refund_payment"))
        .select(bj::data)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].contains("\"amount\":10000"), "{queued:?}");
    assert_ledger_clean(&app);
}

/// Issue 9 §2.3: a partial refund moves only what was refunded; the rest
/// stays in escrow and is released on accept.
#[actix_web::test]
async fn a_partial_refund_moves_only_the_refunded_part() {
    let (app, helper, requester, id, pi) = setup().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let paid = succeeded(&fx, "evt_paid", &pi);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    let mut partial = event(&fx, "evt_re_1", "charge.refunded", "charge", "ch_1", &pi);
    partial["data"]["object"]["amount_refunded"] = json!(100);
    partial["data"]["object"]["refunded"] = json!(false);
    assert_eq!(
        deliver(&app, &svc, &partial).await,
        "bounty partly refunded"
    );
    assert_eq!(
        deliver(&app, &svc, &partial).await,
        "duplicate delivery; already applied"
    );
    assert_eq!(escrow_of(&app, id), 9_900);
    assert_eq!(paid_amount(&app, id), 9_900);
    assert_eq!(bounty_row(&app, id), ("funded".into(), 100, None));
    // A second refund event reports the cumulative total: 300 in all.
    let mut more = partial.clone();
    more["id"] = json!("evt_re_2");
    more["data"]["object"]["amount_refunded"] = json!(300);
    assert_eq!(deliver(&app, &svc, &more).await, "bounty partly refunded");
    assert_eq!(escrow_of(&app, id), 9_700);
    assert_ledger_clean(&app);
    for (who, step) in [
        (&helper, "claim"),
        (&helper, "resolve"),
        (&requester, "accept"),
    ] {
        app.post(
            &format!("/api/v1/tickets/{id}/{step}"),
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    let b = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    // 9,700 released: 5% platform (485), 10% commission (970), helper the rest.
    assert_eq!(b.body["items"][0]["available"], 9_700 - 485 - 970);
    assert_eq!(escrow_of(&app, id), 0);
    assert_eq!(paid_amount(&app, id), 0);
    assert_ledger_clean(&app);
}

/// Issue 9 §2.4: accepting a bid paid by card assigns nothing until the
/// money arrives; a failed payment leaves the ticket open and the bid
/// acceptable; a success after the failure is booked.
#[actix_web::test]
async fn a_card_paid_bid_assigns_only_when_the_money_arrives() {
    let mut app = TestApp::builder()
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", SECRET)
        .build();
    app.state.gateway = Arc::new(AwaitingWebhook);
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.verify_project("proj");
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Bid by card", "public")
        .await;
    let bid = app
        .post(
            &format!("/api/v1/tickets/{id}/bids"),
            json!({"amount": 10_000, "currency": "usd", "eta_hours": 4, "message": "on it"}),
            Some(&helper.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/bids/{bid}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["payment"]["status"], "requires_action");
    let bounty = r.body["bounty"]["id"].as_i64().unwrap();
    let pi = format!("pi_test_bounty_{bounty}");
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["status"], "open", "no helper before the money");
    assert_eq!(t.body["claimed_by"], json!(null));

    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let failed = event(
        &fx,
        "evt_fail",
        "payment_intent.payment_failed",
        "payment_intent",
        &pi,
        &pi,
    );
    assert_eq!(deliver(&app, &svc, &failed).await, "bounty payment failed");
    let bids = app
        .get(
            &format!("/api/v1/tickets/{id}/bids"),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(bids.body[0]["status"], "open", "{}", bids.body);
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["status"], "open");

    // The card went through after all.
    let paid = succeeded(&fx, "evt_paid_late", &pi);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["status"], "claimed");
    assert_eq!(t.body["claimed_by"], helper.id);
    let bids = app
        .get(
            &format!("/api/v1/tickets/{id}/bids"),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(bids.body[0]["status"], "accepted");
    assert_eq!(escrow_of(&app, id), 10_000);
    assert_eq!(paid_amount(&app, id), 10_000);
    assert_ledger_clean(&app);
}

/// Issue 9 §2.10: a dispute that is won thaws the escrow; one that is lost
/// takes the disputed amount out of it, and the bounty says so.
#[actix_web::test]
async fn disputes_end_won_or_lost() {
    let (app, helper, requester, id, pi) = setup().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let paid = succeeded(&fx, "evt_paid", &pi);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    let mut opened = event(
        &fx,
        "evt_dp_1",
        "charge.dispute.created",
        "dispute",
        "dp_1",
        &pi,
    );
    opened["data"]["object"]["amount"] = json!(10_000);
    assert_eq!(deliver(&app, &svc, &opened).await, "escrow frozen");
    for (who, step) in [(&helper, "claim"), (&helper, "resolve")] {
        app.post(
            &format!("/api/v1/tickets/{id}/{step}"),
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    let mut won = opened.clone();
    won["id"] = json!("evt_dp_won");
    won["type"] = json!("charge.dispute.closed");
    won["data"]["object"]["status"] = json!("won");
    assert_eq!(
        deliver(&app, &svc, &won).await,
        "dispute won; escrow released from the freeze"
    );
    assert_eq!(bounty_row(&app, id).2.as_deref(), Some("won"));
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    assert_ledger_clean(&app);

    // A second ticket whose dispute is lost: 4,000 of 10,000 go back.
    let id2 = app
        .open_ticket(&requester, "proj", "Disputed and lost", "public")
        .await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{id2}/bounties"),
            json!({"amount": 10_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
    let pi2 = format!("pi_test_bounty_{}", r.body["bounty"]["id"]);
    let paid = succeeded(&fx, "evt_paid_2", &pi2);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    let mut opened = event(
        &fx,
        "evt_dp_2",
        "charge.dispute.created",
        "dispute",
        "dp_2",
        &pi2,
    );
    opened["data"]["object"]["amount"] = json!(4_000);
    assert_eq!(deliver(&app, &svc, &opened).await, "escrow frozen");
    let mut lost = opened.clone();
    lost["id"] = json!("evt_dp_lost");
    lost["type"] = json!("charge.dispute.closed");
    lost["data"]["object"]["status"] = json!("lost");
    assert_eq!(
        deliver(&app, &svc, &lost).await,
        "dispute lost; the disputed amount left the escrow"
    );
    assert_eq!(escrow_of(&app, id2), 6_000);
    assert_eq!(paid_amount(&app, id2), 6_000);
    assert_eq!(
        bounty_row(&app, id2),
        ("funded".into(), 4_000, Some("lost".into()))
    );
    assert_eq!(
        deliver(&app, &svc, &lost).await,
        "duplicate delivery; already applied"
    );
    // Not frozen any more: cancelling refunds the remaining 6,000.
    app.post(
        &format!("/api/v1/tickets/{id2}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    assert_eq!(escrow_of(&app, id2), 0);
    assert_eq!(bounty_row(&app, id2).0, "refunded");
    assert_ledger_clean(&app);
}

/// Shrunk from the model test: a bidder whose card payment is pending
/// makes a newer offer, then the payment fails. The failure is booked (not
/// a 409 the gateway would retry for ever), the newer offer stands and the
/// accepted one is withdrawn. And a bidder who claimed and resolved the
/// ticket while their payment was pending keeps the money when it arrives.
#[actix_web::test]
async fn card_paid_bids_meet_newer_offers_and_bidders_who_hold_the_ticket() {
    let mut app = TestApp::builder()
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", SECRET)
        .build();
    app.state.gateway = Arc::new(AwaitingWebhook);
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.verify_project("proj");
    app.approved_helper(&owner, &helper, "proj").await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let offer =
        |amount: i64| json!({"amount": amount, "currency": "usd", "eta_hours": 4, "message": "me"});

    let id = app
        .open_ticket(&requester, "proj", "Newer offer", "public")
        .await;
    let bids_path = format!("/api/v1/tickets/{id}/bids");
    let first = app
        .post(&bids_path, offer(2_000), Some(&helper.access))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/bids/{first}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    let pi = format!("pi_test_bounty_{}", r.body["bounty"]["id"]);
    let newer = app
        .post(&bids_path, offer(100), Some(&helper.access))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let failed = event(
        &fx,
        "evt_f",
        "payment_intent.payment_failed",
        "payment_intent",
        &pi,
        &pi,
    );
    assert_eq!(deliver(&app, &svc, &failed).await, "bounty payment failed");
    let bids = app
        .get(&bids_path, Some(&requester.access))
        .await
        .expect(200)
        .body;
    let status_of = |bid: i64| {
        bids.as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == bid)
            .map(|b| b["status"].clone())
            .unwrap()
    };
    assert_eq!(
        (status_of(first), status_of(newer)),
        (json!("withdrawn"), json!("open"))
    );

    let id2 = app
        .open_ticket(&requester, "proj", "Bidder holds it", "public")
        .await;
    let bid = app
        .post(
            &format!("/api/v1/tickets/{id2}/bids"),
            offer(999),
            Some(&helper.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/bids/{bid}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    let pi2 = format!("pi_test_bounty_{}", r.body["bounty"]["id"]);
    for step in ["claim", "resolve"] {
        app.post(
            &format!("/api/v1/tickets/{id2}/{step}"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    }
    let paid = succeeded(&fx, "evt_p", &pi2);
    assert_eq!(deliver(&app, &svc, &paid).await, "bounty funded");
    assert_eq!(escrow_of(&app, id2), 999);
    assert_eq!(bounty_row(&app, id2).0, "funded");
    app.post(
        &format!("/api/v1/tickets/{id2}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    assert_eq!(escrow_of(&app, id2), 0);
    assert_ledger_clean(&app);
}

/// A Stripe-mode world: a project with a helper, a requester, a signed
/// webhook endpoint, and the app's service.
async fn card_world() -> (
    TestApp,
    crate::util::User,
    crate::util::User,
    crate::util::User,
) {
    let mut app = TestApp::builder()
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", SECRET)
        .build();
    app.state.gateway = Arc::new(AwaitingWebhook);
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.verify_project("proj");
    app.approved_helper(&owner, &helper, "proj").await;
    (app, owner, helper, requester)
}

/// Funds a bounty by card on `ticket` and returns its PaymentIntent id.
async fn card_bounty(app: &TestApp, who: &crate::util::User, ticket: i64, amount: i64) -> String {
    let r = app
        .post(
            &format!("/api/v1/tickets/{ticket}/bounties"),
            json!({"amount": amount, "currency": "usd"}),
            Some(&who.access),
        )
        .await
        .expect(201);
    format!("pi_test_bounty_{}", r.body["bounty"]["id"])
}

fn refund_event(fx: &Value, id: &str, pi: &str, total: i64) -> Value {
    let mut e = event(fx, id, "charge.refunded", "charge", "ch_x", pi);
    e["data"]["object"]["amount_refunded"] = json!(total);
    e
}

fn dispute_event(fx: &Value, id: &str, kind: &str, pi: &str, amount: i64, status: &str) -> Value {
    let mut e = event(fx, id, kind, "dispute", "dp_x", pi);
    e["data"]["object"]["amount"] = json!(amount);
    e["data"]["object"]["status"] = json!(status);
    e
}

/// Review findings on webhook order: a refund during another bounty's
/// dispute is booked; a refund or dispute before the success waits for it
/// (503, retried by Stripe); a dispute closed before it was opened is
/// booked and the late opening freezes nothing; a dispute on money already
/// released freezes nothing and, lost, is reported by ledger check.
#[actix_web::test]
async fn webhooks_out_of_order_and_during_disputes_keep_the_books_right() {
    let (app, _, helper, requester) = card_world().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let paid = |id: &str, pi: &str| {
        event(
            &fx,
            id,
            "payment_intent.succeeded",
            "payment_intent",
            pi,
            pi,
        )
    };

    // Two backers; the first disputes; the second is refunded at Stripe.
    let t = app
        .open_ticket(&requester, "proj", "Two backers", "public")
        .await;
    let other = app.user("other").await;
    let pi1 = card_bounty(&app, &requester, t, 4_000).await;
    let pi2 = card_bounty(&app, &other, t, 6_000).await;
    assert_eq!(
        deliver(&app, &svc, &paid("e1", &pi1)).await,
        "bounty funded"
    );
    assert_eq!(
        deliver(&app, &svc, &paid("e2", &pi2)).await,
        "bounty funded"
    );
    let opened = dispute_event(
        &fx,
        "d1",
        "charge.dispute.created",
        &pi1,
        4_000,
        "needs_response",
    );
    assert_eq!(deliver(&app, &svc, &opened).await, "escrow frozen");
    assert_eq!(
        deliver(&app, &svc, &refund_event(&fx, "r2", &pi2, 6_000)).await,
        "bounty refunded"
    );
    assert_eq!(escrow_of(&app, t), 4_000);
    assert_eq!(paid_amount(&app, t), 4_000);
    assert_ledger_clean(&app);

    // A refund before its success: refused until the success is booked.
    let t2 = app
        .open_ticket(&requester, "proj", "Refund first", "public")
        .await;
    let pi3 = card_bounty(&app, &requester, t2, 5_000).await;
    let now = chrono::Utc::now().timestamp();
    let early = refund_event(&fx, "r3", &pi3, 5_000);
    app.send(&svc, delivery(&early, now, SECRET))
        .await
        .expect(503);
    assert_eq!(
        deliver(&app, &svc, &paid("e3", &pi3)).await,
        "bounty funded"
    );
    assert_eq!(deliver(&app, &svc, &early).await, "bounty refunded");
    assert_eq!(escrow_of(&app, t2), 0);
    assert_ledger_clean(&app);

    // A dispute closed (lost) before it was opened.
    let t3 = app
        .open_ticket(&requester, "proj", "Closed first", "public")
        .await;
    let pi4 = card_bounty(&app, &requester, t3, 3_000).await;
    assert_eq!(
        deliver(&app, &svc, &paid("e4", &pi4)).await,
        "bounty funded"
    );
    let closed = dispute_event(&fx, "d4c", "charge.dispute.closed", &pi4, 1_000, "lost");
    assert_eq!(
        deliver(&app, &svc, &closed).await,
        "dispute lost; the disputed amount left the escrow"
    );
    let late = dispute_event(
        &fx,
        "d4o",
        "charge.dispute.created",
        &pi4,
        1_000,
        "needs_response",
    );
    assert_eq!(deliver(&app, &svc, &late).await, "dispute already recorded");
    assert_eq!(escrow_of(&app, t3), 2_000);
    for (who, step) in [
        (&helper, "claim"),
        (&helper, "resolve"),
        (&requester, "accept"),
    ] {
        app.post(
            &format!("/api/v1/tickets/{t3}/{step}"),
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    assert_ledger_clean(&app);

    // A dispute on released money: no freeze; lost, it needs a person.
    let opened = dispute_event(
        &fx,
        "d5o",
        "charge.dispute.created",
        &pi4,
        2_000,
        "needs_response",
    );
    assert_eq!(
        deliver(&app, &svc, &opened).await,
        "dispute already recorded",
        "the bounty's dispute was closed already"
    );
    let t4 = app
        .open_ticket(&requester, "proj", "Released then disputed", "public")
        .await;
    let pi5 = card_bounty(&app, &requester, t4, 2_500).await;
    assert_eq!(
        deliver(&app, &svc, &paid("e5", &pi5)).await,
        "bounty funded"
    );
    for (who, step) in [
        (&helper, "claim"),
        (&helper, "resolve"),
        (&requester, "accept"),
    ] {
        app.post(
            &format!("/api/v1/tickets/{t4}/{step}"),
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    let opened = dispute_event(
        &fx,
        "d6o",
        "charge.dispute.created",
        &pi5,
        2_500,
        "needs_response",
    );
    assert_eq!(
        deliver(&app, &svc, &opened).await,
        "dispute recorded; nothing in escrow to freeze"
    );
    let lost = dispute_event(&fx, "d6c", "charge.dispute.closed", &pi5, 2_500, "lost");
    assert_eq!(
        deliver(&app, &svc, &lost).await,
        "dispute lost after release; needs review"
    );
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        ["payment event d6c: dispute lost after release; needs review"]
    );
}

/// Review findings on bids and keys: an accepted bid whose earlier payment
/// succeeds after a newer one keeps one price, the other goes back; a rival
/// helper may not close an open ticket backers paid for; a request key
/// reused for another ticket is refused.
#[actix_web::test]
async fn a_bid_is_paid_once_and_paid_tickets_are_not_a_rivals_to_close() {
    let (app, owner, helper, requester) = card_world().await;
    let rival = app.user("rival").await;
    app.approved_helper(&owner, &rival, "proj").await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let t = app
        .open_ticket(&requester, "proj", "Paid twice?", "public")
        .await;
    let bid = app
        .post(
            &format!("/api/v1/tickets/{t}/bids"),
            json!({"amount": 3_000, "currency": "usd", "eta_hours": 2, "message": "me"}),
            Some(&helper.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let accept_path = format!("/api/v1/bids/{bid}/accept");
    let accept = || app.post(&accept_path, json!({}), Some(&requester.access));
    let pi1 = format!(
        "pi_test_bounty_{}",
        accept().await.expect(200).body["bounty"]["id"]
    );
    let failed = event(
        &fx,
        "f1",
        "payment_intent.payment_failed",
        "payment_intent",
        &pi1,
        &pi1,
    );
    assert_eq!(deliver(&app, &svc, &failed).await, "bounty payment failed");
    let pi2 = format!(
        "pi_test_bounty_{}",
        accept().await.expect(200).body["bounty"]["id"]
    );
    let ok = |id: &str, pi: &str| {
        event(
            &fx,
            id,
            "payment_intent.succeeded",
            "payment_intent",
            pi,
            pi,
        )
    };
    assert_eq!(deliver(&app, &svc, &ok("s2", &pi2)).await, "bounty funded");
    assert_eq!(deliver(&app, &svc, &ok("s1", &pi1)).await, "bounty funded");
    assert_eq!(escrow_of(&app, t), 3_000, "the bid's price once");
    assert_ledger_clean(&app);

    // Open, with money on it: not a rival's to close.
    let t2 = app
        .open_ticket(&requester, "proj", "Funded queue item", "public")
        .await;
    let pi = card_bounty(&app, &requester, t2, 1_000).await;
    assert_eq!(deliver(&app, &svc, &ok("s3", &pi)).await, "bounty funded");
    app.post(
        &format!("/api/v1/tickets/{t2}/close"),
        json!({}),
        Some(&rival.access),
    )
    .await
    .expect(403);
    assert_eq!(escrow_of(&app, t2), 1_000);

    // A key that made a bounty on one ticket is no key for another.
    let t3 = app
        .open_ticket(&requester, "proj", "Key reuse", "public")
        .await;
    let with_key = |ticket: i64| {
        TestRequest::post()
            .uri(&format!("/api/v1/tickets/{ticket}/bounties"))
            .insert_header(("authorization", format!("Bearer {}", requester.access)))
            .insert_header(("idempotency-key", "same-key"))
            .set_json(json!({"amount": 1_000, "currency": "usd"}))
    };
    app.send(&svc, with_key(t2)).await.expect(201);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::idempotency_keys as ik;
        diesel::delete(ik::table).execute(&mut app.conn()).unwrap();
    }
    app.send(&svc, with_key(t3)).await.expect(422);
    assert_eq!(escrow_of(&app, t3), 0);
}

/// Review finding: two partial refunds of one charge delivered at once both
/// count (each computes its part under the ticket's lock).
#[actix_web::test]
async fn concurrent_partial_refunds_both_count() {
    let (app, _, _, requester) = card_world().await;
    let fx = fixtures();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let t = app
        .open_ticket(&requester, "proj", "Two refunds", "public")
        .await;
    let pi = card_bounty(&app, &requester, t, 10_000).await;
    let ok = succeeded(&fx, "s", &pi);
    assert_eq!(deliver(&app, &svc, &ok).await, "bounty funded");
    let now = chrono::Utc::now().timestamp();
    let (a, b) = futures_util::future::join(
        app.send(
            &svc,
            delivery(&refund_event(&fx, "r1", &pi, 1_000), now, SECRET),
        ),
        app.send(
            &svc,
            delivery(&refund_event(&fx, "r2", &pi, 3_000), now, SECRET),
        ),
    )
    .await;
    assert_eq!(
        (a.status.as_u16(), b.status.as_u16()),
        (200, 200),
        "{} {}",
        a.text,
        b.text
    );
    assert_eq!(escrow_of(&app, t), 7_000);
    assert_eq!(bounty_row(&app, t).1, 3_000);
    assert_ledger_clean(&app);
}
