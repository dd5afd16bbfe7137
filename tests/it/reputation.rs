//! Reputation through HTTP: events derived from what happened, the
//! recompute job, a user's scores with components, a project's leaderboard.

use crate::util::TestApp;
use guildhall_jobs::BackgroundJob as _;
use serde_json::json;

#[actix_web::test]
async fn outcomes_and_endorsements_become_scores_with_components() {
    let app = TestApp::new();
    let maintainer = app.user("maint").await;
    let good = app.user("good").await;
    let shaky = app.user("shaky").await;
    let newcomer = app.user("newcomer").await;
    let requester = app.user("req").await;
    app.project(&maintainer, "proj").await;
    for h in [&good, &shaky, &newcomer] {
        app.approved_helper(&maintainer, h, "proj").await;
    }

    // `good`: answers quickly, two accepted resolutions, one rated 5 stars.
    for (i, amount) in [(1, 5_000), (2, 2_000)] {
        let id = app
            .open_ticket(&requester, "proj", &format!("Good question {i}"), "public")
            .await;
        app.answered_and_accepted(id, &requester, &good, "Here is what to do")
            .await;
        if i == 1 {
            app.post(
                &format!("/api/v1/tickets/{id}/rating"),
                json!({"stars": 5}),
                Some(&requester.access),
            )
            .await
            .expect(200);
        }
        let _ = amount;
    }
    // `shaky`: resolves, is reopened, resolves again and gets 1 star.
    let id = app
        .open_ticket(&requester, "proj", "Shaky one", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&shaky.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({}),
        Some(&shaky.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/reopen"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({}),
        Some(&shaky.access),
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
    app.post(
        &format!("/api/v1/tickets/{id}/rating"),
        json!({"stars": 1}),
        Some(&requester.access),
    )
    .await
    .expect(200);

    // `good` vouches for the newcomer; nobody may vouch for themselves.
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/endorse", newcomer.id),
        json!({}),
        Some(&good.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/endorse", shaky.id),
        json!({}),
        Some(&shaky.access),
    )
    .await
    .expect(422);

    // Before the first recompute there are no scores.
    let r = app
        .get(&format!("/api/v1/users/{}/reputation", good.id), None)
        .await
        .expect(200);
    assert_eq!(r.body["projects"], json!([]));

    guildhall::jobs::RecomputeReputation
        .enqueue(&mut app.conn())
        .unwrap();
    assert!(app.run_jobs() >= 1);

    let rep = |user: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/users/{user}/reputation"), None)
                .await
                .expect(200)
                .body["projects"][0]
                .clone()
        }
    };
    let g = rep(good.id).await;
    let s = rep(shaky.id).await;
    let n = rep(newcomer.id).await;
    assert_eq!(g["label"], "proj");
    assert_eq!(g["events"]["accepted_resolution"], 2);
    assert_eq!(g["events"]["rating"], 1);
    assert_eq!(g["events"]["first_response"], 2);
    assert_eq!(g["events"]["approval"], 1);
    assert_eq!(s["events"]["reopen"], 1);
    assert_eq!(n["events"]["endorsement"], 1);
    assert_eq!(n["outcomes"], 0, "no track record yet");
    assert_eq!(n["endorsements"], 1);
    for v in [&g, &s, &n] {
        let score = v["score"].as_f64().unwrap();
        let q = v["quality"].as_f64().unwrap();
        let t = v["trust"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&score));
        // score = 100 · quality · (1 − β + β · trust), β = 0.3 by default.
        assert!((score - 100.0 * q * (0.7 + 0.3 * t)).abs() < 1e-6, "{v}");
        assert!(v["prior"].as_f64().unwrap() > 0.0);
    }
    let score = |v: &serde_json::Value| v["score"].as_f64().unwrap();
    assert!(score(&g) > score(&s), "good {g} vs shaky {s}");
    assert!(
        n["trust"].as_f64().unwrap() > s["trust"].as_f64().unwrap(),
        "the endorsed newcomer is trusted more than the unendorsed: {n} vs {s}"
    );

    // The leaderboard, paged.
    let board = app
        .get("/api/v1/projects/proj/reputation?limit=2", None)
        .await
        .expect(200);
    let items = board.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["user_id"], good.id);
    assert_eq!(items[0]["label"], "good");
    assert!(score(&items[0]) >= score(&items[1]));
    assert_eq!(board.body["next_offset"], 2);
    let rest = app
        .get("/api/v1/projects/proj/reputation?limit=2&offset=2", None)
        .await
        .expect(200);
    assert_eq!(rest.body["next_offset"], serde_json::Value::Null);
    app.get("/api/v1/projects/proj/reputation?limit=0", None)
        .await
        .expect(422);
    app.get("/api/v1/projects/nope/reputation", None)
        .await
        .expect(404);
    app.get("/api/v1/users/999999/reputation", None)
        .await
        .expect(404);

    // The helper list carries the score.
    let helpers = app
        .get("/api/v1/projects/proj/helpers", None)
        .await
        .expect(200);
    let listed = helpers.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["user_id"] == good.id)
        .unwrap()
        .clone();
    assert!((listed["reputation"].as_f64().unwrap() - score(&g)).abs() < 1e-9);

    // Recomputing derives nothing twice.
    let report =
        guildhall::domain::reputation::recompute(&mut app.conn(), &app.state.config.reputation)
            .unwrap();
    assert_eq!(report.events_added, 0);
    assert_eq!(report.projects, 1);
}

