//! The notification pipeline and its email channel, against a real SMTP
//! server (aiosmtpd on loopback): preferences through the API, a requester
//! set to "all" mailed once per thing that happens (threaded, with
//! one-click unsubscribe that mutes the ticket), nothing for the one who
//! acted, for someone active since, for an unverified address, or for
//! "digest"; and each recipient told once even with dispatchers racing.

use crate::mail::{smtp_app, FakeSmtp};
use crate::util::{TestApp, User};
use diesel::prelude::*;
use guildhall::db::schema::notifications;
use serde_json::json;

/// Project `proj` with its maintainer, an approved helper and a requester.
pub async fn project_with_team(app: &TestApp) -> (User, User, User) {
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("requester").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    (owner, helper, requester)
}

pub fn verify(app: &TestApp, user: &User) {
    let u = guildhall::domain::users::get(&mut app.conn(), user.id).unwrap();
    assert!(
        guildhall::domain::users::mark_verified(&mut app.conn(), u.id, &u.email_normalized)
            .unwrap()
    );
}

/// `user` chooses `level`, their digest at 08:00 in `zone`.
pub async fn choose(app: &TestApp, user: &User, level: &str, zone: &str) {
    app.request(
        actix_web::http::Method::PUT,
        "/api/v1/me/notifications",
        Some(json!({"level": level, "digest_hour": 8, "time_zone": zone})),
        Some(&user.access),
    )
    .await
    .expect(200);
}

pub fn send(app: &TestApp) {
    guildhall_jobs::BackgroundJob::enqueue(&guildhall::jobs::SendNotifications, &mut app.conn())
        .unwrap();
    app.run_jobs();
}

fn rows(app: &TestApp, user: i64) -> Vec<(String, i64, String)> {
    notifications::table
        .filter(notifications::user_id.eq(user))
        .order(notifications::id)
        .select((
            notifications::source,
            notifications::source_id,
            notifications::status,
        ))
        .load(&mut app.conn())
        .unwrap()
}

