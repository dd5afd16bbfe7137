//! Regression tests for the money and access defects an audit found
//! (issue 9 §2), each through HTTP; they run on SQLite and, with
//! GUILDHALL_TEST_DATABASE_URL, on PostgreSQL.

use crate::util::{TestApp, User};
use actix_web::test::TestRequest;
use diesel::prelude::*;
use guildhall::db::schema::{bids, idempotency_keys as ik, projects, releases, tickets};
use guildhall::ledger::{self, AccountKind};
use serde_json::json;

fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

fn escrow_of(app: &TestApp, ticket: i64) -> i64 {
    ledger::account(
        &mut app.conn(),
        AccountKind::TicketEscrow,
        Some(ticket),
        "usd",
    )
    .unwrap()
    .balance()
}

fn available(app: &TestApp, user: &User) -> i64 {
    let mut conn = app.conn();
    ledger::account(&mut conn, AccountKind::UserPayable, Some(user.id), "usd")
        .unwrap()
        .available()
}

async fn step(app: &TestApp, who: &User, id: i64, action: &str) -> u16 {
    app.post(
        &format!("/api/v1/tickets/{id}/{action}"),
        json!({}),
        Some(&who.access),
    )
    .await
    .status
    .as_u16()
}

async fn fund(app: &TestApp, who: &User, id: i64, amount: i64) {
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": amount, "currency": "usd"}),
        Some(&who.access),
    )
    .await
    .expect(201);
}

struct World {
    app: TestApp,
    owner: User,
    helper: User,
    rival: User,
    requester: User,
}

async fn world() -> World {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let rival = app.user("rival").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.approved_helper(&owner, &rival, "proj").await;
    World {
        app,
        owner,
        helper,
        rival,
        requester,
    }
}

/// §2.1: a ticket reopened after acceptance starts a new round, is funded
/// by a new backer and paid again; `paid_amount` follows the escrow.
#[actix_web::test]
async fn a_ticket_reopened_after_acceptance_is_paid_again() {
    let w = world().await;
    let (app, helper, requester) = (&w.app, &w.helper, &w.requester);
    let backer = app.user("backer").await;
    let id = app
        .paid_and_accepted(requester, helper, "proj", "Paid twice", 999)
        .await;
    let first = available(app, helper);
    assert_eq!(escrow_of(app, id), 0);
    assert_eq!(step(app, requester, id, "reopen").await, 200);
    fund(app, &backer, id, 2_000).await;
    for (who, action) in [
        (helper, "claim"),
        (helper, "resolve"),
        (requester, "accept"),
    ] {
        assert_eq!(step(app, who, id, action).await, 200, "{action}");
    }
    // 2,000: platform 100, commission 200, helper 1,700.
    assert_eq!(available(app, helper) - first, 1_700);
    assert_eq!(escrow_of(app, id), 0);
    let rounds: Vec<(i32, i64)> = releases::table
        .filter(releases::ticket_id.eq(id))
        .order(releases::round)
        .select((releases::round, releases::amount))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(rounds, [(1, 999), (2, 2_000)]);
    let paid: i64 = tickets::table
        .find(id)
        .select(tickets::paid_amount)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(paid, 0);
    let statement = app
        .get("/api/v1/projects/proj/statement", Some(&w.owner.access))
        .await
        .expect(200);
    assert_eq!(statement.body["lines"].as_array().unwrap().len(), 2);
    assert_eq!(statement.body["lines"][1]["round"], 2);
    assert_ledger_clean(app);
}

