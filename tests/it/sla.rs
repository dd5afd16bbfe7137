//! Service levels of enterprise tickets (issue 13 §2): clocks in business
//! time that pause while the ticket waits on the requester, the team's
//! warning, the breach with its service credit in the ledger, and the
//! credit taken off the next charge.

use crate::util::TestApp;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use guildhall::db::schema::{
    sla_clocks as sc, subscriptions as su, ticket_events as te, ticket_messages as tm, tickets as t,
};
use guildhall::domain::{plans, sla};
use serde_json::json;

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
}

fn clocks(app: &TestApp, ticket: i64) -> Vec<sla::Clock> {
    sla::of_ticket(&mut app.conn(), ticket).unwrap()
}

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn an_enterprise_ticket_breaches_in_business_time_and_is_credited() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let biz = app.user("biz").await;
    let small = app.user("small").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    // Monday to Friday, 09:00–17:00 UTC.
    app.put_json(
        "/api/v1/projects/proj/calendar",
        json!({"time_zone": "UTC", "working_days": [1, 2, 3, 4, 5],
               "hours": {"start": "09:00", "end": "17:00"}, "holidays": []}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "enterprise", "name": "Enterprise", "price": {"amount": 100000, "currency": "usd"},
                   "response_hours": 4, "service_credit_pct": 10}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let sub = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": plan, "context": "professional"}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body["subscription"]["id"]
        .as_i64()
        .unwrap();
    let id = app
        .open_ticket(&biz, "proj", "Production index corrupt", "public")
        .await;
    let plain = app
        .open_ticket(&small, "proj", "A question without a plan", "public")
        .await;

    // The clock starts at submission; other tickets have none.
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!(s.started, 1);
    let c = &clocks(&app, id)[0];
    assert_eq!(c.kind, "first_response");
    let submitted: NaiveDateTime = t::table
        .find(id)
        .select(t::submitted_at.assume_not_null())
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(c.started_at, submitted);
    let pid = guildhall::domain::projects::by_slug(&mut app.conn(), "proj")
        .unwrap()
        .id;
    let cal = guildhall::domain::calendar::of_project(&mut app.conn(), pid).unwrap();
    assert_eq!(
        c.due_at,
        cal.add_business_minutes(submitted.and_utc(), 240)
            .unwrap()
            .naive_utc()
    );
    assert!(clocks(&app, plain).is_empty());

    // In business time: submitted on a Friday at 15:00, four business
    // hours run out on Monday at 11:00 (the weekend does not count).
    {
        let mut conn = app.conn();
        diesel::delete(sc::table).execute(&mut conn).unwrap();
        let friday = at(2026, 11, 27, 15, 0);
        diesel::update(t::table.find(id))
            .set(t::submitted_at.eq(Some(friday)))
            .execute(&mut conn)
            .unwrap();
        diesel::update(su::table.find(sub))
            .set(su::created_at.eq(at(2026, 11, 1, 0, 0)))
            .execute(&mut conn)
            .unwrap();
    }
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!((s.started, s.breached), (1, 1));
    let c = &clocks(&app, id)[0];
    assert_eq!(c.due_at, at(2026, 11, 30, 11, 0));
    assert!(c.breached_at.is_some() && c.closed_at.is_none());
    // 10% of a month's fee, booked once however often the sweep runs.
    assert_eq!(c.credit_amount, 10_000);
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().breached, 0);
    // The requester's ticket page says so.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &biz.email).await;
    let page = b.get(&format!("/t/{id}")).await.expect(200);
    assert!(
        page.text.contains("the guaranteed response time passed at 2026-11-30 11:00 UTC; a service credit of 100.00 USD was booked"),
        "{}",
        page.text
    );
    let s_row = plans::get_subscription(&mut app.conn(), sub).unwrap();
    assert_eq!(
        plans::service_credit_left(&mut app.conn(), &s_row).unwrap(),
        10_000
    );
    let told: i64 = te::table
        .filter(te::ticket_id.eq(id))
        .filter(te::action.eq("sla_breach"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(told, 1, "the requester is told once");
    let mine = app
        .get("/api/v1/me/subscriptions", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(mine.body[0]["service_credit"]["amount"], 10_000);
    assert_ledger_clean(&app);

    // The team answers (late): the clock stops; the ticket now waits on
    // the requester and no clock runs, however long that takes.
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Looking at it: which version?", "internal": false}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!((s.stopped, s.started), (1, 0));
    let c = &clocks(&app, id)[0];
    assert_eq!(c.closed_reason.as_deref(), Some("responded"));
    // An internal note is not a response, nor is it the requester's turn.
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "note to self", "internal": true}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    assert_eq!(sla::sweep(&mut app.conn()).unwrap(), sla::Swept::default());

    // The requester replies (any channel writes the same message): the
    // next-response clock starts at the reply.
    let reply = app
        .post(
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"body": "Version 0.22, on Linux.", "internal": false}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().started, 1);
    let c = clocks(&app, id).pop().unwrap();
    let replied: NaiveDateTime = tm::table
        .find(reply)
        .select(tm::created_at)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!((c.kind.as_str(), c.started_at), ("next_response", replied));

    // Close to the deadline the team is warned (only the team hears it).
    diesel::update(sc::table.find(c.id))
        .set(sc::warn_at.eq(guildhall::domain::now() - chrono::Duration::minutes(1)))
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().warned, 1);
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().warned, 0, "once");
    // The team answers in time: met.
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Fixed in 0.22.1.", "internal": false}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!((s.stopped, s.breached), (1, 0));
    let c = clocks(&app, id).pop().unwrap();
    assert!(c.breached_at.is_none() && c.closed_reason.as_deref() == Some("responded"));
    // Of two guarantees decided, one was met.
    assert_eq!(
        sla::share_met(
            &mut app.conn(),
            pid,
            at(2020, 1, 1, 0, 0),
            at(2100, 1, 1, 0, 0)
        )
        .unwrap(),
        (2, 1)
    );
    assert_ledger_clean(&app);

    // The pages say it: the project's measured figure, the dashboard's
    // share per period.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut o = crate::web::signed_in(&app, svc, &owner.email).await;
    let page = o.get("/p/proj").await.expect(200);
    assert!(
        page.text.contains("kept: <strong>1 of 2</strong> (50%)"),
        "{}",
        page.text
    );
    let dash = o
        .get("/p/proj/dashboard?from=2026-11-01&to=2027-12-31")
        .await
        .expect(200);
    assert!(
        dash.text.contains("1 of 2 guaranteed responses in time"),
        "{}",
        dash.text
    );
    assert!(dash.text.contains("<td>2026-11</td>") && dash.text.contains("0 of 1 (0%)"));

    // The credit comes off the next charge: six months less 100.00.
    {
        let past = guildhall::domain::now() - chrono::Duration::minutes(1);
        diesel::update(su::table.find(sub))
            .set(su::period_end.eq(Some(past)))
            .execute(&mut app.conn())
            .unwrap();
    }
    assert_eq!(
        plans::renew_due(&app.pool, &guildhall::payments::Sandbox).unwrap(),
        1
    );
    let p2 = plans::period(&mut app.conn(), sub, 2).unwrap().unwrap();
    assert_eq!(
        (p2.status.as_str(), p2.amount, p2.credit_applied),
        ("paid", 590_000, 10_000)
    );
    let s_row = plans::get_subscription(&mut app.conn(), sub).unwrap();
    assert_eq!(
        plans::service_credit_left(&mut app.conn(), &s_row).unwrap(),
        0
    );
    assert_ledger_clean(&app);
}

