//! Booking the consulting time a plan includes (issue 13 §1): spent from
//! the period's ledger credits at once, never more than the period holds,
//! scheduled, done or cancelled (minutes back while their period runs), and
//! cancelled with its subscription.

use crate::util::TestApp;
use serde_json::json;

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn consulting_time_is_booked_scheduled_and_given_back() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    let other = app.user("other").await;
    app.project(&owner, "proj").await;
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"},
                   "consulting_hours": 1}),
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
    let path = format!("/api/v1/subscriptions/{sub}/consulting");
    // Bad input and someone else's subscription are refused.
    let r = app
        .post(
            &path,
            json!({"minutes": 20, "topic": " "}),
            Some(&biz.access),
        )
        .await
        .expect(422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["minutes", "topic"]);
    app.post(
        &path,
        json!({"minutes": 30, "topic": "x"}),
        Some(&other.access),
    )
    .await
    .expect(404);
    // 45 of 60 minutes: then only 15 are left.
    let b = app
        .post(
            &path,
            json!({"minutes": 45, "topic": "Review our deployment", "preferred_at": "2099-01-05T10:00:00Z"}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body;
    let id = b["id"].as_i64().unwrap();
    assert_eq!(b["status"], "requested");
    let r = app
        .post(
            &path,
            json!({"minutes": 30, "topic": "More"}),
            Some(&biz.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "insufficient_funds");
    let mine = app
        .get("/api/v1/me/subscriptions", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(mine.body[0]["consulting_minutes_left"], 15, "{}", mine.body);
    // The maintainers see it and were mailed; a stranger sees nothing.
    let list = app
        .get("/api/v1/projects/proj/consulting", Some(&owner.access))
        .await
        .expect(200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    app.get("/api/v1/projects/proj/consulting", Some(&other.access))
        .await
        .expect(403);
    app.post(
        &format!("/api/v1/consulting/{id}/schedule"),
        json!({"at": "2099-01-05T10:00:00Z"}),
        Some(&other.access),
    )
    .await
    .expect(404);
    app.post(
        &format!("/api/v1/consulting/{id}/done"),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(409);
    let s = app
        .post(
            &format!("/api/v1/consulting/{id}/schedule"),
            json!({"at": "2099-01-05T10:00:00Z"}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(s.body["status"], "scheduled");
    app.post(
        &format!("/api/v1/consulting/{id}/done"),
        json!({}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/consulting/{id}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(409);
    assert_ledger_clean(&app);

    // Concurrent bookings never spend more than is left (15 minutes).
    let mut handles = Vec::new();
    for i in 0..4 {
        let pool = app.pool.clone();
        let user = biz.id;
        handles.push(std::thread::spawn(move || {
            guildhall::domain::consulting::book(
                &mut pool.get().unwrap(),
                sub,
                user,
                &guildhall::domain::consulting::Request {
                    minutes: 15,
                    topic: format!("race {i}"),
                    preferred_at: None,
                },
            )
            .is_ok()
        }));
    }
    let booked = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(booked, 1, "15 minutes were left for one booking of 15");
    let rows = app.get(&path, Some(&biz.access)).await.expect(200);
    let won: Vec<i64> = rows
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["topic"].as_str().unwrap().starts_with("race"))
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(won.len(), 1, "{}", rows.body);
    assert_ledger_clean(&app);
    // Cancelled: the minutes come back this period.
    if let Some(race) = won.first() {
        let c = app
            .post(
                &format!("/api/v1/consulting/{race}/cancel"),
                json!({}),
                Some(&biz.access),
            )
            .await
            .expect(200);
        assert_eq!(c.body["returned"], true);
    }
    let mine = app
        .get("/api/v1/me/subscriptions", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(mine.body[0]["consulting_minutes_left"], 15);
    // An open booking ends with its subscription, its minutes expired.
    let open = app
        .post(
            &path,
            json!({"minutes": 15, "topic": "Last one"}),
            Some(&biz.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    guildhall::domain::moderation::ban(&mut app.conn(), owner.id, Some(1), biz.id, "spam", None)
        .unwrap();
    let b = app.get(&path, Some(&biz.access)).await.expect(200);
    let last = b
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == open)
        .unwrap()
        .clone();
    assert_eq!(
        (last["status"].as_str(), last["returned"].as_bool()),
        (Some("cancelled"), Some(false))
    );
    assert_ledger_clean(&app);

    // The pages.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut o = crate::web::signed_in(&app, svc, &owner.email).await;
    let page = o.get("/p/proj/consulting").await.expect(200);
    assert!(page.text.contains("Review our deployment"), "{}", page.text);
}
