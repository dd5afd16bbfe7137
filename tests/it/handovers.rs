//! Handing a project over (issue 13 §5): proposed by the maintainer of
//! record, accepted by the new one, applied at its date only when the new
//! maintainer proved their rights on the repository and has a payout account
//! ready; revenue earned before goes to the outgoing maintainer and revenue
//! after to the new one; subscribers are told; reversible for 14 days; every
//! step audit-logged and the ledger clean throughout.

use crate::util::{TestApp, User};
use diesel::prelude::*;
use guildhall::integrations::github::UserRepository;
use serde_json::{json, Value};

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
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

fn repo(full_name: &str, admin: bool, maintain: bool) -> UserRepository {
    UserRepository {
        id: 77,
        node_id: "R_77".into(),
        full_name: full_name.into(),
        admin,
        maintain,
        private: false,
        license: Some("MIT".into()),
    }
}

fn mails_with(app: &TestApp, needle: &str) -> usize {
    let outbox = app.state.config.data_dir.join("outbox");
    std::fs::read_dir(&outbox)
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter(|m| m.contains(needle))
                .count()
        })
        .unwrap_or(0)
}

async fn propose(app: &TestApp, by: &User, to: &User, at: &str) -> crate::util::Resp {
    app.post(
        "/api/v1/projects/proj/handovers",
        json!({"to_user_id": to.id, "effective_at": at}),
        Some(&by.access),
    )
    .await
}

/// What the every-minute job does.
fn apply_due(app: &TestApp) {
    guildhall::domain::handovers::apply_due(&mut app.conn(), "sandbox").unwrap();
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339()
}

fn steward(app: &TestApp) -> Option<i64> {
    use guildhall::db::schema::projects as p;
    p::table
        .filter(p::slug.eq("proj"))
        .select(p::steward_id)
        .first(&mut app.conn())
        .unwrap()
}

fn maintainers(app: &TestApp, project: i64) -> Vec<i64> {
    guildhall::domain::projects::maintainers(&mut app.conn(), project).unwrap()
}

/// Proposes, accepts, proves and onboards, then runs the jobs; returns the
/// handover as the API shows it.
async fn hand_over(app: &TestApp, from: &User, to: &User) -> Value {
    let h = propose(app, from, to, &now_rfc3339())
        .await
        .expect(201)
        .body;
    let id = h["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/handovers/{id}/accept"),
        json!({}),
        Some(&to.access),
    )
    .await
    .expect(200);
    guildhall::domain::handovers::record_repo_proof(
        &mut app.conn(),
        id,
        to.id,
        &repo("x/proj", false, true),
    )
    .unwrap();
    app.post("/api/v1/me/payouts/onboarding", json!({}), Some(&to.access))
        .await
        .expect(200);
    apply_due(app);
    app.run_jobs();
    app.get(&format!("/api/v1/handovers/{id}"), Some(&to.access))
        .await
        .expect(200)
        .body
}