#[actix_web::test]
async fn unused_service_credit_lapses_with_the_subscription() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    app.project(&owner, "proj").await;
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "enterprise", "name": "Enterprise", "price": {"amount": 50000, "currency": "usd"},
                   "response_hours": 1}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let sub = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": plan, "context": "personal"}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body["subscription"]["id"]
        .as_i64()
        .unwrap();
    let id = app
        .open_ticket(&biz, "proj", "Nobody answers", "public")
        .await;
    sla::sweep(&mut app.conn()).unwrap();
    diesel::update(sc::table.filter(sc::ticket_id.eq(id)))
        .set(sc::due_at.eq(guildhall::domain::now() - chrono::Duration::minutes(1)))
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().breached, 1);
    // The breach is the requester's and the team's business, not the
    // public's (the ticket is public).
    let public = app
        .get(&format!("/api/v1/tickets/{id}/events"), None)
        .await
        .expect(200);
    assert!(!public.text.contains("sla_"), "{}", public.text);
    let own = app
        .get(&format!("/api/v1/tickets/{id}/events"), Some(&biz.access))
        .await
        .expect(200);
    assert!(own.text.contains("sla_breach"));
    // Cancelled, then the paid term runs out: the credit lapses.
    app.post(
        &format!("/api/v1/subscriptions/{sub}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(200);
    let past = guildhall::domain::now() - chrono::Duration::minutes(1);
    diesel::update(su::table.find(sub))
        .set(su::period_end.eq(Some(past)))
        .execute(&mut app.conn())
        .unwrap();
    plans::renew_due(&app.pool, &guildhall::payments::Sandbox).unwrap();
    let s = plans::get_subscription(&mut app.conn(), sub).unwrap();
    assert_eq!(s.status, "cancelled");
    assert_eq!(plans::service_credit_left(&mut app.conn(), &s).unwrap(), 0);
    // The ticket's clock ends when it leaves the queue unanswered.
    app.post(
        &format!("/api/v1/tickets/{id}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(200);
    sla::sweep(&mut app.conn()).unwrap();
    assert_eq!(clocks(&app, id)[0].closed_reason.as_deref(), Some("ended"));
    assert_ledger_clean(&app);
}

#[actix_web::test]
async fn late_sweeps_and_ended_subscriptions_do_not_breach() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    app.project(&owner, "proj").await;
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "enterprise", "name": "Enterprise", "price": {"amount": 50000, "currency": "usd"},
                   "response_hours": 8}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let sub = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": plan, "context": "personal"}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body["subscription"]["id"]
        .as_i64()
        .unwrap();
    let a = app
        .open_ticket(&biz, "proj", "Withdrawn in time", "public")
        .await;
    let b = app
        .open_ticket(&biz, "proj", "Outlives the plan", "public")
        .await;
    assert_eq!(sla::sweep(&mut app.conn()).unwrap().started, 2);
    // A is cancelled ten minutes ago, before its deadline five minutes ago;
    // the sweep runs only now: no breach.
    app.post(
        &format!("/api/v1/tickets/{a}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(200);
    {
        let now = guildhall::domain::now();
        let mut conn = app.conn();
        diesel::update(t::table.find(a))
            .set((
                t::closed_at.eq(Some(now - chrono::Duration::minutes(10))),
                t::updated_at.eq(now - chrono::Duration::minutes(10)),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::update(sc::table.filter(sc::ticket_id.eq(a)))
            .set(sc::due_at.eq(now - chrono::Duration::minutes(5)))
            .execute(&mut conn)
            .unwrap();
    }
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!((s.breached, s.stopped), (0, 1));
    assert_eq!(clocks(&app, a)[0].closed_reason.as_deref(), Some("ended"));
    // The subscription ends; B's guarantee ends with it, and its deadline
    // passing later earns nothing.
    app.post(
        &format!("/api/v1/subscriptions/{sub}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(200);
    let past = guildhall::domain::now() - chrono::Duration::minutes(1);
    diesel::update(su::table.find(sub))
        .set(su::period_end.eq(Some(past)))
        .execute(&mut app.conn())
        .unwrap();
    plans::renew_due(&app.pool, &guildhall::payments::Sandbox).unwrap();
    let s = sla::sweep(&mut app.conn()).unwrap();
    assert_eq!((s.breached, s.stopped, s.started), (0, 1, 0));
    let c = &clocks(&app, b)[0];
    assert_eq!(c.closed_reason.as_deref(), Some("ended"));
    assert_eq!(c.credit_amount, 0);
    assert_ledger_clean(&app);
}
