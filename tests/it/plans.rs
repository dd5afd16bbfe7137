//! Plans, subscriptions, their periods and credits, and ticket upgrades
//! (issue 13 §1): through the API on the sandbox gateway, and the renewal
//! job's paths (renewed, refused then lapsed, cancelled) against the
//! ledger.

use crate::util::{Declining, TestApp, User};
use diesel::prelude::*;
use guildhall::domain::plans;
use guildhall::ledger;
use guildhall::payments::Sandbox;
use serde_json::{json, Value};

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new(),
        "ledger check"
    );
}

fn fields(r: &Value) -> Vec<String> {
    r["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn balance(app: &TestApp, code: &str) -> i64 {
    use guildhall::db::schema::ledger_accounts as la;
    la::table
        .filter(la::code.eq(code))
        .select(la::credits_posted - la::debits_posted)
        .first(&mut app.conn())
        .optional()
        .unwrap()
        .unwrap_or(0)
}

async fn monthly(app: &TestApp, owner: &User, slug: &str) -> i64 {
    app.post(
        &format!("/api/v1/projects/{slug}/plans"),
        json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"},
               "included_upgrades": 2, "upgrade_price": {"amount": 1500, "currency": "usd"},
               "consulting_hours": 1, "floss_discount_pct": 50}),
        Some(&owner.access),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

async fn subscribe(app: &TestApp, who: &User, slug: &str, plan: i64) -> Value {
    app.post(
        &format!("/api/v1/projects/{slug}/subscriptions"),
        json!({"plan_id": plan, "context": "professional"}),
        Some(&who.access),
    )
    .await
    .expect(201)
    .body
}

#[actix_web::test]
async fn maintainers_publish_checked_plans_and_anyone_lists_them() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;

    let r = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "yearly", "name": "", "price": {"amount": 50, "currency": "eur"},
                   "included_upgrades": -1, "upgrade_price": {"amount": 5, "currency": "usd"},
                   "consulting_hours": 161, "floss_discount_pct": 95}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    assert_eq!(
        fields(&r.body),
        [
            "kind",
            "name",
            "price.amount",
            "price.currency",
            "included_upgrades",
            "upgrade_price.amount",
            "consulting_hours",
            "floss_discount_pct"
        ]
    );
    let r = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "enterprise", "name": "Big", "price": {"amount": 100000, "currency": "usd"},
                   "term_months": 3, "service_credit_pct": 101}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    assert_eq!(
        fields(&r.body),
        ["response_hours", "term_months", "service_credit_pct"]
    );
    let r = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "monthly", "name": "M", "price": {"amount": 1000, "currency": "usd"},
                   "response_hours": 8, "term_months": 6}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    assert_eq!(fields(&r.body), ["response_hours", "term_months"]);
    // Unknown fields are refused, not ignored.
    let r = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "monthly", "name": "M", "price": {"amount": 1000, "currency": "usd"}, "free": true}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    assert_eq!(fields(&r.body), ["free"]);

    // Only maintainers publish.
    let body =
        json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"}});
    app.post("/api/v1/projects/proj/plans", body.clone(), None)
        .await
        .expect(401);
    app.post(
        "/api/v1/projects/proj/plans",
        body.clone(),
        Some(&other.access),
    )
    .await
    .expect(403);
    let n: i64 = guildhall::db::schema::plans::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(n, 0, "nothing is written by refused requests");

    let team = monthly(&app, &owner, "proj").await;
    app.post("/api/v1/projects/proj/plans", body, Some(&owner.access))
        .await
        .expect(409);
    let big = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "enterprise", "name": "Enterprise", "price": {"amount": 200000, "currency": "usd"},
                   "response_hours": 8}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(big["term_months"], 6);
    assert_eq!(big["service_credit_pct"], 10);
    assert_eq!(
        big["upgrade_price"],
        json!({"amount": 2500, "currency": "usd"})
    );

    let list = app
        .get("/api/v1/projects/proj/plans", None)
        .await
        .expect(200);
    let kinds: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pay_as_you_go", "monthly", "enterprise"]);
    assert_eq!(list.body[0]["id"], Value::Null);
    assert_eq!(list.body[1]["id"], team);
    assert_eq!(list.body[1]["included_upgrades"], 2);
    app.get("/api/v1/projects/nope/plans", None)
        .await
        .expect(404);

    // The pay-as-you-go price is a project setting.
    let p = app
        .patch(
            "/api/v1/projects/proj",
            json!({"upgrade_price": 3000}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["upgrade_price"]["amount"], 3000);
    app.patch(
        "/api/v1/projects/proj",
        json!({"upgrade_price": 99}),
        Some(&owner.access),
    )
    .await
    .expect(422);
}

