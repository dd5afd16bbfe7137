use crate::util::TestApp;
use diesel::prelude::*;
use guildhall::db::schema::tickets;
use serde_json::json;

#[actix_web::test]
async fn full_lifecycle_with_event_log() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let stranger = app.user("stranger").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;

    let id = app
        .draft(&requester, "proj", "Panic on startup", "public")
        .await;
    // A draft is the requester's alone.
    app.get(&format!("/api/v1/tickets/{id}"), Some(&owner.access))
        .await
        .expect(404);
    app.get(&format!("/api/v1/tickets/{id}"), None)
        .await
        .expect(404);
    let r = app
        .get(&format!("/api/v1/tickets/{id}"), Some(&requester.access))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "draft");
    // Edit while draft; others may not.
    app.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"title": "Panic on startup with 0.4"}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    // Submitting needs the code of conduct.
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/submit"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "code_of_conduct_not_accepted");
    app.post(
        "/api/v1/projects/proj/coc/accept",
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/submit"),
        json!({}),
        Some(&stranger.access),
    )
    .await
    .expect(404);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/submit"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "open");
    assert_eq!(
        app.post(
            &format!("/api/v1/tickets/{id}/submit"),
            json!({}),
            Some(&requester.access)
        )
        .await
        .expect(409)
        .body["code"],
        "invalid_transition"
    );
    app.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"body": "more"}),
        Some(&stranger.access),
    )
    .await
    .expect(403);

    // Only approved helpers claim; illegal transitions are 409.
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&stranger.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["claimed_by"].as_i64()),
        (Some("claimed"), Some(helper.id))
    );
    app.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"body": "late"}),
        Some(&requester.access),
    )
    .await
    .expect(409);

    // Messages; internal notes only for the team.
    let m = app
        .post(
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"body": "Set RUST_LOG=debug and retry."}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    let answer_id = m.body["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "probably a config issue", "internal": true}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "sneaky", "internal": true}),
        Some(&requester.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "me too"}),
        Some(&stranger.access),
    )
    .await
    .expect(403);
    let seen = app
        .get(
            &format!("/api/v1/tickets/{id}/messages"),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(seen.body["items"].as_array().unwrap().len(), 1);
    let seen = app
        .get(
            &format!("/api/v1/tickets/{id}/messages"),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(seen.body["items"].as_array().unwrap().len(), 2);

    // Resolve: only the claimant, with a public message of this ticket.
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({"message_id": answer_id}),
        Some(&owner.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/tickets/{id}/resolve"),
        json!({"message_id": answer_id + 1}),
        Some(&helper.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/resolve"),
            json!({"message_id": answer_id}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "resolved");
    app.post(
        &format!("/api/v1/tickets/{id}/rating"),
        json!({"stars": 5}),
        Some(&requester.access),
    )
    .await
    .expect(409);
    app.post(
        &format!("/api/v1/tickets/{id}/accept"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["close_reason"].as_str()),
        (Some("closed"), Some("accepted"))
    );
    assert_eq!(r.body["resolved_by"], helper.id);

    // Rating 1..5, once, by the requester.
    app.post(
        &format!("/api/v1/tickets/{id}/rating"),
        json!({"stars": 6}),
        Some(&requester.access),
    )
    .await
    .expect(422);
    app.post(
        &format!("/api/v1/tickets/{id}/rating"),
        json!({"stars": 4}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/rating"),
            json!({"stars": 4, "comment": "quick"}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["rating"]["stars"], 4);
    app.post(
        &format!("/api/v1/tickets/{id}/rating"),
        json!({"stars": 1}),
        Some(&requester.access),
    )
    .await
    .expect(409);

    let events = app
        .get(
            &format!("/api/v1/tickets/{id}/events"),
            Some(&requester.access),
        )
        .await
        .expect(200)
        .body;
    let log: Vec<(String, Option<String>, String, Option<i64>)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["from"].as_str().map(Into::into),
                e["to"].as_str().unwrap().into(),
                e["actor_id"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        log,
        vec![
            ("create".into(), None, "draft".into(), Some(requester.id)),
            (
                "submit".into(),
                Some("draft".into()),
                "open".into(),
                Some(requester.id)
            ),
            (
                "claim".into(),
                Some("open".into()),
                "claimed".into(),
                Some(helper.id)
            ),
            (
                "resolve".into(),
                Some("claimed".into()),
                "resolved".into(),
                Some(helper.id)
            ),
            (
                "accept".into(),
                Some("resolved".into()),
                "closed".into(),
                Some(requester.id)
            ),
        ]
    );
}

#[actix_web::test]
async fn reopen_close_cancel_unclaim_transfer() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let h1 = app.user("h1").await;
    let h2 = app.user("h2").await;
    let requester = app.user("req").await;
    let outsider = app.user("outsider").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &h1, "proj").await;
    app.approved_helper(&owner, &h2, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Transfer me", "public")
        .await;
    let path = |a: &str| format!("/api/v1/tickets/{id}/{a}");

    app.post(&path("claim"), json!({}), Some(&h1.access))
        .await
        .expect(200);
    app.post(&path("claim"), json!({}), Some(&h2.access))
        .await
        .expect(409);
    // Transfer: claimant or maintainer, to an approved helper.
    app.post(
        &path("transfer"),
        json!({"to_user_id": h2.id}),
        Some(&h2.access),
    )
    .await
    .expect(403);
    app.post(
        &path("transfer"),
        json!({"to_user_id": outsider.id}),
        Some(&h1.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &path("transfer"),
            json!({"to_user_id": h2.id}),
            Some(&h1.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["claimed_by"], h2.id);
    // Unclaim by a maintainer puts it back in the queue.
    app.post(&path("unclaim"), json!({}), Some(&h1.access))
        .await
        .expect(403);
    let r = app
        .post(&path("unclaim"), json!({}), Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "open");
    assert!(r.body["claimed_by"].is_null());
    // Resolved → reopen goes back to the claimant.
    app.post(&path("claim"), json!({}), Some(&h1.access))
        .await
        .expect(200);
    app.post(&path("resolve"), json!({}), Some(&h1.access))
        .await
        .expect(200);
    let r = app
        .post(
            &path("reopen"),
            json!({"reason": "still broken"}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["claimed_by"].as_i64()),
        (Some("claimed"), Some(h1.id))
    );
    // Close by the helper working on it (not a rival helper, not an
    // outsider), then reopen into the queue.
    app.post(&path("close"), json!({}), Some(&outsider.access))
        .await
        .expect(403);
    app.post(&path("close"), json!({}), Some(&h2.access))
        .await
        .expect(403);
    let r = app
        .post(
            &path("close"),
            json!({"reason": "duplicate of #1"}),
            Some(&h1.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["close_reason"], "duplicate of #1");
    let r = app
        .post(&path("reopen"), json!({}), Some(&requester.access))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "open");
    assert!(r.body["claimed_by"].is_null());
    // Cancel: requester only; a cancelled ticket takes no messages or transitions.
    app.post(&path("cancel"), json!({}), Some(&owner.access))
        .await
        .expect(403);
    app.post(&path("cancel"), json!({}), Some(&requester.access))
        .await
        .expect(200);
    app.post(&path("claim"), json!({}), Some(&h1.access))
        .await
        .expect(409);
    app.post(&path("reopen"), json!({}), Some(&requester.access))
        .await
        .expect(409);
    app.post(
        &path("messages"),
        json!({"body": "hello?"}),
        Some(&requester.access),
    )
    .await
    .expect(409);
}

#[actix_web::test]
async fn private_tickets_are_hidden_everywhere() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let stranger = app.user("stranger").await;
    let other_owner = app.user("other-owner").await;
    app.project(&owner, "proj").await;
    app.project(&other_owner, "other").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let secret = app
        .open_ticket(
            &requester,
            "proj",
            "Confidential deployment failure",
            "private",
        )
        .await;
    let public = app
        .open_ticket(&requester, "proj", "Public deployment failure", "public")
        .await;
    app.run_jobs();

    for (who, sees) in [
        (Some(&requester), true),
        (Some(&owner), true),
        (Some(&helper), true),
        (Some(&stranger), false),
        (Some(&other_owner), false),
        (None, false),
    ] {
        let token = who.map(|u| u.access.as_str());
        let r = app.get(&format!("/api/v1/tickets/{secret}"), token).await;
        assert_eq!(r.status.as_u16(), if sees { 200 } else { 404 });
        let r = app
            .get(&format!("/api/v1/tickets/{secret}/messages"), token)
            .await;
        assert_eq!(r.status.as_u16(), if sees { 200 } else { 404 });
        let list = app
            .get("/api/v1/tickets?project=proj", token)
            .await
            .expect(200);
        let ids: Vec<i64> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.contains(&secret), sees, "list");
        assert!(ids.contains(&public));
        let found = app
            .get("/api/v1/search/tickets?q=deployment", token)
            .await
            .expect(200);
        let ids: Vec<i64> = found.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["ticket"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.contains(&secret), sees, "search");
        assert!(ids.contains(&public), "search finds the public one");
        let queue = app
            .get("/api/v1/projects/proj/queue", token)
            .await
            .expect(200);
        let shown: Vec<i64> = queue.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["ticket"]["id"].as_i64())
            .collect();
        assert_eq!(shown.contains(&secret), sees, "queue");
        assert_eq!(
            queue.body["total"], 2,
            "hidden tickets still hold their place"
        );
        if !sees {
            assert!(
                !found.text.contains("Confidential")
                    && !queue.text.contains("Confidential")
                    && !list.text.contains("Confidential")
            );
        }
    }
    // A helper who loses their rights loses sight of it.
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/tickets/{secret}"), Some(&helper.access))
        .await
        .expect(404);
    let found = app
        .get(
            "/api/v1/search/tickets?q=confidential",
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(found.body["items"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn response_templates() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let helper2 = app.user("helper2").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.approved_helper(&owner, &helper2, "proj").await;
    let shared = app
        .post(
            "/api/v1/projects/proj/templates",
            json!({"name": "logs", "body": "Please attach logs.", "scope": "project"}),
            Some(&owner.access),
        )
        .await
        .expect(201);
    app.post(
        "/api/v1/projects/proj/templates",
        json!({"name": "x", "body": "y", "scope": "project"}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/projects/proj/templates",
        json!({"name": "x", "body": "y"}),
        Some(&requester.access),
    )
    .await
    .expect(403);
    let mine = app
        .post(
            "/api/v1/projects/proj/templates",
            json!({"name": "thanks", "body": "Thanks for the report!"}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    assert_eq!(mine.body["scope"], "personal");
    let list = app
        .get("/api/v1/projects/proj/templates", Some(&helper2.access))
        .await
        .expect(200);
    assert_eq!(
        list.body.as_array().unwrap().len(),
        1,
        "helper2 sees the shared template, not helper's own"
    );
    app.get("/api/v1/projects/proj/templates", Some(&requester.access))
        .await
        .expect(403);

    let id = app
        .open_ticket(&requester, "proj", "Template use", "public")
        .await;
    let m = app
        .post(
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"template_id": mine.body["id"]}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    assert_eq!(m.body["body"], "Thanks for the report!");
    assert_eq!(m.body["template_id"], mine.body["id"]);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"template_id": shared.body["id"]}),
        Some(&helper2.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"template_id": mine.body["id"]}),
        Some(&helper2.access),
    )
    .await
    .expect(422);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"template_id": shared.body["id"]}),
        Some(&requester.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(422);
}

#[actix_web::test]
async fn twenty_concurrent_claims_one_winner() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    let mut helpers = Vec::new();
    for i in 0..20 {
        let h = app.user(&format!("h{i}")).await;
        app.approved_helper(&owner, &h, "proj").await;
        helpers.push(h);
    }
    let id = app
        .open_ticket(&requester, "proj", "Race for it", "public")
        .await;
    let path = format!("/api/v1/tickets/{id}/claim");
    let claims = helpers
        .iter()
        .map(|h| app.post(&path, json!({}), Some(&h.access)));
    let results = futures_util::future::join_all(claims).await;
    let won: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status.as_u16() == 200)
        .map(|(i, _)| i)
        .collect();
    let lost = results
        .iter()
        .filter(|r| r.status.as_u16() == 409 && r.body["code"] == "already_claimed")
        .count();
    assert_eq!(
        (won.len(), lost),
        (1, 19),
        "{:?}",
        results.iter().map(|r| r.text.clone()).collect::<Vec<_>>()
    );
    let claimed_by: Option<i64> = tickets::table
        .find(id)
        .select(tickets::claimed_by)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(claimed_by, Some(helpers[won[0]].id));
    let events = app
        .get(
            &format!("/api/v1/tickets/{id}/events"),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(
        events
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "claim")
            .count(),
        1
    );
}

#[actix_web::test]
async fn queue_serves_paid_first_with_a_free_share() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.patch(
        "/api/v1/projects/proj",
        json!({"min_response_hours": 6}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            app.open_ticket(&requester, "proj", &format!("ticket number {i}"), "public")
                .await,
        );
    }
    // The money issue fills paid_amount from escrow; here we set it directly.
    for (n, id) in ids.iter().take(9).enumerate() {
        diesel::update(tickets::table.find(id))
            .set(tickets::paid_amount.eq(1000 + n as i64))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let q = app
        .get("/api/v1/projects/proj/queue?limit=100", None)
        .await
        .expect(200)
        .body;
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    let paid: Vec<bool> = items.iter().map(|e| e["paid"].as_bool().unwrap()).collect();
    // 20% → at least 2 unpaid in every 10 consecutive places: positions 9 and 10.
    assert_eq!(
        paid,
        [true, true, true, true, true, true, true, true, false, false, true, false]
    );
    assert_eq!(items[0]["ticket"]["id"], ids[8], "highest amount first");
    let etas: Vec<i64> = items
        .iter()
        .map(|e| e["eta_hours"].as_i64().unwrap())
        .collect();
    assert!(
        etas.iter().all(|e| *e >= 6),
        "never below min_response_hours: {etas:?}"
    );
    assert!(etas.windows(2).all(|w| w[0] <= w[1]));
    let positions: Vec<i64> = items
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, (1..=12).collect::<Vec<_>>());
    // Pagination.
    let first = app
        .get("/api/v1/projects/proj/queue?limit=5", None)
        .await
        .expect(200)
        .body;
    let next = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(
            &format!("/api/v1/projects/proj/queue?limit=5&cursor={next}"),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(second["items"][0]["position"], 6);
}

#[actix_web::test]
async fn inactive_tickets_auto_close_with_a_reason() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.patch(
        "/api/v1/projects/proj",
        json!({"auto_close_days": 3}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let stale = app
        .open_ticket(&requester, "proj", "Nobody answered", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{stale}/bounties"),
        json!({"amount": 2_000, "currency": "usd"}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    let fresh = app
        .open_ticket(&requester, "proj", "Just asked", "public")
        .await;
    let old = chrono::Utc::now().naive_utc() - chrono::Duration::days(4);
    diesel::update(tickets::table.find(stale))
        .set(tickets::last_activity_at.eq(old))
        .execute(&mut *app.conn())
        .unwrap();
    use guildhall_jobs::BackgroundJob as _;
    guildhall::jobs::AutoCloseTickets
        .enqueue(&mut app.conn())
        .unwrap();
    app.run_jobs();
    let r = app
        .get(&format!("/api/v1/tickets/{stale}"), None)
        .await
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["close_reason"].as_str()),
        (Some("auto_closed"), Some("no activity for 3 days"))
    );
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{fresh}"), None)
            .await
            .body["status"],
        "open"
    );
    let events = app
        .get(&format!("/api/v1/tickets/{stale}/events"), None)
        .await
        .body;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["action"].as_str(),
            last["actor_id"].as_i64(),
            last["reason"].as_str()
        ),
        (Some("auto_close"), None, Some("no activity for 3 days"))
    );
    // Closed without a resolution: the bounty went back.
    assert_eq!(
        app.get(&format!("/api/v1/tickets/{stale}/bounties"), None)
            .await
            .body[0]["status"],
        "refunded"
    );
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
    // An auto-closed ticket can be reopened and rated.
    app.post(
        &format!("/api/v1/tickets/{stale}/rating"),
        json!({"stars": 2}),
        Some(&requester.access),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn review_fixes_for_drafts_claims_and_revocation() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;

    // A cancelled draft was never submitted: still the requester's alone.
    let draft = app
        .draft(&requester, "proj", "Secret draft text", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{draft}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    app.get(&format!("/api/v1/tickets/{draft}"), None)
        .await
        .expect(404);
    app.get(
        &format!("/api/v1/tickets/{draft}/events"),
        Some(&owner.access),
    )
    .await
    .expect(404);
    let list = app
        .get("/api/v1/tickets?status=cancelled", None)
        .await
        .expect(200);
    assert_eq!(list.body["items"], json!([]));
    app.get(&format!("/api/v1/tickets/{draft}"), Some(&requester.access))
        .await
        .expect(200);
    app.get("/api/v1/tickets?mine=true", None).await.expect(401);

    // Requesters do not claim their own tickets, even as helpers.
    app.approved_helper(&owner, &requester, "proj").await;
    let own = app
        .open_ticket(&requester, "proj", "My own ticket", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{own}/claim"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(403);

    // Revoking a helper puts their claimed tickets back in the queue; a
    // revoked claimant can no longer resolve.
    let held = app
        .open_ticket(&requester, "proj", "Held by the helper", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{held}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let t = app
        .get(&format!("/api/v1/tickets/{held}"), None)
        .await
        .expect(200);
    assert_eq!(
        (t.body["status"].as_str(), t.body["claimed_by"].as_i64()),
        (Some("open"), None)
    );
    let events = app
        .get(&format!("/api/v1/tickets/{held}/events"), None)
        .await
        .body;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["reason"].as_str()),
        (Some("unclaim"), Some("helper rights revoked"))
    );
    app.post(
        &format!("/api/v1/tickets/{held}/resolve"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(403);

    // A transition decided on a stale read is refused: the ticket changed.
    let mut conn = app.conn();
    let before = guildhall::domain::tickets::load_visible(&mut conn, held, Some(owner.id))
        .unwrap()
        .0;
    guildhall::domain::tickets::close(&mut conn, held, owner.id, Some("first")).unwrap();
    guildhall::domain::tickets::reopen(&mut conn, held, owner.id, None).unwrap();
    let after = guildhall::domain::tickets::load_visible(&mut conn, held, Some(owner.id))
        .unwrap()
        .0;
    assert_eq!(before.status, after.status);
    assert!(after.version > before.version);
    drop(conn);
    let long = "x".repeat(501);
    app.post(
        &format!("/api/v1/tickets/{held}/close"),
        json!({"reason": long}),
        Some(&owner.access),
    )
    .await
    .expect(422);
}
