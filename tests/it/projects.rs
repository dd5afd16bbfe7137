use crate::util::TestApp;
use diesel::prelude::*;
use serde_json::json;

#[actix_web::test]
async fn create_list_search_and_read_projects() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let p = app.project(&owner, "tantivy").await;
    assert_eq!(p["maintainers"], json!([owner.id]));
    assert_eq!(p["commission_bps"], 1000);
    assert_eq!(p["free_share_pct"], 20);
    assert_eq!(p["auto_close_days"], 30);
    assert_eq!(p["currency"], "usd");

    let r = app
        .post("/api/v1/projects", json!({"slug": "Bad_Slug", "name": "", "repo_url": "ftp://x", "commission_bps": 3001, "topics": [""]}), Some(&owner.access))
        .await
        .expect(422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["slug", "name", "repo_url", "topics[0]", "commission_bps"]
    );
    for bad in [
        "a",
        "x".repeat(65).as_str(),
        "UPPER",
        "sp ace",
        "dot.ted",
        "ümlaut",
    ] {
        app.post(
            "/api/v1/projects",
            json!({"slug": bad, "name": "n", "repo_url": "https://x.org"}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    }
    let r = app
        .post(
            "/api/v1/projects",
            json!({"slug": "tantivy", "name": "again", "repo_url": "https://x.org"}),
            Some(&owner.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "slug_taken");
    app.post(
        "/api/v1/projects",
        json!({"slug": "no-auth", "name": "n", "repo_url": "https://x.org"}),
        None,
    )
    .await
    .expect(401);

    app.post(
        "/api/v1/projects",
        json!({"slug": "diesel", "name": "Diesel", "repo_url": "https://github.com/diesel-rs/diesel", "description": "Safe ORM", "topics": ["SQL", "orm"]}),
        Some(&owner.access),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/projects",
        json!({"slug": "50-percent", "name": "Percent 100%", "repo_url": "https://x.org"}),
        Some(&owner.access),
    )
    .await
    .expect(201);

    // ?q= matches name, description and topics, any case; % is literal.
    let names = |r: &crate::util::Resp| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["slug"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&app.get("/api/v1/projects?q=DIESEL", None).await.expect(200)),
        ["diesel"]
    );
    assert_eq!(
        names(
            &app.get("/api/v1/projects?q=safe%20orm", None)
                .await
                .expect(200)
        ),
        ["diesel"]
    );
    assert_eq!(
        names(&app.get("/api/v1/projects?q=sql", None).await.expect(200)),
        ["diesel"]
    );
    assert_eq!(
        names(&app.get("/api/v1/projects?q=%25", None).await.expect(200)),
        ["50-percent"]
    );
    assert_eq!(
        names(
            &app.get("/api/v1/projects?q=nothing-matches", None)
                .await
                .expect(200)
        )
        .len(),
        0
    );

    // Cursor pagination walks every project once.
    let first = app.get("/api/v1/projects?limit=2", None).await.expect(200);
    assert_eq!(names(&first), ["tantivy", "diesel"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/projects?limit=2&cursor={cursor}"), None)
        .await
        .expect(200);
    assert_eq!(names(&second), ["50-percent"]);
    assert!(second.body["next_cursor"].is_null());
    app.get("/api/v1/projects?limit=101", None)
        .await
        .expect(422);
    app.get("/api/v1/projects?cursor=garbage", None)
        .await
        .expect(400);

    let r = app.get("/api/v1/projects/diesel", None).await.expect(200);
    assert_eq!(r.body["topics"], json!(["sql", "orm"]));
    let r = app.get("/api/v1/projects/missing", None).await.expect(404);
    assert_eq!(r.body["code"], "not_found");
}

#[actix_web::test]
async fn only_maintainers_change_settings() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.project(&owner, "proj").await;

    let r = app
        .patch(
            "/api/v1/projects/proj",
            json!({"commission_bps": 0}),
            Some(&stranger.access),
        )
        .await
        .expect(403);
    assert_eq!(r.body["code"], "forbidden");
    app.patch("/api/v1/projects/proj", json!({"commission_bps": 0}), None)
        .await
        .expect(401);

    // Out-of-range values: 422 naming each field, and nothing is written.
    let r = app
        .patch(
            "/api/v1/projects/proj",
            json!({"commission_bps": 3001, "free_share_pct": 101, "min_response_hours": -1, "auto_close_days": 0, "name": "renamed"}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "commission_bps",
            "free_share_pct",
            "min_response_hours",
            "auto_close_days"
        ]
    );
    assert_eq!(
        app.get("/api/v1/projects/proj", None).await.body["name"],
        "proj"
    );
    app.patch(
        "/api/v1/projects/proj",
        json!({"auto_close_days": 366}),
        Some(&owner.access),
    )
    .await
    .expect(422);
    app.patch(
        "/api/v1/projects/proj",
        json!({"unknown_setting": 1}),
        Some(&owner.access),
    )
    .await
    .expect(422);

    let r = app
        .patch(
            "/api/v1/projects/proj",
            json!({"commission_bps": 3000, "free_share_pct": 0, "min_response_hours": 48, "auto_close_days": 365,
                   "guidelines": "Include versions.", "legal_entity": "Proj Foundation e.V."}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["commission_bps"], 3000);
    let r = app.get("/api/v1/projects/proj", None).await.expect(200);
    assert_eq!(
        (
            r.body["free_share_pct"].as_i64(),
            r.body["min_response_hours"].as_i64(),
            r.body["auto_close_days"].as_i64()
        ),
        (Some(0), Some(48), Some(365))
    );
    assert_eq!(r.body["guidelines"], "Include versions.");
    assert_eq!(r.body["legal_entity"], "Proj Foundation e.V.");
    let r = app
        .patch(
            "/api/v1/projects/proj",
            json!({"legal_entity": null}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert!(r.body["legal_entity"].is_null());

    // A maintainer adds another; the new one may change settings.
    app.post(
        "/api/v1/projects/proj/maintainers",
        json!({"user_id": stranger.id}),
        Some(&stranger.access),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/projects/proj/maintainers",
        json!({"user_id": 999_999}),
        Some(&owner.access),
    )
    .await
    .expect(404);
    let r = app
        .post(
            "/api/v1/projects/proj/maintainers",
            json!({"user_id": stranger.id}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["maintainers"], json!([owner.id, stranger.id]));
    app.patch(
        "/api/v1/projects/proj",
        json!({"commission_bps": 500}),
        Some(&stranger.access),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn helper_vetting_and_revocation() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;

    // Experts must give a rate; tiers are checked.
    app.post(
        "/api/v1/projects/proj/helpers/apply",
        json!({"tier": "expert"}),
        Some(&helper.access),
    )
    .await
    .expect(422);
    app.post(
        "/api/v1/projects/proj/helpers/apply",
        json!({"tier": "guru"}),
        Some(&helper.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            "/api/v1/projects/proj/helpers/apply",
            json!({"tier": "expert", "hourly_rate": 9000, "bio": "Rust", "skills": ["async"]}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(
        r.body["hourly_rate"],
        json!({"amount": 9000, "currency": "usd"})
    );
    app.post(
        "/api/v1/projects/proj/helpers/apply",
        json!({"tier": "community"}),
        Some(&helper.access),
    )
    .await
    .expect(409);

    // Pending helpers are not public; maintainers see applications.
    assert_eq!(
        app.get("/api/v1/projects/proj/helpers", None)
            .await
            .expect(200)
            .body["items"],
        json!([])
    );
    app.get(
        "/api/v1/projects/proj/helpers?status=pending",
        Some(&other.access),
    )
    .await
    .expect(403);
    app.get("/api/v1/projects/proj/helpers?status=pending", None)
        .await
        .expect(401);
    let r = app
        .get(
            "/api/v1/projects/proj/helpers?status=pending",
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["items"][0]["user_id"], helper.id);

    // Only maintainers approve.
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/approve", helper.id),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/approve", helper.id),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/approve", other.id),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(404);
    let r = app
        .post(
            &format!("/api/v1/projects/proj/helpers/{}/approve", helper.id),
            json!({}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "approved");
    let r = app
        .get("/api/v1/projects/proj/helpers", None)
        .await
        .expect(200);
    assert_eq!(r.body["items"][0]["display_name"], "helper");
    assert_eq!(r.body["items"][0]["tier"], "expert");

    // Approved helpers endorse each other; never themselves.
    app.approved_helper(&owner, &other, "proj").await;
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/endorse", helper.id),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(422);
    let r = app
        .post(
            &format!("/api/v1/projects/proj/helpers/{}/endorse", other.id),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["endorsements"], 1);

    let me = app
        .get("/api/v1/me", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(
        me.body["memberships"],
        json!([{"project": "proj", "role": "helper", "tier": "expert", "status": "approved"}])
    );

    // Revoked: out of the public list, and helper rights are gone.
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(403);
    let r = app
        .post(
            &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
            json!({}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "revoked");
    let r = app
        .get("/api/v1/projects/proj/helpers", None)
        .await
        .expect(200);
    let listed: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [other.id]);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/endorse", other.id),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    // Endorsing a revoked helper is not possible either.
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/endorse", helper.id),
        json!({}),
        Some(&other.access),
    )
    .await
    .expect(404);
    let me = app
        .get("/api/v1/me", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(me.body["memberships"][0]["status"], "revoked");
    {
        let mut conn = app.conn();
        let project = guildhall::domain::projects::by_slug(&mut conn, "proj").unwrap();
        assert!(
            !guildhall::domain::helpers::is_approved(&mut conn, project.id, helper.id).unwrap()
        );
        assert!(guildhall::domain::helpers::is_approved(&mut conn, project.id, other.id).unwrap());
    }
    // A revoked helper may apply again; they are pending until approved.
    let r = app
        .post(
            "/api/v1/projects/proj/helpers/apply",
            json!({"tier": "community"}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["status"], "pending");
}

#[actix_web::test]
async fn code_of_conduct_acceptance_is_recorded_once() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let requester = app.user("req").await;
    app.project(&owner, "proj").await;
    app.post("/api/v1/projects/proj/coc/accept", json!({}), None)
        .await
        .expect(401);
    let first = app
        .post(
            "/api/v1/projects/proj/coc/accept",
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    let second = app
        .post(
            "/api/v1/projects/proj/coc/accept",
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert_eq!(first.body["accepted_at"], second.body["accepted_at"]);
    app.post(
        "/api/v1/projects/nope/coc/accept",
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(404);
    let mut conn = app.conn();
    let p = guildhall::domain::projects::by_slug(&mut conn, "proj").unwrap();
    assert!(
        guildhall::domain::projects::coc_accepted_at(&mut conn, p.id, requester.id)
            .unwrap()
            .is_some()
    );
    assert!(
        guildhall::domain::projects::coc_accepted_at(&mut conn, p.id, owner.id)
            .unwrap()
            .is_none()
    );
}

/// Issue 12 §1: a project takes real money through a live gateway only once
/// it has proved control of its repository; a platform admin may vouch for
/// it; changing the repository forgets the proof. Test money (the sandbox)
/// stays open to every project.
#[actix_web::test]
async fn real_money_waits_for_a_verified_project() {
    use guildhall::db::schema::{bids, bounties};
    let mut app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    let admin = app.user("admin").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Live money", "public")
        .await;

    // The sandbox takes test money from an unverified project.
    app.post(
        &format!("/api/v1/tickets/{id}/bounties"),
        json!({"amount": 1_000, "currency": "usd"}),
        Some(&requester.access),
    )
    .await
    .expect(201);

    app.state.gateway = std::sync::Arc::new(crate::util::AwaitingWebhook);
    let bounties_before: i64 = bounties::table.count().get_result(&mut app.conn()).unwrap();
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 2_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "project_unverified");
    let bid = app
        .post(
            &format!("/api/v1/tickets/{id}/bids"),
            json!({"amount": 5_000, "currency": "usd", "eta_hours": 24, "message": "I can fix this"}),
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
        .expect(409);
    assert_eq!(r.body["code"], "project_unverified");
    let status: String = bids::table
        .find(bid)
        .select(bids::status)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(status, "open", "a refused acceptance leaves the bid open");
    let bounties_after: i64 = bounties::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(bounties_after, bounties_before, "nothing written");

    // Only a platform admin vouches.
    let p = app.get("/api/v1/projects/proj", None).await.expect(200);
    assert_eq!(p.body["verified_at"], serde_json::Value::Null);
    app.post(
        "/api/v1/projects/proj/verification",
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(403);
    app.post("/api/v1/projects/proj/verification", json!({}), None)
        .await
        .expect(401);
    assert!(guildhall::domain::users::grant_admin(&mut app.conn(), "ADMIN@example.com").unwrap());
    let v = app
        .post(
            "/api/v1/projects/proj/verification",
            json!({}),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(v.body["verified_via"], "platform_admin");
    assert!(v.body["verified_at"].is_string());
    app.post(
        "/api/v1/projects/nope/verification",
        json!({}),
        Some(&admin.access),
    )
    .await
    .expect(404);
    // Vouching again changes nothing and logs nothing more.
    app.post(
        "/api/v1/projects/proj/verification",
        json!({}),
        Some(&admin.access),
    )
    .await
    .expect(200);
    // Both admin actions are in the audit log, newest first; only admins
    // read it.
    app.get("/api/v1/admin/audit", Some(&owner.access))
        .await
        .expect(403);
    app.get("/api/v1/admin/audit", None).await.expect(401);
    let log = app
        .get("/api/v1/admin/audit?limit=1", Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(log.body["items"][0]["action"], "project.verify");
    assert_eq!(log.body["items"][0]["actor_id"], admin.id);
    assert_eq!(log.body["items"][0]["target_type"], "project");
    let cursor = log.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let log = app
        .get(
            &format!("/api/v1/admin/audit?limit=1&cursor={cursor}"),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(log.body["items"][0]["action"], "admin.grant");
    assert_eq!(log.body["items"][0]["actor_id"], serde_json::Value::Null);
    assert_eq!(log.body["items"][0]["target_id"], admin.id);
    assert_eq!(log.body["next_cursor"], serde_json::Value::Null);
    // The same log as a page for admins.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &admin.email).await;
    let page = b.get("/admin/audit").await.expect(200);
    assert!(
        page.text.contains("project.verify") && page.text.contains("command line"),
        "{}",
        page.text
    );
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut o = crate::web::signed_in(&app, svc, &owner.email).await;
    o.get("/admin/audit").await.expect(403);

    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 2_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["payment"]["test_money"], false);

    // A new repository needs a new proof.
    let p = app
        .patch(
            "/api/v1/projects/proj",
            json!({"repo_url": "https://github.com/someone-else/proj"}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["verified_at"], serde_json::Value::Null);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": 3_000, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "project_unverified");
}

/// Issue 13 §2: a project's business calendar through the API and the
/// settings page; every field checked.
#[actix_web::test]
async fn the_business_calendar_is_set_and_checked() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;
    let c = app
        .get("/api/v1/projects/proj/calendar", None)
        .await
        .expect(200);
    assert_eq!(
        c.body,
        json!({"time_zone": "UTC", "working_days": [1, 2, 3, 4, 5],
               "hours": {"start": "09:00", "end": "17:00"}, "holidays": []})
    );
    let good = json!({"time_zone": "Europe/Berlin", "working_days": [1, 2, 3, 4],
                      "hours": {"start": "08:30", "end": "16:00"},
                      "holidays": ["2026-12-25", "2026-12-24"]});
    app.put_json(
        "/api/v1/projects/proj/calendar",
        good.clone(),
        Some(&other.access),
    )
    .await
    .expect(403);
    app.put_json("/api/v1/projects/proj/calendar", good.clone(), None)
        .await
        .expect(401);
    let r = app
        .put_json(
            "/api/v1/projects/proj/calendar",
            json!({"time_zone": "Mars/Olympus", "working_days": [8],
                   "hours": {"start": "18:00", "end": "09:00"}, "holidays": ["2026-13-01"]}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["time_zone", "working_days", "hours.end", "holidays[0]"]
    );
    let r = app
        .put_json("/api/v1/projects/proj/calendar", good, Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(r.body["holidays"], json!(["2026-12-24", "2026-12-25"]));
    let c = app
        .get("/api/v1/projects/proj/calendar", None)
        .await
        .expect(200);
    assert_eq!(c.body["time_zone"], "Europe/Berlin");
    assert_eq!(c.body["hours"]["start"], "08:30");

    // The settings page: the same checks, what was typed kept on an error.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &owner.email).await;
    let page = b.get("/p/proj/settings").await.expect(200);
    assert!(page.text.contains("value=\"Europe/Berlin\""));
    let token = crate::web::csrf(&page);
    let r = b
        .post(
            "/p/proj/calendar",
            &[
                ("csrf", token.as_str()),
                ("time_zone", "Nowhere/Atlantis"),
                ("start", "09:00"),
                ("end", "17:00"),
                ("holidays", ""),
            ],
        )
        .await
        .expect(422);
    assert!(r.text.contains("must be an IANA time zone"), "{}", r.text);
    assert!(r.text.contains("value=\"Nowhere/Atlantis\""));
    let c = app
        .get("/api/v1/projects/proj/calendar", None)
        .await
        .expect(200);
    assert_eq!(c.body["time_zone"], "Europe/Berlin", "nothing saved");
    // A good form, its checkboxes repeated as a browser sends them.
    let req = actix_web::test::TestRequest::post()
        .uri("/p/proj/calendar")
        .insert_header(("origin", "http://127.0.0.1:8080"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(format!(
            "csrf={token}&time_zone=America%2FNew_York&day=1&day=3&day=5&start=10%3A00&end=18%3A00&holidays=2026-11-26%0D%0A2026-12-25"
        ));
    let r = b.app.send(&b.svc, b.with_cookies(req)).await.expect(200);
    assert!(r.text.contains("Business calendar saved."), "{}", r.text);
    let c = app
        .get("/api/v1/projects/proj/calendar", None)
        .await
        .expect(200);
    assert_eq!(
        c.body,
        json!({"time_zone": "America/New_York", "working_days": [1, 3, 5],
               "hours": {"start": "10:00", "end": "18:00"}, "holidays": ["2026-11-26", "2026-12-25"]})
    );
}