#[actix_web::test]
async fn refunds_and_disputes_count_against_the_helper() {
    let app = TestApp::new();
    let maintainer = app.user("maint").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&maintainer, "proj").await;
    app.approved_helper(&maintainer, &helper, "proj").await;

    // Claimed, then withdrawn by the requester: the bounty goes back.
    let refunded = app
        .open_ticket(&requester, "proj", "Withdrawn", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{refunded}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/tickets/{refunded}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{refunded}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);

    // Resolved, then the payment behind the escrow is disputed.
    let disputed = app
        .funded_and_resolved(&requester, &helper, "proj", "Disputed", 2_000)
        .await;
    {
        let mut conn = app.conn();
        let escrow = guildhall::ledger::account(
            &mut conn,
            guildhall::ledger::AccountKind::TicketEscrow,
            Some(disputed),
            "usd",
        )
        .unwrap();
        guildhall::ledger::set_frozen(&mut conn, escrow.id, true).unwrap();
    }

    let report =
        guildhall::domain::reputation::recompute(&mut app.conn(), &app.state.config.reputation)
            .unwrap();
    assert!(report.events_added >= 3, "{report:?}");
    let r = app
        .get(&format!("/api/v1/users/{}/reputation", helper.id), None)
        .await
        .expect(200);
    let p = &r.body["projects"][0];
    assert_eq!(p["events"]["refund"], 1, "{p}");
    assert_eq!(p["events"]["dispute"], 1, "{p}");
    assert_eq!(p["setbacks"], 2);
    assert_eq!(p["accepted"], 0);
    assert!(
        p["quality"].as_f64().unwrap() < p["prior"].as_f64().unwrap() + 1e-9,
        "only bad outcomes: quality at or below the prior: {p}"
    );
}

#[test]
fn reputation_and_ai_settings_are_validated() {
    use guildhall::config::Config;
    use std::collections::HashMap;
    let with = |k: &str, v: &str| {
        let env: HashMap<String, String> = [(k.to_owned(), v.to_owned())].into_iter().collect();
        Config::from_sources(&env, &HashMap::new())
    };
    for (k, v) in [
        ("GUILDHALL_TRUST_DAMPING", "0"),
        ("GUILDHALL_TRUST_WEIGHT", "1.5"),
        ("GUILDHALL_REPUTATION_HALF_LIFE_DAYS", "abc"),
        ("GUILDHALL_AI_API_BASE", "ftp://models"),
        ("GUILDHALL_AI_MIN_CONFIDENCE", "2"),
    ] {
        let err = with(k, v)
            .err()
            .unwrap_or_else(|| panic!("{k}={v} accepted"));
        assert!(err.to_string().contains(k), "{k}: {err}");
    }
    let ok = with("GUILDHALL_AI_API_KEY", "sk-secret").unwrap();
    assert!(ok.ai.is_none(), "a key alone does not turn the model on");
    let ok = Config::from_sources(
        &[
            (
                "GUILDHALL_AI_API_BASE".to_owned(),
                "http://127.0.0.1:1/v1".to_owned(),
            ),
            ("GUILDHALL_AI_API_KEY".to_owned(), "sk-secret".to_owned()),
        ]
        .into_iter()
        .collect(),
        &HashMap::new(),
    )
    .unwrap();
    assert!(
        !format!("{:?}", ok.ai).contains("sk-secret"),
        "the key is redacted"
    );
}

/// Found by schemathesis: an offset near i64::MAX overflowed computing the
/// next page's offset (a panic, answered 500).
#[actix_web::test]
async fn a_huge_leaderboard_offset_is_an_empty_last_page() {
    let app = TestApp::new();
    let maintainer = app.user("maint").await;
    app.project(&maintainer, "proj").await;
    let r = app
        .get(
            &format!(
                "/api/v1/projects/proj/reputation?limit=1&offset={}",
                i64::MAX
            ),
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["next_offset"], serde_json::Value::Null);
}