/// §2.1: the auto-accept job goes on past a ticket it cannot accept (here:
/// a frozen escrow), and counts the failure.
#[actix_web::test]
async fn auto_accept_goes_on_past_a_bad_ticket() {
    let w = world().await;
    let (app, helper, requester) = (&w.app, &w.helper, &w.requester);
    let bad = app
        .funded_and_resolved(requester, helper, "proj", "Frozen escrow", 1_000)
        .await;
    let good = app
        .funded_and_resolved(requester, helper, "proj", "Fine escrow", 1_000)
        .await;
    {
        let mut conn = app.conn();
        let escrow =
            ledger::account(&mut conn, AccountKind::TicketEscrow, Some(bad), "usd").unwrap();
        ledger::set_frozen(&mut conn, escrow.id, true).unwrap();
        diesel::update(tickets::table.filter(tickets::id.eq_any([bad, good])))
            .set(
                tickets::resolved_at
                    .eq(Some(guildhall::domain::now() - chrono::Duration::days(30))),
            )
            .execute(&mut conn)
            .unwrap();
    }
    let before = guildhall::metrics::job_row_failures("auto_accept_resolutions");
    let accepted = guildhall::domain::tickets::auto_accept_lapsed(&mut app.conn(), 500).unwrap();
    assert_eq!(accepted, 1);
    assert!(guildhall::metrics::job_row_failures("auto_accept_resolutions") > before);
    let status = |id: i64| -> String {
        tickets::table
            .find(id)
            .select(tickets::status)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(status(good), "closed");
    assert_eq!(status(bad), "resolved");
    let metrics = app.get("/metrics", None).await.expect(200);
    assert!(
        metrics
            .text
            .contains("guildhall_job_row_failures_total{job=\"auto_accept_resolutions\"}"),
        "{}",
        metrics.text
    );
}

/// §2.2: bounties racing a cancel never leave money in a cancelled
/// ticket's escrow.
#[actix_web::test]
async fn bounties_racing_a_cancel_leave_nothing_in_a_dead_escrow() {
    let w = world().await;
    let (app, requester) = (&w.app, &w.requester);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    for round in 0..3 {
        let id = app
            .open_ticket(requester, "proj", &format!("Race {round}"), "public")
            .await;
        let mut racers = Vec::new();
        for i in 0..8 {
            let req = if i == 4 {
                TestRequest::post().uri(&format!("/api/v1/tickets/{id}/cancel"))
            } else {
                TestRequest::post()
                    .uri(&format!("/api/v1/tickets/{id}/bounties"))
                    .set_json(json!({"amount": 500, "currency": "usd"}))
            }
            .insert_header(("authorization", format!("Bearer {}", requester.access)));
            racers.push(app.send(&svc, req));
        }
        for r in futures_util::future::join_all(racers).await {
            assert!(
                [200, 201, 409].contains(&r.status.as_u16()),
                "{} {}",
                r.status,
                r.text
            );
        }
        assert_ledger_clean(app);
        // The cancel may have lost the race (409 `ticket_changed`): then the
        // money is rightly held, and a cancel now returns it.
        let status: String = tickets::table
            .find(id)
            .select(tickets::status)
            .first(&mut app.conn())
            .unwrap();
        if status != "cancelled" {
            assert_eq!(step(app, requester, id, "cancel").await, 200);
        }
        assert_eq!(escrow_of(app, id), 0, "round {round}");
        assert_ledger_clean(app);
    }
}

/// §2.5: a ticket is never handed to, resolved by or paid to its requester.
#[actix_web::test]
async fn a_ticket_is_never_handed_to_its_requester() {
    let w = world().await;
    let (app, owner, helper) = (&w.app, &w.owner, &w.helper);
    // The requester is an approved helper of the project too.
    let insider = app.user("insider").await;
    app.approved_helper(owner, &insider, "proj").await;
    let backer = app.user("backer").await;
    let id = app.open_ticket(&insider, "proj", "Mine", "public").await;
    fund(app, &backer, id, 5_000).await;
    assert_eq!(step(app, helper, id, "claim").await, 200);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/transfer"),
            json!({"to_user_id": insider.id}),
            Some(&helper.access),
        )
        .await
        .expect(422);
    assert!(r.text.contains("own requester"), "{}", r.text);
    // Not by a maintainer either.
    app.post(
        &format!("/api/v1/tickets/{id}/transfer"),
        json!({"to_user_id": insider.id}),
        Some(&owner.access),
    )
    .await
    .expect(422);
    assert_eq!(step(app, &insider, id, "claim").await, 403);
    assert_eq!(step(app, &insider, id, "resolve").await, 403);
    assert_eq!(available(app, &insider), 0);
    assert_ledger_clean(app);
}