#[actix_web::test]
async fn settings_through_the_api() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.project(&owner, "proj").await;
    let private = app.open_ticket(&owner, "proj", "Private", "private").await;
    let got = app
        .get("/api/v1/me/notifications", Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(
        got.body,
        json!({"level": "digest", "digest_hour": 8, "time_zone": "UTC"})
    );
    let want = json!({"level": "all", "digest_hour": 7, "time_zone": "Europe/Berlin"});
    let put = app
        .request(
            actix_web::http::Method::PUT,
            "/api/v1/me/notifications",
            Some(want.clone()),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(put.body, want);
    for bad in [
        json!({"level": "all", "digest_hour": 7, "time_zone": "Mars/Olympus"}),
        json!({"level": "all", "digest_hour": 24, "time_zone": "UTC"}),
        json!({"level": "loud", "digest_hour": 7, "time_zone": "UTC"}),
    ] {
        app.request(
            actix_web::http::Method::PUT,
            "/api/v1/me/notifications",
            Some(bad),
            Some(&owner.access),
        )
        .await
        .expect(422);
    }
    let now = app
        .get("/api/v1/me/notifications", Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(now.body, want, "a refused change changed nothing");
    app.get("/api/v1/me/notifications", None).await.expect(401);

    // Per ticket: only one the caller may see.
    let put = |id: i64, level: &'static str, who: &User| {
        let token = who.access.clone();
        let app = &app;
        async move {
            app.request(
                actix_web::http::Method::PUT,
                &format!("/api/v1/tickets/{id}/notifications"),
                Some(json!({ "level": level })),
                Some(&token),
            )
            .await
        }
    };
    put(private, "mute", &owner).await.expect(200);
    put(private, "mute", &stranger).await.expect(404);
    put(private, "loud", &owner).await.expect(422);
    app.request(
        actix_web::http::Method::PUT,
        "/api/v1/projects/proj/notifications",
        Some(json!({"level": "all"})),
        Some(&stranger.access),
    )
    .await
    .expect(200);
}

#[actix_web::test]
async fn a_requester_set_to_all_is_mailed_once_per_thing() {
    let smtp = actix_web::rt::task::spawn_blocking(FakeSmtp::start)
        .await
        .unwrap();
    let app = smtp_app(&smtp);
    let (owner, helper, requester) = project_with_team(&app).await;
    for u in [&owner, &helper, &requester] {
        verify(&app, u);
    }
    app.run_jobs(); // the registration mails (already verified: none sent)
    let before = smtp.received().len();
    choose(&app, &requester, "all", "UTC").await;
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    send(&app);
    let got = smtp.received();
    assert_eq!(got.len(), before + 1, "one mail for the claim: {got:?}");
    let (to, raw) = got.last().unwrap();
    assert_eq!(to, &vec![requester.email.clone()]);
    assert!(raw.contains("Subject: [proj] Segments pile up"), "{raw}");
    assert!(raw.contains("claimed the ticket"), "{raw}");
    assert!(raw.contains(&format!("In-Reply-To: <ticket-{id}@guildhall.test>")));
    assert!(raw.contains(&format!("References: <ticket-{id}@guildhall.test>")));
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(raw.contains("List-Unsubscribe: <https://guildhall.test/unsubscribe?"));

    // Exactly once: another run sends nothing new.
    send(&app);
    assert_eq!(smtp.received().len(), before + 1);
    // The helper acted (the claim): nothing for them about it.
    let claim_event: i64 = {
        use guildhall::db::schema::ticket_events as te;
        te::table
            .filter(te::ticket_id.eq(id))
            .filter(te::action.eq("claim"))
            .select(te::id)
            .first(&mut app.conn())
            .unwrap()
    };
    assert!(rows(&app, requester.id)
        .iter()
        .any(|r| r.0 == "event" && r.1 == claim_event));
    assert!(!rows(&app, helper.id)
        .iter()
        .any(|r| r.0 == "event" && r.1 == claim_event));

    // The helper writes; the requester replies before the dispatcher runs:
    // they have seen it, so no mail. The helper (digest) gets a digest row.
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Try merging after the import."}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    std::thread::sleep(std::time::Duration::from_millis(5));
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Thanks, trying."}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    send(&app);
    assert_eq!(smtp.received().len(), before + 1, "active since: not told");
    let requester_rows = rows(&app, requester.id);
    assert_eq!(
        requester_rows.last().map(|r| (r.0.as_str(), r.2.as_str())),
        Some(("message", "skipped"))
    );
    let helper_rows = rows(&app, helper.id);
    assert_eq!(
        helper_rows.last().map(|r| (r.0.as_str(), r.2.as_str())),
        Some(("message", "digest"))
    );

    // One-click unsubscribe mutes this ticket: the resolution is not mailed.
    let raw = &smtp.received()[before].1;
    let text = raw.replace("=\r\n", "").replace("=3D", "=");
    // In the plain-text body (the header's copy may be folded).
    let body = text.find("\r\n\r\n").unwrap();
    let at = body + text[body..].find("/unsubscribe?").unwrap();
    let path: String = text[at..]
        .split(|c: char| c.is_whitespace() || c == '>' || c == '"')
        .next()
        .unwrap()
        .to_owned();
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let forged = path.replace("&s=", "&s=0");
    app.send(
        &svc,
        actix_web::test::TestRequest::post()
            .uri(&forged)
            .set_payload("List-Unsubscribe=One-Click"),
    )
    .await
    .expect(404);
    app.send(
        &svc,
        actix_web::test::TestRequest::post()
            .uri(&path)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload("List-Unsubscribe=One-Click"),
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
    send(&app);
    assert_eq!(smtp.received().len(), before + 1, "muted: no mail");
}

#[actix_web::test]
async fn racing_dispatchers_tell_each_recipient_once() {
    let app = TestApp::new();
    let (_owner, helper, requester) = project_with_team(&app).await;
    let mut tickets = Vec::new();
    for i in 0..6 {
        let id = app
            .open_ticket(&requester, "proj", &format!("Question {i}"), "public")
            .await;
        app.post(
            &format!("/api/v1/tickets/{id}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
        app.post(
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"body": "An answer."}),
            Some(&helper.access),
        )
        .await
        .expect(201);
        tickets.push(id);
    }
    let pool = app.pool.clone();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut made = 0;
                for _ in 0..3 {
                    loop {
                        match guildhall::domain::notifications::dispatch(
                            &mut pool.get().unwrap(),
                            guildhall::domain::notifications::EMAIL,
                        ) {
                            Ok(n) => {
                                made += n;
                                break;
                            }
                            // SQLite's single writer may be busy: try again.
                            Err(guildhall::error::AppError::Unavailable) => continue,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
                made
            })
        })
        .collect();
    let made: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let total: i64 = notifications::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(
        made as i64, total,
        "what the workers say they made is what exists"
    );
    let all = rows(&app, requester.id);
    // Per ticket the requester hears of the claim and the message.
    assert_eq!(all.len(), tickets.len() * 2, "{all:?}");
    let mut keys: Vec<_> = all.iter().map(|r| (r.0.clone(), r.1)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), all.len(), "no duplicates");
}