#[actix_web::test]
async fn a_subscription_is_paid_split_and_its_upgrades_spent() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;
    let team = monthly(&app, &owner, "proj").await;

    // Refusals write nothing.
    let r = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": team, "context": "professional", "price": 4000}),
            Some(&biz.access),
        )
        .await
        .expect(422);
    assert_eq!(fields(&r.body), ["price"]);
    app.post(
        "/api/v1/projects/proj/subscriptions",
        json!({"plan_id": team, "context": "charity"}),
        Some(&biz.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": team, "context": "floss"}),
            Some(&biz.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "floss_proof_required");
    app.post(
        "/api/v1/projects/proj/subscriptions",
        json!({"plan_id": team + 100, "context": "personal"}),
        Some(&biz.access),
    )
    .await
    .expect(422);
    let n: i64 = guildhall::db::schema::subscriptions::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(n, 0);

    // Paying more than the minimum is allowed.
    let created = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": team, "context": "professional", "price": 6000}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body;
    let sub = &created["subscription"];
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["current_period"], 1);
    assert_eq!(sub["upgrades_left"], 2);
    assert_eq!(sub["consulting_minutes_left"], 60);
    assert_eq!(created["payment"]["status"], "succeeded");
    let sub_id = sub["id"].as_i64().unwrap();
    let project_id: i64 = guildhall::domain::projects::by_slug(&mut app.conn(), "proj")
        .unwrap()
        .id;
    // 5% platform fee; the project (the seller) keeps the rest.
    assert_eq!(
        balance(&app, &format!("project_revenue:{project_id}:usd")),
        5700
    );
    assert_eq!(balance(&app, "platform_revenue:usd"), 300);
    assert_ledger_clean(&app);

    // One live subscription per project.
    let r = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": team, "context": "personal"}),
            Some(&biz.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "already_subscribed");

    // Upgrades: two included, then the plan's price as a bounty.
    let t1 = app
        .open_ticket(&biz, "proj", "first question", "public")
        .await;
    let t2 = app
        .open_ticket(&biz, "proj", "second question", "public")
        .await;
    let t3 = app
        .open_ticket(&biz, "proj", "third question", "public")
        .await;
    let free = app
        .open_ticket(&other, "proj", "a free question", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{t1}/upgrade"),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(403);
    let u = app
        .post(
            &format!("/api/v1/tickets/{t1}/upgrade"),
            json!({}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(u.body["via"], "included");
    assert_eq!(u.body["upgrades_left"], 1);
    app.post(
        &format!("/api/v1/tickets/{t1}/upgrade"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(409);
    let u = app
        .post(
            &format!("/api/v1/tickets/{t2}/upgrade"),
            json!({}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(u.body["upgrades_left"], 0);
    let u = app
        .post(
            &format!("/api/v1/tickets/{t3}/upgrade"),
            json!({}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(u.body["via"], "paid");
    assert_eq!(u.body["bounty"]["amount"]["amount"], 1500);
    assert_eq!(u.body["payment"]["status"], "succeeded");

    // The queue serves the upgraded tickets first, then the paid one, and
    // still keeps the free share.
    let q = app
        .get("/api/v1/projects/proj/queue", Some(&owner.access))
        .await
        .expect(200);
    let order: Vec<i64> = q.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ticket"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [t1, t2, t3, free]);
    assert_eq!(q.body["items"][0]["paid"], true, "an upgrade ranks as paid");
    assert_eq!(q.body["items"][3]["paid"], false);

    let mine = app
        .get("/api/v1/me/subscriptions", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(mine.body[0]["id"], sub_id);
    assert_eq!(mine.body[0]["upgrades_left"], 0);
    assert_eq!(mine.body[0]["project"], "proj");
    assert_eq!(
        app.get("/api/v1/me/subscriptions", Some(&other.access))
            .await
            .expect(200)
            .body,
        json!([])
    );

    // The statement lists the subscription beside the releases.
    let st = app
        .get("/api/v1/projects/proj/statement", Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(st.body["subscription_lines"][0]["amount"], 6000);
    assert_eq!(st.body["subscription_lines"][0]["project_amount"], 5700);
    assert_eq!(st.body["total_subscription_revenue"], 5700);

    // Only the subscriber cancels; it runs to the end of the period.
    app.post(
        &format!("/api/v1/subscriptions/{sub_id}/cancel"),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(404);
    let c = app
        .post(
            &format!("/api/v1/subscriptions/{sub_id}/cancel"),
            json!({}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(c.body["status"], "active");
    assert_eq!(c.body["cancel_at_period_end"], true);
    assert_ledger_clean(&app);
}

/// Moves a subscription's paid period (and grace) into the past, as time
/// passing would.
fn expire_period(app: &TestApp, sub: i64) {
    use guildhall::db::schema::subscriptions as s;
    let past = guildhall::domain::now() - chrono::Duration::minutes(1);
    diesel::update(s::table.find(sub))
        .set(s::period_end.eq(Some(past)))
        .execute(&mut app.conn())
        .unwrap();
}

fn sub_row(app: &TestApp, id: i64) -> plans::Subscription {
    plans::get_subscription(&mut app.conn(), id).unwrap()
}

#[actix_web::test]
async fn renewals_renew_fail_into_grace_lapse_and_refund_late_money() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let c = app.user("carol").await;
    app.project(&owner, "proj").await;
    let team = monthly(&app, &owner, "proj").await;
    let sa = subscribe(&app, &a, "proj", team).await["subscription"]["id"]
        .as_i64()
        .unwrap();
    let sb = subscribe(&app, &b, "proj", team).await["subscription"]["id"]
        .as_i64()
        .unwrap();
    let sc = subscribe(&app, &c, "proj", team).await["subscription"]["id"]
        .as_i64()
        .unwrap();
    // Alice spends one upgrade; Carol cancels.
    let t = app.open_ticket(&a, "proj", "alice asks", "public").await;
    app.post(
        &format!("/api/v1/tickets/{t}/upgrade"),
        json!({}),
        Some(&a.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/subscriptions/{sc}/cancel"),
        json!({}),
        Some(&c.access),
    )
    .await
    .expect(200);

    // Nothing is due yet.
    assert_eq!(plans::renew_due(&app.pool, &Sandbox).unwrap(), 0);

    // Alice renews: the leftover upgrade expires, two new ones arrive.
    expire_period(&app, sa);
    expire_period(&app, sc);
    assert_eq!(plans::renew_due(&app.pool, &Sandbox).unwrap(), 2);
    let s = sub_row(&app, sa);
    assert_eq!((s.status.as_str(), s.current_period), ("active", 2));
    assert_eq!(plans::credits_left(&mut app.conn(), &s).unwrap(), (2, 60));
    // Carol's ends without renewal, her credits expire, nothing is refunded.
    let s = sub_row(&app, sc);
    assert_eq!(s.status, "cancelled");
    assert_eq!(plans::credits_left(&mut app.conn(), &s).unwrap(), (0, 0));
    assert!(plans::period(&mut app.conn(), sc, 2).unwrap().is_none());
    assert_ledger_clean(&app);

    // Bob's card is declined: past due, the plan holds through the grace.
    expire_period(&app, sb);
    assert_eq!(plans::renew_due(&app.pool, &Declining).unwrap(), 1);
    let s = sub_row(&app, sb);
    assert_eq!(s.status, "past_due");
    assert_eq!(s.current_period, 1);
    let p2 = plans::period(&mut app.conn(), sb, 2).unwrap().unwrap();
    assert_eq!(p2.status, "failed");
    assert_eq!(
        s.grace_until,
        Some(p2.starts_at + chrono::Duration::days(plans::GRACE_DAYS))
    );
    let tb = app.open_ticket(&b, "proj", "bob asks", "public").await;
    let u = app
        .post(
            &format!("/api/v1/tickets/{tb}/upgrade"),
            json!({}),
            Some(&b.access),
        )
        .await
        .expect(200);
    assert_eq!(u.body["via"], "included", "the plan holds during the grace");
    // Renewal is not retried during the grace, and nothing is due.
    assert_eq!(plans::renew_due(&app.pool, &Sandbox).unwrap(), 0);

    // The grace ends: Bob lapses to pay as you go.
    {
        use guildhall::db::schema::subscriptions as su;
        let past = guildhall::domain::now() - chrono::Duration::minutes(1);
        diesel::update(su::table.find(sb))
            .set(su::grace_until.eq(Some(past)))
            .execute(&mut app.conn())
            .unwrap();
    }
    assert_eq!(plans::renew_due(&app.pool, &Sandbox).unwrap(), 1);
    let s = sub_row(&app, sb);
    assert_eq!(s.status, "lapsed");
    assert_eq!(plans::credits_left(&mut app.conn(), &s).unwrap(), (0, 0));
    let tb2 = app
        .open_ticket(&b, "proj", "bob asks again", "public")
        .await;
    let u = app
        .post(
            &format!("/api/v1/tickets/{tb2}/upgrade"),
            json!({}),
            Some(&b.access),
        )
        .await
        .expect(200);
    assert_eq!(u.body["via"], "paid");
    assert_eq!(
        u.body["bounty"]["amount"]["amount"], 2500,
        "the project's price"
    );
    assert_ledger_clean(&app);

    // The declined payment succeeds after all (the card was retried at the
    // gateway): booked, and returned at once, since the plan lapsed.
    let payment = p2.payment_id.clone().unwrap();
    let outcome = guildhall::domain::money::apply_payment_event(
        &mut app.conn(),
        "sandbox",
        "evt_late_1",
        "payment_intent.succeeded",
        &guildhall::payments::PaymentEvent::Succeeded {
            payment_id: payment.clone(),
        },
    )
    .unwrap();
    assert_eq!(outcome, "subscription period paid");
    // Delivered twice, applied once.
    let again = guildhall::domain::money::apply_payment_event(
        &mut app.conn(),
        "sandbox",
        "evt_late_1",
        "payment_intent.succeeded",
        &guildhall::payments::PaymentEvent::Succeeded {
            payment_id: payment,
        },
    )
    .unwrap();
    assert_eq!(again, "duplicate delivery; already applied");
    let p2 = plans::period(&mut app.conn(), sb, 2).unwrap().unwrap();
    assert_eq!(p2.status, "refunded");
    assert_eq!(sub_row(&app, sb).status, "lapsed");
    app.run_jobs();
    let p2 = plans::period(&mut app.conn(), sb, 2).unwrap().unwrap();
    assert!(
        p2.refund_id.is_some(),
        "the money went back through the gateway"
    );
    assert_ledger_clean(&app);

    // An ended subscription cannot be cancelled again; a new one can start.
    app.post(
        &format!("/api/v1/subscriptions/{sb}/cancel"),
        json!({}),
        Some(&b.access),
    )
    .await
    .expect(409);
    subscribe(&app, &b, "proj", team).await;
    assert_ledger_clean(&app);
}

#[actix_web::test]
async fn concurrent_upgrades_never_spend_more_than_the_period_included() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    app.project(&owner, "proj").await;
    let team = monthly(&app, &owner, "proj").await;
    subscribe(&app, &biz, "proj", team).await;
    let mut tickets = Vec::new();
    for i in 0..6 {
        tickets.push(
            app.open_ticket(&biz, "proj", &format!("question {i}"), "public")
                .await,
        );
    }
    let handles: Vec<_> = tickets
        .iter()
        .map(|&t| {
            let pool = app.pool.clone();
            let user = biz.id;
            std::thread::spawn(move || {
                plans::upgrade(&pool, &Sandbox, t, user, None)
                    .map(|u| matches!(u, plans::Upgrade::Included { .. }))
            })
        })
        .collect();
    let results: Vec<bool> = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("an upgrade failed: {e}"));
    assert_eq!(results.iter().filter(|i| **i).count(), 2);
    assert_eq!(results.iter().filter(|i| !**i).count(), 4);
    let upgraded: i64 = guildhall::db::schema::tickets::table
        .filter(guildhall::db::schema::tickets::upgraded_at.is_not_null())
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(upgraded, 2);
    assert_ledger_clean(&app);

    // Two subscriptions at once for one person and project: one wins.
    let other = app.user("other").await;
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let pool = app.pool.clone();
            let user = other.id;
            std::thread::spawn(move || {
                plans::subscribe(
                    &pool,
                    &Sandbox,
                    500,
                    user,
                    &plans::SubscribeRequest {
                        plan_id: team,
                        context: "personal".into(),
                        price: None,
                    },
                    None,
                )
                .map(|_| ())
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(e) if e.to_string().contains("already have a subscription"))));
    assert_ledger_clean(&app);
}

/// A subscription event as the Stripe webhook delivers it, applied once
/// per event id.
fn event(app: &TestApp, id: &str, e: guildhall::payments::PaymentEvent) -> String {
    guildhall::domain::money::apply_payment_event(&mut app.conn(), "stripe", id, "event", &e)
        .unwrap()
}

fn payment_of(app: &TestApp, sub: i64, n: i32) -> String {
    plans::period(&mut app.conn(), sub, n)
        .unwrap()
        .unwrap()
        .payment_id
        .unwrap()
}

#[actix_web::test]
async fn payments_that_wait_for_the_payer_never_renew_for_free() {
    use crate::util::AwaitingWebhook;
    use guildhall::payments::PaymentEvent::{DisputeOpened, Refunded, Succeeded};
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    let late = app.user("late").await;
    app.project(&owner, "proj").await;
    app.verify_project("proj");
    let team = monthly(&app, &owner, "proj").await;
    let req = plans::SubscribeRequest {
        plan_id: team,
        context: "professional".into(),
        price: None,
    };
    // The first payment waits for the payer's card; its webhook activates.
    let (sub, payment) =
        plans::subscribe(&app.pool, &AwaitingWebhook, 500, biz.id, &req, None).unwrap();
    assert_eq!(sub.status, "pending_payment");
    assert!(payment.client_secret.is_some());
    assert_eq!(
        event(
            &app,
            "evt_1",
            Succeeded {
                payment_id: payment.id.clone()
            }
        ),
        "subscription period paid"
    );
    assert_eq!(sub_row(&app, sub.id).status, "active");

    // The renewal, too, waits for the payer: past due at once, the plan
    // holding through the grace, and not charged again meanwhile.
    expire_period(&app, sub.id);
    assert_eq!(plans::renew_due(&app.pool, &AwaitingWebhook).unwrap(), 1);
    let s = sub_row(&app, sub.id);
    assert_eq!((s.status.as_str(), s.current_period), ("past_due", 1));
    assert!(s.grace_until.is_some());
    assert_eq!(plans::renew_due(&app.pool, &AwaitingWebhook).unwrap(), 0);
    // The payer pays: active for period 2, with its credits.
    let p2 = payment_of(&app, sub.id, 2);
    assert_eq!(
        event(
            &app,
            "evt_2",
            Succeeded {
                payment_id: p2.clone()
            }
        ),
        "subscription period paid"
    );
    let s = sub_row(&app, sub.id);
    assert_eq!((s.status.as_str(), s.current_period), ("active", 2));
    assert_eq!(plans::credits_left(&mut app.conn(), &s).unwrap().0, 2);
    assert_ledger_clean(&app);

    // A first payment nobody completes gives the subscription up after a
    // day; paid later, it is booked and returned.
    let (pending, payment) =
        plans::subscribe(&app.pool, &AwaitingWebhook, 500, late.id, &req, None).unwrap();
    {
        use guildhall::db::schema::subscriptions as su;
        let old = guildhall::domain::now() - chrono::Duration::hours(25);
        diesel::update(su::table.find(pending.id))
            .set(su::created_at.eq(old))
            .execute(&mut app.conn())
            .unwrap();
    }
    assert_eq!(plans::renew_due(&app.pool, &AwaitingWebhook).unwrap(), 1);
    assert_eq!(sub_row(&app, pending.id).status, "failed");
    assert_eq!(
        event(
            &app,
            "evt_3",
            Succeeded {
                payment_id: payment.id.clone()
            }
        ),
        "subscription period paid"
    );
    assert_eq!(
        plans::period(&mut app.conn(), pending.id, 1)
            .unwrap()
            .unwrap()
            .status,
        "refunded"
    );
    // Stripe reports our own refund back: confirmed, nothing to review.
    assert_eq!(
        event(
            &app,
            "evt_4",
            Refunded {
                payment_id: payment.id,
                total_refunded: 4900,
                refund_id: None
            }
        ),
        "subscription period refund confirmed"
    );
    assert_ledger_clean(&app);
    // Someone can subscribe again once the stale attempt failed.
    plans::subscribe(&app.pool, &AwaitingWebhook, 500, late.id, &req, None).unwrap();

    // A refund or dispute made at the gateway on paid revenue is left for a
    // person: ledger check reports it.
    assert_eq!(
        event(
            &app,
            "evt_5",
            DisputeOpened {
                payment_id: p2.clone(),
                amount: 4900
            }
        ),
        "subscription payment disputed; needs review"
    );
    let violations = ledger::check(&mut app.conn()).unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("evt_5") && v.contains("needs review")),
        "{violations:?}"
    );
}