/// §2.6: revoking a helper withdraws their open bids, and a bid is
/// accepted only while its bidder is approved.
#[actix_web::test]
async fn a_revoked_helpers_bid_cannot_be_accepted() {
    let w = world().await;
    let (app, owner, helper, rival, requester) =
        (&w.app, &w.owner, &w.helper, &w.rival, &w.requester);
    let id = app.open_ticket(requester, "proj", "Bids", "public").await;
    let path = format!("/api/v1/tickets/{id}/bids");
    let offer = json!({"amount": 3_000, "currency": "usd", "eta_hours": 2, "message": "me"});
    let helper_bid = app
        .post(&path, offer.clone(), Some(&helper.access))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let rival_bid = app
        .post(&path, offer, Some(&rival.access))
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let status: String = bids::table
        .find(helper_bid)
        .select(bids::status)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(status, "withdrawn");
    app.post(
        &format!("/api/v1/bids/{helper_bid}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    // Unvetted behind the bid's back (a status changed without revoke): the
    // acceptance re-checks.
    diesel::update(
        guildhall::db::schema::project_helpers::table
            .filter(guildhall::db::schema::project_helpers::user_id.eq(rival.id)),
    )
    .set(guildhall::db::schema::project_helpers::status.eq("revoked"))
    .execute(&mut app.conn())
    .unwrap();
    let r = app
        .post(
            &format!("/api/v1/bids/{rival_bid}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "bidder_not_approved");
    assert_eq!(escrow_of(app, id), 0);
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["status"], "open");
    assert_ledger_clean(app);
}

/// §2.7: every setting's range is checked, and a job meets a corrupt one
/// without panicking.
#[actix_web::test]
async fn acceptance_days_are_validated_and_jobs_survive_corrupt_values() {
    let w = world().await;
    let (app, owner, helper, requester) = (&w.app, &w.owner, &w.helper, &w.requester);
    for bad in [0i64, -5, 61, 2_147_483_647] {
        app.patch(
            "/api/v1/projects/proj",
            json!({"acceptance_days": bad}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    }
    app.patch(
        "/api/v1/projects/proj",
        json!({"acceptance_days": 60}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let id = app
        .funded_and_resolved(requester, helper, "proj", "Corrupt window", 1_000)
        .await;
    diesel::update(projects::table)
        .set((
            projects::acceptance_days.eq(i32::MAX),
            projects::auto_close_days.eq(i32::MAX),
        ))
        .execute(&mut app.conn())
        .unwrap();
    assert_eq!(
        guildhall::domain::tickets::auto_accept_lapsed(&mut app.conn(), 500).unwrap(),
        0
    );
    assert_eq!(
        guildhall::domain::tickets::auto_close_stale(&mut app.conn()).unwrap(),
        0
    );
    let t = app
        .get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(200);
    assert_eq!(t.body["status"], "resolved");
}

/// §2.8: a key whose request died is taken over after its lease instead of
/// answering 409 for ever; a live one still answers 409; a retried bounty
/// finds the bounty its first attempt made.
#[actix_web::test]
async fn an_idempotency_key_of_a_dead_request_is_released_after_its_lease() {
    let w = world().await;
    let (app, requester) = (&w.app, &w.requester);
    let id = app.open_ticket(requester, "proj", "Keys", "public").await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let body = json!({"amount": 1_500, "currency": "usd"});
    let send = |key: &str| {
        TestRequest::post()
            .uri(&format!("/api/v1/tickets/{id}/bounties"))
            .insert_header(("authorization", format!("Bearer {}", requester.access)))
            .insert_header(("idempotency-key", key.to_owned()))
            .set_json(body.clone())
    };
    // The first request died after claiming its key and making its bounty.
    let first = app.send(&svc, send("k-1")).await.expect(201);
    let bounty = first.body["bounty"]["id"].as_i64().unwrap();
    diesel::update(
        ik::table
            .filter(ik::user_id.eq(requester.id))
            .filter(ik::idem_key.eq("k-1")),
    )
    .set((
        ik::status_code.eq(None::<i32>),
        ik::response_body.eq(None::<String>),
        ik::locked_until.eq(Some(
            guildhall::domain::now() + chrono::Duration::seconds(20),
        )),
    ))
    .execute(&mut app.conn())
    .unwrap();
    let r = app.send(&svc, send("k-1")).await.expect(409);
    assert_eq!(r.body["code"], "request_in_progress");
    // Its lease ran out: the retry carries on with the same bounty.
    diesel::update(ik::table.filter(ik::idem_key.eq("k-1")))
        .set(ik::locked_until.eq(Some(
            guildhall::domain::now() - chrono::Duration::seconds(1),
        )))
        .execute(&mut app.conn())
        .unwrap();
    let r = app.send(&svc, send("k-1")).await.expect(201);
    assert_eq!(r.body["bounty"]["id"], bounty);
    assert_eq!(escrow_of(app, id), 1_500, "paid once");
    // And now it replays.
    let r = app.send(&svc, send("k-1")).await.expect(201);
    assert_eq!(r.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(escrow_of(app, id), 1_500);
    assert_ledger_clean(app);
}

/// §2.9: close and reopen of a resolved ticket belong to its requester,
/// its claimant and the project's maintainers, never a rival helper.
#[actix_web::test]
async fn a_rival_helper_cannot_close_or_reopen_a_resolved_ticket() {
    let w = world().await;
    let (app, owner, helper, rival, requester) =
        (&w.app, &w.owner, &w.helper, &w.rival, &w.requester);
    let id = app
        .funded_and_resolved(requester, helper, "proj", "Not yours", 4_000)
        .await;
    assert_eq!(step(app, rival, id, "close").await, 403);
    assert_eq!(step(app, rival, id, "reopen").await, 403);
    assert_eq!(escrow_of(app, id), 4_000);
    // The claimant may take it back; a maintainer may close it.
    assert_eq!(step(app, helper, id, "reopen").await, 200);
    assert_eq!(step(app, rival, id, "close").await, 403);
    assert_eq!(step(app, owner, id, "close").await, 200);
    assert_eq!(escrow_of(app, id), 0);
    // A closed ticket: not the rival's to reopen either.
    assert_eq!(step(app, rival, id, "reopen").await, 403);
    assert_eq!(step(app, requester, id, "reopen").await, 200);
    // An open ticket in the queue: the team may still triage it.
    assert_eq!(step(app, rival, id, "close").await, 200);
    assert_ledger_clean(app);
}

/// `ledger check` finds money stuck in a dead ticket's escrow.
#[actix_web::test]
async fn ledger_check_reports_a_planted_stuck_escrow() {
    let w = world().await;
    let (app, requester) = (&w.app, &w.requester);
    let id = app.open_ticket(requester, "proj", "Stuck", "public").await;
    assert_eq!(step(app, requester, id, "cancel").await, 200);
    assert_ledger_clean(app);
    {
        let mut conn = app.conn();
        let clearing = ledger::clearing_account(&mut conn, "sandbox", "usd").unwrap();
        let escrow =
            ledger::account(&mut conn, AccountKind::TicketEscrow, Some(id), "usd").unwrap();
        ledger::apply(
            &mut conn,
            &[ledger::NewTransfer {
                key: "planted".into(),
                kind: ledger::TransferKind::Posted,
                debit: clearing.id,
                credit: escrow.id,
                amount: 777,
                pending_id: None,
                ticket_id: Some(id),
                memo: "planted by a test".into(),
            }],
        )
        .unwrap();
    }
    let violations = ledger::check(&mut app.conn()).unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v == &format!("ticket {id} is cancelled but its escrow holds 777")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.contains(&format!("ticket {id}: paid_amount 0 differs"))),
        "{violations:?}"
    );
    // And so does the command an operator runs.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUILDHALL_")) {
        cmd.env_remove(k);
    }
    let data = tempfile::tempdir().unwrap();
    let out = cmd
        .args(["ledger", "check"])
        .env("GUILDHALL_DATABASE_URL", &app.state.config.database_url)
        .env("GUILDHALL_DATA_DIR", data.path())
        .output()
        .unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!(
            "ticket {id} is cancelled but its escrow holds 777"
        )),
        "{printed}"
    );
}

/// The smaller findings: CSV injection, unchecked template ids, tag
/// duplicates, invisible titles, control characters in names, currencies.
#[actix_web::test]
async fn input_hygiene() {
    let w = world().await;
    let (app, owner, helper, requester) = (&w.app, &w.owner, &w.helper, &w.requester);
    // A statement cell that would run as a formula is neutralised.
    let id = app.open_ticket(requester, "proj", "=1+2*3", "public").await;
    fund(app, requester, id, 1_000).await;
    for (who, action) in [
        (helper, "claim"),
        (helper, "resolve"),
        (requester, "accept"),
    ] {
        assert_eq!(step(app, who, id, action).await, 200);
    }
    let csv = app
        .get(
            "/api/v1/projects/proj/statement?format=csv",
            Some(&owner.access),
        )
        .await
        .expect(200);
    let line = csv.text.lines().nth(1).unwrap().to_owned();
    assert!(line.contains(",'=1+2*3,"), "{line}");

    // A template id is checked even beside a body.
    let t2 = app
        .open_ticket(requester, "proj", "Templates", "public")
        .await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{t2}/messages"),
            json!({"body": "hello", "template_id": 999_999}),
            Some(&helper.access),
        )
        .await
        .expect(422);
    assert!(r.text.contains("template_id"), "{}", r.text);

    // Tags: each once, whatever their case and wherever they repeat.
    let r = app
        .post(
            "/api/v1/tickets",
            json!({"project": "proj", "title": "Tags", "body": "b", "kind": "question",
                   "visibility": "public", "tags": ["Rust", "async", "rust", "ASYNC", "rust"]}),
            Some(&requester.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["tags"], json!(["rust", "async"]));

    // A title of zero-width spaces is empty.
    app.post(
        "/api/v1/tickets",
        json!({"project": "proj", "title": "\u{200B}\u{200B}\u{200B}\u{FEFF}", "body": "b",
               "kind": "question", "visibility": "public", "tags": []}),
        Some(&requester.access),
    )
    .await
    .expect(422);

    // Display names carry no NUL or bidi override.
    for name in ["nul\u{0}byte", "evil\u{202E}txt.exe", "\u{200B}"] {
        app.post(
            "/api/v1/auth/register",
            json!({"email": "n@example.com", "password": crate::util::PASSWORD, "display_name": name}),
            None,
        )
        .await
        .expect(422);
    }

    // Currencies are ISO 4217.
    for (slug, currency, code) in [("zzz-proj", "zzz", 422), ("eur-proj", "EUR", 201)] {
        app.post(
            "/api/v1/projects",
            json!({"slug": slug, "name": slug, "repo_url": "https://github.com/x/y",
                   "description": "d", "topics": [], "currency": currency}),
            Some(&owner.access),
        )
        .await
        .expect(code);
    }
}

fn from_address(req: TestRequest, addr: &str) -> TestRequest {
    req.peer_addr(addr.parse().unwrap())
}

/// Registration is limited per address; a stranger's wrong passwords never
/// lock the owner out (they are limited per account and address).
#[actix_web::test]
async fn registration_and_login_limits_hit_the_guesser_not_the_owner() {
    let app = TestApp::builder()
        .env("GUILDHALL_REGISTER_MAX_PER_ADDRESS", "3")
        .build();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let register = |i: usize, addr: &str| {
        from_address(
            TestRequest::post()
                .uri("/api/v1/auth/register")
                .set_json(json!({
                    "email": format!("u{i}@example.com"),
                    "password": crate::util::PASSWORD,
                    "display_name": format!("u{i}")
                })),
            addr,
        )
    };
    for i in 0..3 {
        app.send(&svc, register(i, "10.0.0.1:1000"))
            .await
            .expect(201);
    }
    let r = app
        .send(&svc, register(3, "10.0.0.1:1000"))
        .await
        .expect(429);
    assert!(r.header("retry-after").is_some());
    app.send(&svc, register(4, "10.0.0.2:1000"))
        .await
        .expect(201);

    let login = |password: &str, addr: &str| {
        from_address(
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .set_json(json!({"email": "u0@example.com", "password": password})),
            addr,
        )
    };
    for _ in 0..5 {
        app.send(&svc, login("wrong password!", "10.6.6.6:1"))
            .await
            .expect(401);
    }
    app.send(&svc, login("wrong password!", "10.6.6.6:1"))
        .await
        .expect(429);
    app.send(&svc, login(crate::util::PASSWORD, "10.6.6.6:1"))
        .await
        .expect(429);
    // The owner, elsewhere, is slowed at most, never refused.
    app.send(&svc, login(crate::util::PASSWORD, "10.0.0.1:2"))
        .await
        .expect(200);
}
