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