#[actix_web::test]
async fn a_revoked_helper_hears_nothing_more_of_a_private_ticket() {
    let app = TestApp::new();
    let (owner, helper, requester) = project_with_team(&app).await;
    let id = app
        .open_ticket(&requester, "proj", "Our private trace", "private")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Looking."}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
    let before = rows(&app, helper.id).len();
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/revoke", helper.id),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Here is the secret stack trace."}),
        Some(&requester.access),
    )
    .await
    .expect(201);
    guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
    assert_eq!(
        rows(&app, helper.id).len(),
        before,
        "nothing new for the revoked helper"
    );
}

/// The daily digest goes out at the helper's local hour in Berlin, once a
/// day, right across the change to summer time (on a clock the test
/// controls), with their ticket news and the top of their queue.
#[actix_web::test]
async fn the_digest_arrives_at_the_local_hour_across_daylight_saving() {
    use chrono::{DateTime, Utc};
    let smtp = actix_web::rt::task::spawn_blocking(FakeSmtp::start)
        .await
        .unwrap();
    let app = smtp_app(&smtp);
    let (_owner, helper, requester) = project_with_team(&app).await;
    verify(&app, &helper);
    choose(&app, &helper, "digest", "Europe/Berlin").await;
    let id = app
        .open_ticket(&requester, "proj", "Claimed question", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.open_ticket(&requester, "proj", "Waiting in the queue", "public")
        .await;
    let say = |text: &'static str| {
        let app = &app;
        let token = requester.access.clone();
        async move {
            app.post(
                &format!("/api/v1/tickets/{id}/messages"),
                json!({ "body": text }),
                Some(&token),
            )
            .await
            .expect(201);
            guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
        }
    };
    say("It still fails after the upgrade.").await;
    let run = |at: &str| {
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc);
        guildhall::jobs::send_digests::send_due(&app.pool, &app.state.mail, at).unwrap()
    };
    let mails = || {
        smtp.received()
            .into_iter()
            .filter(|(to, _)| to == &vec![helper.email.clone()])
            .map(|(_, raw)| raw)
            .collect::<Vec<_>>()
    };
    app.run_jobs(); // nothing else pending for the helper
    let before = mails().len();
    // 07:30 in Berlin (UTC+1): not yet.
    assert_eq!(run("2026-03-28T06:30:00Z"), 0);
    // 08:05 in Berlin: the digest.
    assert_eq!(run("2026-03-28T07:05:00Z"), 1);
    let got = mails();
    assert_eq!(got.len(), before + 1);
    let raw = got.last().unwrap().replace("=\r\n", "");
    assert!(
        raw.contains("Subject: Your Guildhall digest for 2026-03-28: 1 update"),
        "{raw}"
    );
    assert!(raw.contains("It still fails after the upgrade."), "{raw}");
    assert!(
        raw.contains("Waiting in the queue"),
        "the queue's top: {raw}"
    );
    // Once a day.
    assert_eq!(run("2026-03-28T09:00:00Z"), 0);
    // Summer time from 29 March (UTC+2): 07:30 local is 05:30 UTC, too
    // early; 08:00 local is 06:00 UTC.
    say("Here is the full trace.").await;
    assert_eq!(run("2026-03-29T05:30:00Z"), 0);
    assert_eq!(run("2026-03-29T06:00:00Z"), 1);
    let raw = mails().last().unwrap().replace("=\r\n", "");
    assert!(
        raw.contains("Subject: Your Guildhall digest for 2026-03-29"),
        "{raw}"
    );
    assert!(raw.contains("Here is the full trace.") && !raw.contains("It still fails"));
}

