//! Moderation (issue 13 §4): weighted flags hide an item until reviewed,
//! reviews uphold or dismiss it, bans per project and platform-wide stop
//! posting, claiming, bidding and messaging there without touching escrow,
//! and every review and ban is audit-logged.

use crate::util::TestApp;
use diesel::prelude::*;
use serde_json::json;

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

fn audit_actions(app: &TestApp) -> Vec<String> {
    use guildhall::db::schema::audit_log as al;
    al::table
        .order(al::id)
        .select(al::action)
        .load(&mut app.conn())
        .unwrap()
}

#[actix_web::test]
async fn flags_hide_a_message_until_upheld_and_its_author_is_banned() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let troll = app.user("troll").await;
    let (a, b, c) = (
        app.user("ann").await,
        app.user("bob").await,
        app.user("cid").await,
    );
    app.project(&owner, "proj").await;
    app.project(&owner, "other").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let t = app
        .open_ticket(&troll, "proj", "Why is this so slow", "public")
        .await;
    // The troll funds it: escrow that a ban must not touch.
    app.post(
        &format!("/api/v1/tickets/{t}/bounties"),
        json!({"amount": 2000, "currency": "usd"}),
        Some(&troll.access),
    )
    .await
    .expect(201);
    let m = app
        .post(
            &format!("/api/v1/tickets/{t}/messages"),
            json!({"body": "you are all idiots", "internal": false}),
            Some(&troll.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let app = &app;
    let flag = |who: &crate::util::User, reason: &str| {
        let body = json!({"target": "message", "id": m, "reason": reason, "note": "insults"});
        let token = who.access.clone();
        async move { app.post("/api/v1/flags", body, Some(&token)).await }
    };
    // Bad input and one's own message are refused; nothing is written.
    flag(&a, "boring").await.expect(422);
    flag(&troll, "rude").await.expect(422);
    app.post(
        "/api/v1/flags",
        json!({"target": "message", "id": m + 999, "reason": "rude"}),
        Some(&a.access),
    )
    .await
    .expect(404);
    let r = flag(&a, "rude").await.expect(201);
    assert_eq!(r.body["hidden"], false);
    flag(&a, "rude").await.expect(409);
    flag(&b, "rude").await.expect(201);
    // The third flag reaches the threshold: hidden from everyone but its
    // author and the team.
    let r = flag(&c, "spam").await.expect(201);
    assert_eq!(r.body["hidden"], true);
    let shown = |token: Option<String>| {
        let path = format!("/api/v1/tickets/{t}/messages");
        async move {
            let r = app.get(&path, token.as_deref()).await.expect(200);
            r.body["items"]
                .as_array()
                .map(|a| a.len())
                .unwrap_or_else(|| r.body.as_array().map_or(0, |a| a.len()))
        }
    };
    assert_eq!(shown(None).await, 0);
    assert_eq!(shown(Some(a.access.clone())).await, 0);
    assert_eq!(shown(Some(troll.access.clone())).await, 1);
    assert_eq!(shown(Some(helper.access.clone())).await, 1);

    // Review: maintainers (and admins) only.
    app.get("/api/v1/projects/proj/flags", Some(&a.access))
        .await
        .expect(403);
    let open = app
        .get("/api/v1/projects/proj/flags", Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(open.body.as_array().unwrap().len(), 3);
    let first = open.body[0]["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/flags/{first}/uphold"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(404);
    let up = app
        .post(
            &format!("/api/v1/flags/{first}/uphold"),
            json!({}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(up.body["decided"], 3);
    assert_eq!(shown(None).await, 0, "upheld: it stays hidden");
    assert_eq!(
        app.get("/api/v1/projects/proj/flags", Some(&owner.access))
            .await
            .expect(200)
            .body,
        json!([])
    );
    // Upheld flaggers weigh more next time.
    assert_eq!(
        guildhall::domain::moderation::weight_of(&mut app.conn(), a.id).unwrap(),
        2
    );

    // The author is banned from the project.
    let bad = app
        .post(
            "/api/v1/projects/proj/bans",
            json!({"user_id": troll.id, "reason": "", "until": "2000-01-01"}),
            Some(&owner.access),
        )
        .await
        .expect(422);
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 2);
    app.post(
        "/api/v1/projects/proj/bans",
        json!({"user_id": owner.id, "reason": "x"}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    app.post(
        "/api/v1/projects/proj/bans",
        json!({"user_id": troll.id, "reason": "insulting the team"}),
        Some(&owner.access),
    )
    .await
    .expect(201);
    app.post(
        "/api/v1/projects/proj/bans",
        json!({"user_id": troll.id, "reason": "again"}),
        Some(&owner.access),
    )
    .await
    .expect(409);
    let r = app
        .post(
            &format!("/api/v1/tickets/{t}/messages"),
            json!({"body": "let me in", "internal": false}),
            Some(&troll.access),
        )
        .await
        .expect(403);
    assert!(r.text.contains("insulting the team"), "{}", r.text);
    app.post(
        "/api/v1/tickets",
        json!({"project": "proj", "title": "New account of trouble", "body": "details", "tags": [], "kind": "question", "visibility": "public"}),
        Some(&troll.access),
    )
    .await
    .expect(403);
    // Elsewhere they still may.
    app.open_ticket(&troll, "other", "A fair question elsewhere", "public")
        .await;
    // The escrow they funded is held, not taken.
    let paid: i64 = guildhall::db::schema::tickets::table
        .find(t)
        .select(guildhall::db::schema::tickets::paid_amount)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(paid, 2000);
    assert_ledger_clean(app);

    // Lifted: they may write again.
    app.request(
        actix_web::http::Method::DELETE,
        &format!("/api/v1/projects/proj/bans/{}", troll.id),
        None,
        Some(&owner.access),
    )
    .await
    .expect(204);
    app.request(
        actix_web::http::Method::DELETE,
        &format!("/api/v1/projects/proj/bans/{}", troll.id),
        None,
        Some(&owner.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/tickets/{t}/messages"),
        json!({"body": "sorry", "internal": false}),
        Some(&troll.access),
    )
    .await
    .expect(201);
    assert_eq!(audit_actions(app), ["flag.uphold", "ban", "ban.lift"]);
}

#[actix_web::test]
async fn a_flagged_ticket_hides_until_dismissed_and_platform_bans_reach_everywhere() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let asker = app.user("asker").await;
    let admin = app.user("admin").await;
    app.project(&owner, "proj").await;
    app.project(&owner, "other").await;
    app.approved_helper(&owner, &helper, "proj").await;
    app.approved_helper(&owner, &helper, "other").await;
    let t = app
        .open_ticket(&asker, "proj", "Strange but honest question", "public")
        .await;
    for name in ["f1", "f2", "f3"] {
        let u = app.user(name).await;
        app.post(
            "/api/v1/flags",
            json!({"target": "ticket", "id": t, "reason": "spam"}),
            Some(&u.access),
        )
        .await
        .expect(201);
    }
    // Hidden: gone for the public, still there for its requester and team.
    app.get(&format!("/api/v1/tickets/{t}"), None)
        .await
        .expect(404);
    let listed = app
        .get("/api/v1/tickets?project=proj", None)
        .await
        .expect(200);
    assert!(
        !listed.text.contains("Strange but honest"),
        "{}",
        listed.text
    );
    app.get(&format!("/api/v1/tickets/{t}"), Some(&asker.access))
        .await
        .expect(200);
    app.get(&format!("/api/v1/tickets/{t}"), Some(&helper.access))
        .await
        .expect(200);
    // Dismissed: it shows again.
    let id = app
        .get("/api/v1/projects/proj/flags", Some(&owner.access))
        .await
        .expect(200)
        .body[0]["id"]
        .as_i64()
        .unwrap();
    let d = app
        .post(
            &format!("/api/v1/flags/{id}/dismiss"),
            json!({}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(d.body["decided"], 3);
    app.get(&format!("/api/v1/tickets/{t}"), None)
        .await
        .expect(200);

    // The helper works on it; a ban will send it back to the queue.
    app.post(
        &format!("/api/v1/tickets/{t}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    // Platform bans are for admins, and reach every project.
    let ban = json!({"user_id": helper.id, "reason": "fraud", "until": "2099-01-01"});
    app.post("/api/v1/admin/bans", ban.clone(), Some(&owner.access))
        .await
        .expect(403);
    guildhall::domain::users::grant_admin(&mut app.conn(), &admin.email).unwrap();
    // The platform's review queue: every project's open flags, for admins.
    app.post(
        "/api/v1/flags",
        json!({"target": "ticket", "id": t, "reason": "other", "note": "for the platform queue"}),
        Some(&admin.access),
    )
    .await
    .expect(201);
    let queue = app
        .get("/api/v1/admin/flags", Some(&admin.access))
        .await
        .expect(200);
    assert!(
        queue.text.contains("for the platform queue"),
        "{}",
        queue.text
    );
    app.get("/api/v1/admin/flags", Some(&owner.access))
        .await
        .expect(403);
    {
        let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
        let mut a = crate::web::signed_in(&app, svc, &admin.email).await;
        let page = a.get("/admin/flags").await.expect(200);
        assert!(
            page.text.contains("for the platform queue")
                && page.text.contains("Ban from the platform")
        );
    }
    let b = app
        .post("/api/v1/admin/bans", ban, Some(&admin.access))
        .await
        .expect(201);
    assert_eq!(b.body["project"], serde_json::Value::Null);
    let back = app
        .get(&format!("/api/v1/tickets/{t}"), Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(
        back.body["status"], "open",
        "the banned helper's claim is released"
    );
    let other = app
        .open_ticket(&asker, "other", "A question over there", "public")
        .await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{other}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(403);
    assert!(
        r.text.contains("banned from Guildhall until 2099-01-01"),
        "{}",
        r.text
    );
    app.post(
        &format!("/api/v1/tickets/{t}/bids"),
        json!({"amount": 5000, "currency": "usd", "eta_hours": 4, "message": "hire me"}),
        Some(&helper.access),
    )
    .await
    .expect(403);
    app.request(
        actix_web::http::Method::DELETE,
        &format!("/api/v1/admin/bans/{}", helper.id),
        None,
        Some(&admin.access),
    )
    .await
    .expect(204);
    app.post(
        &format!("/api/v1/tickets/{other}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn the_pages_report_review_ban_and_lift() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let troll = app.user("troll").await;
    let reader = app.user("reader").await;
    app.project(&owner, "proj").await;
    let t = app
        .open_ticket(&troll, "proj", "A ticket with a rude reply", "public")
        .await;
    let m = app
        .post(
            &format!("/api/v1/tickets/{t}/messages"),
            json!({"body": "rude words here", "internal": false}),
            Some(&troll.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let svc =
        || async { actix_web::test::init_service(guildhall::app::build(app.state.clone())).await };
    // A reader reports the message from the ticket page.
    let mut r = crate::web::signed_in(&app, svc().await, &reader.email).await;
    let page = r.get(&format!("/t/{t}")).await.expect(200);
    assert!(page.text.contains("Report message") && page.text.contains("Report this ticket"));
    let token = crate::web::csrf(&page);
    let mid = m.to_string();
    r.post(
        &format!("/t/{t}/flag"),
        &[
            ("csrf", &token),
            ("target", "message"),
            ("target_id", &mid),
            ("reason", "rude"),
            ("note", "insults"),
        ],
    )
    .await
    .expect(303);
    // Its author sees no report form on their own message.
    let mut tr = crate::web::signed_in(&app, svc().await, &troll.email).await;
    let own = tr.get(&format!("/t/{t}")).await.expect(200);
    assert!(!own.text.contains("Report message"));
    // Others may not open the queue.
    r.get("/p/proj/flags").await.expect(404);
    // The maintainer reviews: upholds, bans, lifts.
    let mut o = crate::web::signed_in(&app, svc().await, &owner.email).await;
    let q = o.get("/p/proj/flags").await.expect(200);
    assert!(
        q.text.contains("rude words here") && q.text.contains("insults"),
        "{}",
        q.text
    );
    let token = crate::web::csrf(&q);
    let flag: i64 = guildhall::db::schema::flags::table
        .select(guildhall::db::schema::flags::id)
        .first(&mut app.conn())
        .unwrap();
    o.post(&format!("/p/proj/flags/{flag}/uphold"), &[("csrf", &token)])
        .await
        .expect(303);
    let troll_id = troll.id.to_string();
    o.post(
        "/p/proj/bans",
        &[
            ("csrf", &token),
            ("user_id", &troll_id),
            ("reason", "rudeness"),
            ("until", ""),
        ],
    )
    .await
    .expect(303);
    let q = o.get("/p/proj/flags?notice=banned").await.expect(200);
    assert!(q.text.contains("Banned.") && q.text.contains("rudeness"));
    let refused = tr
        .post(
            &format!("/t/{t}/message"),
            &[("csrf", &crate::web::csrf(&own)), ("body", "hello?")],
        )
        .await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.text);
    assert!(refused.text.contains("rudeness"));
    o.post(
        &format!("/p/proj/bans/{}/lift", troll.id),
        &[("csrf", &token)],
    )
    .await
    .expect(303);
    let q = o.get("/p/proj/flags").await.expect(200);
    assert!(q.text.contains("Nobody."));
}

#[actix_web::test]
async fn a_new_code_of_conduct_must_be_accepted_again() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let asker = app.user("asker").await;
    app.project(&owner, "proj").await;
    // Applying accepts the code of conduct in force.
    app.approved_helper(&owner, &helper, "proj").await;
    let t = app
        .open_ticket(&asker, "proj", "First question", "public")
        .await;
    let p = app
        .patch(
            "/api/v1/projects/proj",
            json!({"code_of_conduct": "Be kind. Version two."}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["coc_version"], 2, "{}", p.text);
    // The same text again is no new version.
    let p = app
        .patch(
            "/api/v1/projects/proj",
            json!({"code_of_conduct": "Be kind. Version two."}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["coc_version"], 2);
    // Claiming, bidding and posting need version two accepted.
    let r = app
        .post(
            &format!("/api/v1/tickets/{t}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "code_of_conduct_not_accepted");
    app.post(
        &format!("/api/v1/tickets/{t}/bids"),
        json!({"amount": 5000, "currency": "usd", "eta_hours": 4, "message": "quick fix"}),
        Some(&helper.access),
    )
    .await
    .expect(409);
    let d = app.draft(&asker, "proj", "Second question", "public").await;
    app.post(
        &format!("/api/v1/tickets/{d}/submit"),
        json!({}),
        Some(&asker.access),
    )
    .await
    .expect(409);
    for who in [&helper, &asker] {
        app.post(
            "/api/v1/projects/proj/coc/accept",
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    app.post(
        &format!("/api/v1/tickets/{t}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{d}/submit"),
        json!({}),
        Some(&asker.access),
    )
    .await
    .expect(200);
}
