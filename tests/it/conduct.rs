//! The platform's code of conduct, versioned (issue 13 §4): published by
//! admins; posting, claiming and bidding need its current version accepted
//! beside the project's, with the time recorded.

use crate::util::TestApp;
use serde_json::json;

#[actix_web::test]
async fn the_platform_code_of_conduct_is_versioned_and_required() {
    let app = TestApp::new();
    let admin = app.user("admin").await;
    let owner = app.user("owner").await;
    let req = app.user("req").await;
    app.project(&owner, "proj").await;
    // None yet: nothing more is required.
    app.get("/api/v1/code-of-conduct", None).await.expect(404);
    app.open_ticket(&req, "proj", "Before any platform code", "public")
        .await;

    // Only admins publish; bad text is refused.
    let text = json!({"body": "Be kind. No harassment."});
    app.put_json(
        "/api/v1/admin/code-of-conduct",
        text.clone(),
        Some(&owner.access),
    )
    .await
    .expect(403);
    guildhall::domain::users::grant_admin(&mut app.conn(), &admin.email).unwrap();
    app.put_json(
        "/api/v1/admin/code-of-conduct",
        json!({"body": "  "}),
        Some(&admin.access),
    )
    .await
    .expect(422);
    let v = app
        .put_json(
            "/api/v1/admin/code-of-conduct",
            text.clone(),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(v.body["version"], 1);
    // The same text again is the same version.
    let again = app
        .put_json("/api/v1/admin/code-of-conduct", text, Some(&admin.access))
        .await
        .expect(200);
    assert_eq!(again.body["version"], 1);
    let c = app.get("/api/v1/code-of-conduct", None).await.expect(200);
    assert_eq!(c.body["body"], "Be kind. No harassment.");

    // The requester accepted the project's before: submitting now needs the
    // platform's too.
    let draft = app
        .draft(&req, "proj", "After the platform code", "public")
        .await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{draft}/submit"),
            json!({}),
            Some(&req.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "code_of_conduct_not_accepted");
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("/code-of-conduct"));
    let a = app
        .post(
            "/api/v1/code-of-conduct/accept",
            json!({}),
            Some(&req.access),
        )
        .await
        .expect(200);
    assert_eq!(a.body["version"], 1);
    let first = a.body["accepted_at"].clone();
    let a2 = app
        .post(
            "/api/v1/code-of-conduct/accept",
            json!({}),
            Some(&req.access),
        )
        .await
        .expect(200);
    assert_eq!(a2.body["accepted_at"], first, "the first time is kept");
    app.post(
        &format!("/api/v1/tickets/{draft}/submit"),
        json!({}),
        Some(&req.access),
    )
    .await
    .expect(200);

    // A new version must be accepted again; accepting the project's code
    // accepts the platform's current one too.
    let v2 = app
        .put_json(
            "/api/v1/admin/code-of-conduct",
            json!({"body": "Be kind. No harassment. No spam."}),
            Some(&admin.access),
        )
        .await
        .expect(200);
    assert_eq!(v2.body["version"], 2);
    let d2 = app.draft(&req, "proj", "After version 2", "public").await;
    app.post(
        &format!("/api/v1/tickets/{d2}/submit"),
        json!({}),
        Some(&req.access),
    )
    .await
    .expect(409);
    app.post(
        "/api/v1/projects/proj/coc/accept",
        json!({}),
        Some(&req.access),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{d2}/submit"),
        json!({}),
        Some(&req.access),
    )
    .await
    .expect(200);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::{audit_log as al, platform_coc_acceptances as pca};
        let v: i32 = pca::table
            .find(req.id)
            .select(pca::version)
            .first(&mut app.conn())
            .unwrap();
        assert_eq!(v, 2);
        let n: i64 = al::table
            .filter(al::action.eq("conduct.publish"))
            .count()
            .get_result(&mut app.conn())
            .unwrap();
        assert_eq!(n, 2);
    }

    // The page: the text and, for the admin, the form.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &admin.email).await;
    let page = b.get("/code-of-conduct").await.expect(200);
    assert!(page.text.contains("No spam.") && page.text.contains("I accept version 2"));
    assert!(page.text.contains("Publish a new version"));
    let token = crate::web::csrf(&page);
    b.post("/code-of-conduct/accept", &[("csrf", &token)])
        .await
        .expect(303);
    let page = b.get("/code-of-conduct").await.expect(200);
    assert!(page.text.contains("You accepted this version"));
}