/// `@Name` in a message tells that person, if they may see it: the
/// project's maintainer (not otherwise on the ticket) is told of a public
/// message; the requester is not told of an internal note that names them;
/// a muted ticket stays quiet.
#[actix_web::test]
async fn mentions_reach_those_named_who_may_see() {
    let app = TestApp::new();
    let (owner, helper, requester) = project_with_team(&app).await;
    let id = app
        .open_ticket(&requester, "proj", "A question", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    let post = |body: &'static str, internal: bool| {
        let app = &app;
        let token = helper.access.clone();
        async move {
            app.post(
                &format!("/api/v1/tickets/{id}/messages"),
                json!({ "body": body, "internal": internal }),
                Some(&token),
            )
            .await
            .expect(201)
            .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let public = post("@owner could you look at this?", false).await;
    let internal = post("Between us: @requester seems stuck.", true).await;
    guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
    let owner_rows = rows(&app, owner.id);
    assert!(
        owner_rows.iter().any(|r| r.0 == "message" && r.1 == public),
        "{owner_rows:?}"
    );
    let summary: String = notifications::table
        .filter(notifications::user_id.eq(owner.id))
        .filter(notifications::source_id.eq(public))
        .select(notifications::summary)
        .first(&mut app.conn())
        .unwrap();
    assert!(summary.contains("mentioned you"), "{summary}");
    assert!(!rows(&app, requester.id)
        .iter()
        .any(|r| r.0 == "message" && r.1 == internal));

    // The owner mutes the ticket: a second mention is not news.
    app.request(
        actix_web::http::Method::PUT,
        &format!("/api/v1/tickets/{id}/notifications"),
        Some(json!({"level": "mute"})),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let again = post("@owner once more", false).await;
    guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
    assert!(!rows(&app, owner.id).iter().any(|r| r.1 == again));
}

/// A project's default level applies to its people until they choose:
/// set to "all" by the maintainer, a requester who never chose is told at
/// once; after they choose "digest" overall, their choice wins.
#[actix_web::test]
async fn a_projects_default_holds_until_people_choose() {
    let app = TestApp::new();
    let (owner, helper, requester) = project_with_team(&app).await;
    app.patch(
        "/api/v1/projects/proj",
        json!({"notification_default": "loud"}),
        Some(&owner.access),
    )
    .await
    .expect(422);
    let p = app
        .patch(
            "/api/v1/projects/proj",
            json!({"notification_default": "all"}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["notification_default"], "all");
    let id = app
        .open_ticket(&requester, "proj", "A question", "public")
        .await;
    let claim = |who: &User, what: &'static str| {
        let app = &app;
        let token = who.access.clone();
        async move {
            app.post(
                &format!("/api/v1/tickets/{id}/{what}"),
                json!({}),
                Some(&token),
            )
            .await
            .expect(200);
            guildhall::domain::notifications::dispatch(&mut app.conn(), "email").unwrap();
        }
    };
    claim(&helper, "claim").await;
    assert_eq!(
        rows(&app, requester.id).last().map(|r| r.2.clone()),
        Some("pending".to_owned()),
        "the project's default: at once"
    );
    choose(&app, &requester, "digest", "UTC").await;
    claim(&helper, "unclaim").await;
    assert_eq!(
        rows(&app, requester.id).last().map(|r| r.2.clone()),
        Some("digest".to_owned()),
        "their own choice wins"
    );
}