#[actix_web::test]
async fn a_handover_moves_the_revenue_from_its_date_and_can_be_reversed() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let heir = app.user("heir").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let stranger = app.user("stranger").await;
    let project = app.project(&owner, "proj").await["id"].as_i64().unwrap();
    // Notices go to proved addresses only.
    for u in [&owner, &heir, &requester] {
        crate::notifications::verify(&app, u);
    }
    app.approved_helper(&owner, &helper, "proj").await;
    // Revenue earned under the owner.
    app.paid_and_accepted(&requester, &helper, "proj", "Before the handover", 10_000)
        .await;
    let revenue = format!("project_revenue:{project}:usd");
    let earned_before = balance(&app, &revenue);
    assert!(earned_before > 0);
    // A subscriber, to be told.
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"}}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/projects/proj/subscriptions",
        json!({"plan_id": plan, "context": "professional"}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    let earned_before = balance(&app, &revenue).max(earned_before);

    // Refusals: nothing is written.
    propose(&app, &helper, &heir, &now_rfc3339())
        .await
        .expect(403);
    propose(&app, &owner, &owner, &now_rfc3339())
        .await
        .expect(422);
    propose(&app, &owner, &heir, "2020-01-01T00:00:00Z")
        .await
        .expect(422);
    let far = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    propose(&app, &owner, &heir, &far).await.expect(422);
    app.post(
        "/api/v1/projects/proj/handovers",
        json!({"to_user_id": heir.id + 1000, "effective_at": now_rfc3339()}),
        Some(&owner.access),
    )
    .await
    .expect(422);

    // A first handover fails: the heir is not ready.
    let h = propose(&app, &owner, &heir, &now_rfc3339())
        .await
        .expect(201)
        .body;
    let first = h["id"].as_i64().unwrap();
    assert_eq!(h["status"], "proposed");
    assert_eq!(h["missing"].as_array().unwrap().len(), 3, "{h}");
    propose(&app, &owner, &heir, &now_rfc3339())
        .await
        .expect(409);
    app.get(
        &format!("/api/v1/handovers/{first}"),
        Some(&stranger.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/handovers/{first}/accept"),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/handovers/{first}/accept"),
        json!({}),
        Some(&heir.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/handovers/{first}/accept"),
        json!({}),
        Some(&heir.access),
    )
    .await
    .expect(409);
    // At its date it waits for the heir to be ready; a week on, it fails.
    apply_due(&app);
    let waiting = app
        .get(&format!("/api/v1/handovers/{first}"), Some(&owner.access))
        .await
        .expect(200)
        .body;
    assert_eq!(waiting["status"], "accepted");
    {
        use guildhall::db::schema::handovers as ho;
        diesel::update(ho::table.find(first))
            .set(ho::effective_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::days(8)))
            .execute(&mut app.conn())
            .unwrap();
    }
    apply_due(&app);
    app.run_jobs();
    assert!(mails_with(&app, "would hand") >= 1, "the heir was told");
    let h = app
        .get(&format!("/api/v1/handovers/{first}"), Some(&owner.access))
        .await
        .expect(200)
        .body;
    assert_eq!(h["status"], "failed");
    assert!(
        h["failure"].as_str().unwrap().contains("payout account"),
        "{h}"
    );
    assert_eq!(steward(&app), None);
    assert_eq!(balance(&app, &revenue), earned_before, "nothing moved");

    // The proof must name the project's repository and show the rights.
    let second = propose(&app, &owner, &heir, &now_rfc3339())
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let mut conn = app.conn();
    assert!(guildhall::domain::handovers::record_repo_proof(
        &mut conn,
        second,
        heir.id,
        &repo("other/repo", true, true)
    )
    .is_err());
    assert!(guildhall::domain::handovers::record_repo_proof(
        &mut conn,
        second,
        heir.id,
        &repo("x/proj", false, false)
    )
    .is_err());
    assert!(guildhall::domain::handovers::record_repo_proof(
        &mut conn,
        second,
        owner.id,
        &repo("x/proj", true, true)
    )
    .is_err());
    drop(conn);
    app.post(
        &format!("/api/v1/handovers/{second}/cancel"),
        json!({}),
        Some(&stranger.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/handovers/{second}/cancel"),
        json!({}),
        Some(&heir.access),
    )
    .await
    .expect(200);

    // The real one.
    let h = hand_over(&app, &owner, &heir).await;
    let id = h["id"].as_i64().unwrap();
    assert_eq!(h["status"], "applied", "{h}");
    assert!(h["reversible_until"].is_string());
    assert_eq!(steward(&app), Some(heir.id));
    assert_eq!(maintainers(&app, project), vec![heir.id]);
    assert_eq!(
        balance(&app, &revenue),
        0,
        "what was earned before left the project"
    );
    assert_eq!(
        balance(&app, &format!("user_payable:{}:usd", owner.id)),
        earned_before,
        "and went to the outgoing maintainer"
    );
    assert!(
        mails_with(&app, "has a new maintainer") >= 1,
        "the subscriber was told"
    );
    assert_ledger_clean(&app);
    // It cannot be handed on while it can still be reversed.
    propose(&app, &heir, &stranger, &now_rfc3339())
        .await
        .expect(409);
    // The project's payout account is the maintainer of record's to set.
    app.post(
        "/api/v1/projects/proj/payouts/onboarding",
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(403);
    // The heir runs it now; the owner no longer does.
    app.post(
        "/api/v1/projects/proj/plans",
        json!({"kind": "monthly", "name": "Solo", "price": {"amount": 1900, "currency": "usd"}}),
        Some(&owner.access),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/projects/proj/plans",
        json!({"kind": "monthly", "name": "Solo", "price": {"amount": 1900, "currency": "usd"}}),
        Some(&heir.access),
    )
    .await
    .expect(201);

    // Revenue after the date is the heir's: paid out to their account.
    app.paid_and_accepted(&requester, &helper, "proj", "After the handover", 10_000)
        .await;
    let earned_after = balance(&app, &revenue);
    assert!(earned_after > 0);
    let report =
        guildhall::domain::payouts::run(&app.pool, &guildhall::payments::Sandbox, 1).unwrap();
    assert!(report.paid >= 1, "{report:?}");
    {
        use guildhall::db::schema::{payout_accounts as pa, payouts as po};
        let to: Vec<(String, i64)> = po::table
            .inner_join(pa::table.on(pa::id.eq(po::payout_account_id)))
            .filter(
                po::ledger_account_id.eq(guildhall::ledger::account(
                    &mut app.conn(),
                    guildhall::ledger::AccountKind::ProjectRevenue,
                    Some(project),
                    "usd",
                )
                .unwrap()
                .id),
            )
            .select((pa::payee_kind, pa::payee_id))
            .load(&mut app.conn())
            .unwrap();
        assert_eq!(to, vec![("user".to_owned(), heir.id)]);
    }
    assert_ledger_clean(&app);

    // Reversal: a stranger cannot; the owner can, within 14 days.
    app.post(
        &format!("/api/v1/handovers/{id}/reverse"),
        json!({}),
        Some(&stranger.access),
    )
    .await
    .expect(404);
    let r = app
        .post(
            &format!("/api/v1/handovers/{id}/reverse"),
            json!({}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "reversed");
    assert_eq!(steward(&app), None);
    assert_eq!(maintainers(&app, project), vec![owner.id]);
    app.post(
        &format!("/api/v1/handovers/{id}/reverse"),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(409);
    assert_ledger_clean(&app);

    // Past 14 days an applied handover stays.
    let h = hand_over(&app, &owner, &heir).await;
    let late = h["id"].as_i64().unwrap();
    assert_eq!(h["status"], "applied");
    {
        use guildhall::db::schema::handovers as ho;
        diesel::update(ho::table.find(late))
            .set(ho::applied_at.eq(Some(
                chrono::Utc::now().naive_utc() - chrono::Duration::days(15),
            )))
            .execute(&mut app.conn())
            .unwrap();
    }
    app.post(
        &format!("/api/v1/handovers/{late}/reverse"),
        json!({}),
        Some(&heir.access),
    )
    .await
    .expect(409);

    let actions: Vec<String> = {
        use guildhall::db::schema::audit_log as al;
        al::table
            .filter(al::target_type.eq("handover"))
            .order(al::id)
            .select(al::action)
            .load(&mut app.conn())
            .unwrap()
    };
    for a in [
        "handover.propose",
        "handover.accept",
        "handover.fail",
        "handover.cancel",
        "handover.verify_repository",
        "handover.apply",
        "handover.reverse",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    let mine = app
        .get("/api/v1/me/handovers", Some(&heir.access))
        .await
        .expect(200);
    assert_eq!(mine.body.as_array().unwrap().len(), 4);
    app.get("/api/v1/projects/proj/handovers", Some(&helper.access))
        .await
        .expect(403);
    assert_ledger_clean(&app);
}
