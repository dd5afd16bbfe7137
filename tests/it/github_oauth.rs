//! Sign in with GitHub against the fake's OAuth web flow over real HTTP:
//! the author of an imported issue finds their draft; a signed-in account
//! links its GitHub identity; an address with an account is never taken
//! over; a forged or replayed callback does nothing; a maintainer who
//! administers the repository links it, which verifies the project.

use crate::fake_github::{
    FakeGithub, Issue, Person, APP_ID, CLIENT_ID, CLIENT_SECRET, INSTALLATION,
};
use crate::github::{deliver, payload, project_for, verified, SECRET};
use crate::util::{Resp, TestApp};
use crate::web::{csrf, Browser};
use diesel::prelude::*;
use guildhall::db::schema::{github_repositories as gr, tickets, user_identities as ui, users};
use serde_json::json;
use std::collections::HashMap;

fn app_with(gh: &FakeGithub) -> TestApp {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-app-test-key.pem"
    );
    TestApp::builder()
        .env("GUILDHALL_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("GUILDHALL_GITHUB_APP_ID", &APP_ID.to_string())
        .env("GUILDHALL_GITHUB_PRIVATE_KEY_FILE", key)
        .env("GUILDHALL_GITHUB_CLIENT_ID", CLIENT_ID)
        .env("GUILDHALL_GITHUB_CLIENT_SECRET", CLIENT_SECRET)
        .env("GUILDHALL_GITHUB_API_BASE", &gh.base)
        .build()
}

fn person(id: i64, login: &str, email: Option<&str>, admin_of: &[&str]) -> Person {
    Person {
        id,
        login: login.into(),
        name: Some(format!("{login} (name)")),
        email: email.map(str::to_owned),
        admin_of: admin_of.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What GitHub's authorize page does when the person approves: follows
/// the app's redirect there over real HTTP and returns the callback's path
/// and query, as the browser would be sent back.
async fn approve_on_github(to_github: &Resp) -> String {
    let url = to_github.header("location").expect("redirect to GitHub");
    let back = actix_web::rt::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let r = agent.get(&url).call().expect("authorize");
        assert_eq!(r.status(), 302);
        r.header("location").unwrap().to_owned()
    })
    .await
    .unwrap();
    let at = back
        .find("/auth/github/callback")
        .expect("back to the callback");
    back[at..].to_owned()
}

/// Starts a flow from `start` in browser `b` as `who` and comes back.
async fn sign_in_flow<S, B>(
    b: &mut Browser<'_, S>,
    gh: &FakeGithub,
    who: Person,
    start: &str,
) -> Resp
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    gh.signing_in(who);
    // Only our own pages start a flow: the link carries the page's token.
    let page = b.get("/login").await.expect(200);
    let token = csrf(&page);
    let sep = if start.contains('?') { '&' } else { '?' };
    let to_github = b
        .get(&format!("{start}{sep}csrf={token}"))
        .await
        .expect(303);
    let location = to_github.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{}/login/oauth/authorize?", gh.base)),
        "{location}"
    );
    assert!(
        location.contains(&format!("client_id={CLIENT_ID}")),
        "{location}"
    );
    assert!(!location.contains(CLIENT_SECRET));
    let callback = approve_on_github(&to_github).await;
    b.get(&callback).await
}

fn identity(app: &TestApp, github_id: i64) -> Option<i64> {
    ui::table
        .filter(ui::external_id.eq(github_id.to_string()))
        .select(ui::user_id)
        .first(&mut app.conn())
        .optional()
        .unwrap()
}

#[actix_web::test]
async fn sign_in_with_github_gives_the_author_their_draft() {
    let gh = actix_web::rt::task::spawn_blocking(FakeGithub::start)
        .await
        .unwrap();
    let app = app_with(&gh);
    let owner = app.user("owner").await;
    let alice = app.user("alice").await;
    project_for(&app, &owner, "hello", "Codertocat/Hello-World").await;
    deliver(&app, "installation", "i1", &payload("installation.created"))
        .await
        .expect(200);
    // The project keeps what it imports private.
    app.patch(
        "/api/v1/projects/hello",
        json!({"github_import_visibility": "secret"}),
        Some(&owner.access),
    )
    .await
    .expect(422);
    let p = app
        .patch(
            "/api/v1/projects/hello",
            json!({"github_import_visibility": "private"}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(p.body["github_import_visibility"], "private");
    // Codertocat's issue becomes a draft ticket on a maintainer's +support.
    let mut event = payload("issue_comment.created");
    gh.add_issue(
        "Codertocat/Hello-World",
        1,
        Issue {
            node_id: event["issue"]["node_id"].as_str().unwrap().to_owned(),
            title: "Spelling error in the README file".into(),
            body: "The README says 'teh' twice.".into(),
            open: true,
            author_id: 21031067,
            author: "Codertocat".into(),
            labels: vec![],
        },
        &[],
    );
    event["installation"] = json!({"id": INSTALLATION});
    event["comment"]["body"] = json!("+support");
    event["comment"]["author_association"] = json!("OWNER");
    deliver(&app, "issue_comment", "c1", &event)
        .await
        .expect(200);
    app.run_jobs();
    let (ticket, placeholder, visibility): (i64, i64, String) = tickets::table
        .filter(tickets::status.eq("draft"))
        .select((tickets::id, tickets::requester_id, tickets::visibility))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(visibility, "private", "as the project says");

    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = Browser {
        app: &app,
        svc,
        jar: HashMap::new(),
    };
    // The sign-in page offers GitHub; `next` is only ever a plain local path
    // (browsers drop a tab: `/\t/evil.example` would be `//evil.example`).
    let login = b.get(&format!("/login?next=/t/{ticket}")).await.expect(200);
    assert!(login.text.contains("Sign in with GitHub"), "{}", login.text);
    let tricked = b.get("/login?next=/%09/evil.example").await.expect(200);
    assert!(
        tricked.text.contains("name=\"next\" value=\"/\""),
        "{}",
        tricked.text
    );
    let token = csrf(&login);
    gh.signing_in(person(1, "nobody", None, &[]));
    let to_github = b
        .get(&format!(
            "/auth/github?next=/;Domain=evil.example&csrf={token}"
        ))
        .await
        .expect(303);
    let flow = to_github.header("set-cookie").unwrap();
    assert!(!flow.contains("evil.example"), "{flow}");
    // Without the page's token no flow starts.
    b.get("/auth/github?next=/me").await.expect(403);

    // A callback that was not started in this browser, or with another
    // state, does nothing.
    let forged = b
        .get("/auth/github/callback?code=code1&state=forged")
        .await
        .expect(400);
    assert!(forged.text.contains("start again"), "{}", forged.text);

    // Codertocat signs in with GitHub: the account made for them becomes
    // theirs, with the address GitHub verified, and they land on the draft.
    let codertocat = person(21031067, "Codertocat", Some("codertocat@example.com"), &[]);
    let back = sign_in_flow(
        &mut b,
        &gh,
        codertocat.clone(),
        &format!("/auth/github?next=/t/{ticket}"),
    )
    .await
    .expect(303);
    assert_eq!(
        back.header("location").as_deref(),
        Some(format!("/t/{ticket}").as_str())
    );
    assert!(b.jar.contains_key("gh_session"));
    assert!(
        !b.jar.contains_key("gh_oauth"),
        "the flow's cookie is spent"
    );
    let (email, can_login, verified_at): (String, bool, Option<chrono::NaiveDateTime>) =
        users::table
            .find(placeholder)
            .select((users::email, users::can_login, users::email_verified_at))
            .first(&mut app.conn())
            .unwrap();
    assert_eq!(
        (email.as_str(), can_login),
        ("codertocat@example.com", true)
    );
    assert!(verified_at.is_some());
    // The draft is theirs to edit and submit.
    let page = b.get(&format!("/t/{ticket}")).await.expect(200);
    assert!(page.text.contains("Spelling error in the README file"));
    assert!(
        page.text.contains("Codertocat/Hello-World#1"),
        "the issue it came from"
    );
    let token = csrf(&page);
    // Submitting asks for the project's code of conduct once.
    assert!(page.text.contains("name=\"coc\""), "{}", page.text);
    b.post(&format!("/t/{ticket}/submit"), &[("csrf", token.as_str())])
        .await
        .expect(409);
    b.post(
        &format!("/t/{ticket}/edit"),
        &[
            ("csrf", token.as_str()),
            ("title", "Spelling error: teh"),
            (
                "body",
                "The README says 'teh' twice, in the intro and in Usage.",
            ),
            ("tags", "docs, typo"),
        ],
    )
    .await
    .expect(303);
    b.post(
        &format!("/t/{ticket}/submit"),
        &[("csrf", token.as_str()), ("coc", "yes")],
    )
    .await
    .expect(303);
    let (status, requester, title): (String, i64, String) = tickets::table
        .find(ticket)
        .select((tickets::status, tickets::requester_id, tickets::title))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(
        (status.as_str(), requester, title.as_str()),
        ("open", placeholder, "Spelling error: teh")
    );
    // The identity keeps the GitHub login; /me shows it.
    let me = b.get("/me").await.expect(200);
    assert!(me.text.contains("@Codertocat"), "{}", me.text);

    // A replayed callback (the code is spent, and so is the flow's cookie)
    // does nothing.
    let mut other = Browser {
        app: &app,
        svc: actix_web::test::init_service(guildhall::app::build(app.state.clone())).await,
        jar: HashMap::new(),
    };
    other
        .get("/auth/github/callback?code=code2&state=x")
        .await
        .expect(400);

    // Signed in with a password, Alice links her GitHub account; later she
    // signs in with GitHub alone.
    let mut a = crate::web::signed_in(
        &app,
        actix_web::test::init_service(guildhall::app::build(app.state.clone())).await,
        &alice.email,
    )
    .await;
    let octocat = person(583231, "octocat", Some("octo@example.com"), &[]);
    sign_in_flow(&mut a, &gh, octocat.clone(), "/auth/github?next=/me")
        .await
        .expect(303);
    assert_eq!(identity(&app, 583231), Some(alice.id));
    let alice_email: String = users::table
        .find(alice.id)
        .select(users::email)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(alice_email, alice.email, "linking changes no address");
    let mut fresh = Browser {
        app: &app,
        svc: actix_web::test::init_service(guildhall::app::build(app.state.clone())).await,
        jar: HashMap::new(),
    };
    sign_in_flow(&mut fresh, &gh, octocat, "/auth/github?next=/me")
        .await
        .expect(303);
    let me = fresh.get("/me").await.expect(200);
    assert!(me.text.contains("@octocat"), "{}", me.text);
    // Codertocat's GitHub account cannot be linked to Alice's account too.
    sign_in_flow(&mut a, &gh, codertocat, "/auth/github?next=/me")
        .await
        .expect(409);
    assert_eq!(identity(&app, 21031067), Some(placeholder));

    // An address that has an account is not taken over by a GitHub
    // account that claims it: its owner must sign in and link.
    let users_before: i64 = users::table.count().get_result(&mut app.conn()).unwrap();
    let mut stranger = Browser {
        app: &app,
        svc: actix_web::test::init_service(guildhall::app::build(app.state.clone())).await,
        jar: HashMap::new(),
    };
    let r = sign_in_flow(
        &mut stranger,
        &gh,
        person(777, "mallory", Some(&owner.email), &[]),
        "/auth/github",
    )
    .await
    .expect(409);
    assert!(r.text.contains("exists already"), "{}", r.text);
    assert!(!stranger.jar.contains_key("gh_session"));
    assert_eq!(identity(&app, 777), None);
    // Without a verified address nobody is made.
    sign_in_flow(
        &mut stranger,
        &gh,
        person(778, "nomail", None, &[]),
        "/auth/github",
    )
    .await
    .expect(409);
    let users_after: i64 = users::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(users_after, users_before);
    // A new GitHub user with a verified address gets an account.
    sign_in_flow(
        &mut stranger,
        &gh,
        person(779, "newbie", Some("newbie@example.com"), &[]),
        "/auth/github",
    )
    .await
    .expect(303);
    assert!(stranger.jar.contains_key("gh_session"));
    assert!(identity(&app, 779).is_some());
}

#[actix_web::test]
async fn a_repository_admin_links_and_verifies_the_project() {
    let gh = actix_web::rt::task::spawn_blocking(FakeGithub::start)
        .await
        .unwrap();
    gh.add_repo("acme/widget", 4711);
    let app = app_with(&gh);
    let owner = app.user("owner").await;
    let comaint = app.user("comaint").await;
    let outsider = app.user("outsider").await;
    let project = project_for(&app, &owner, "widget", "acme/widget").await;
    app.post(
        "/api/v1/projects/widget/maintainers",
        json!({"user_id": comaint.id}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let svc =
        || async { actix_web::test::init_service(guildhall::app::build(app.state.clone())).await };

    // Not a maintainer: no flow starts.
    let mut o = crate::web::signed_in(&app, svc().await, &outsider.email).await;
    o.get("/p/widget/github/link").await.expect(403);

    // A started flow needs the page's token.
    let mut w = crate::web::signed_in(&app, svc().await, &owner.email).await;
    w.get("/p/widget/github/link").await.expect(403);

    // A co-maintainer (added without their consent) cannot lend their
    // GitHub rights to the project, even as the repository's admin.
    let mut c = crate::web::signed_in(&app, svc().await, &comaint.email).await;
    let settings = c.get("/p/widget/settings").await.expect(200);
    assert!(settings.text.contains("Link the repository with GitHub"));
    let r = sign_in_flow(
        &mut c,
        &gh,
        person(901, "comaint-gh", Some("c@example.com"), &["acme/widget"]),
        "/p/widget/github/link",
    )
    .await
    .expect(403);
    assert!(r.text.contains("maintainer of record"), "{}", r.text);
    assert_eq!(identity(&app, 901), None, "a failed link links nothing");

    // The creator, but GitHub does not show them as the repository's admin.
    let r = sign_in_flow(
        &mut w,
        &gh,
        person(903, "owner-gh", Some("o@example.com"), &[]),
        "/p/widget/github/link",
    )
    .await
    .expect(403);
    assert!(r.text.contains("do not administer"), "{}", r.text);
    assert_eq!(verified(&app, project), None);
    let linked: i64 = gr::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(linked, 0);

    // The owner administers it: linked and verified.
    let back = sign_in_flow(
        &mut w,
        &gh,
        person(
            902,
            "acme-admin",
            Some("admin@acme.example"),
            &["acme/widget"],
        ),
        "/p/widget/github/link",
    )
    .await
    .expect(303);
    assert_eq!(
        back.header("location").as_deref(),
        Some("/p/widget/settings")
    );
    assert_eq!(verified(&app, project).as_deref(), Some("github_admin"));
    let (repo_id, full_name, linked_to): (i64, String, Option<i64>) = gr::table
        .select((gr::id, gr::full_name, gr::project_id))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(
        (repo_id, full_name.as_str(), linked_to),
        (4711, "acme/widget", Some(project))
    );
    assert_eq!(
        identity(&app, 902),
        None,
        "linking proves the repository only"
    );
    let settings = w.get("/p/widget/settings").await.expect(200);
    assert!(
        settings.text.contains("Linked to the GitHub repository"),
        "{}",
        settings.text
    );
    let p = app.get("/api/v1/projects/widget", None).await.expect(200);
    assert_eq!(p.body["verified_via"], "github_admin");
}

#[actix_web::test]
async fn a_maintainer_turns_a_ticket_into_a_github_issue() {
    let gh = actix_web::rt::task::spawn_blocking(FakeGithub::start)
        .await
        .unwrap();
    let app = app_with(&gh);
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    project_for(&app, &owner, "hello", "Codertocat/Hello-World").await;
    project_for(&app, &owner, "elsewhere", "acme/elsewhere").await;
    app.approved_helper(&owner, &helper, "hello").await;
    deliver(&app, "installation", "i1", &payload("installation.created"))
        .await
        .expect(200);
    let id = app
        .open_ticket(
            &requester,
            "hello",
            "Crash when the index is empty",
            "public",
        )
        .await;
    let private = app
        .open_ticket(&requester, "hello", "Our internal setup fails", "private")
        .await;
    let other = app
        .open_ticket(&requester, "elsewhere", "Where is the manual?", "public")
        .await;
    let path = |t: i64| format!("/api/v1/tickets/{t}/github-issue");

    // Linked by name only (the installer is nobody's identity here): the
    // bot does not post for a project that has not proved control.
    let r = app
        .post(&path(id), json!({}), Some(&owner.access))
        .await
        .expect(409);
    assert_eq!(r.body["code"], "project_unverified");
    app.verify_project("hello");

    // Only maintainers; never a private ticket.
    app.post(&path(id), json!({}), Some(&helper.access))
        .await
        .expect(403);
    app.post(&path(id), json!({}), Some(&requester.access))
        .await
        .expect(403);
    app.post(&path(id), json!({}), None).await.expect(401);
    app.post(&path(private), json!({}), Some(&owner.access))
        .await
        .expect(409);
    // A project whose repository the App is not installed on: a prefilled
    // link instead.
    app.post(&path(other), json!({}), Some(&owner.access))
        .await
        .expect(409);
    assert!(gh.state.lock().unwrap().issues.is_empty());

    let r = app
        .post(&path(id), json!({}), Some(&owner.access))
        .await
        .expect(201);
    assert_eq!(r.body["repository"], "Codertocat/Hello-World");
    assert_eq!(r.body["number"], 1);
    assert_eq!(
        r.body["url"],
        format!("{}/Codertocat/Hello-World/issues/1", gh.base)
    );
    {
        let s = gh.state.lock().unwrap();
        let issue = &s.issues[&("Codertocat/Hello-World".to_owned(), 1)];
        assert_eq!(issue.title, "Crash when the index is empty");
        assert!(
            issue
                .body
                .ends_with(&format!("Guildhall ticket: http://127.0.0.1:8080/t/{id}")),
            "{}",
            issue.body
        );
    }
    // One issue per ticket.
    app.post(&path(id), json!({}), Some(&owner.access))
        .await
        .expect(409);
    assert_eq!(gh.state.lock().unwrap().issues.len(), 1);

    // The ticket page links the issue; the other project's offers a
    // prefilled link; a private ticket offers nothing.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut w = crate::web::signed_in(&app, svc, &owner.email).await;
    let page = w.get(&format!("/t/{id}")).await.expect(200);
    assert!(
        page.text.contains(&format!(
            "href=\"{}/Codertocat/Hello-World/issues/1\"",
            gh.base
        )),
        "{}",
        page.text
    );
    assert!(!page.text.contains("/github-issue"));
    let page = w.get(&format!("/t/{other}")).await.expect(200);
    assert!(
        page.text.contains(&format!(
            "{}/acme/elsewhere/issues/new?title=Where",
            gh.base
        )),
        "{}",
        page.text
    );
    let page = w.get(&format!("/t/{private}")).await.expect(200);
    assert!(page
        .text
        .contains("Private tickets do not become public GitHub issues"));
    // The one-click button, pressed in the page, for a second public ticket.
    let second = app
        .open_ticket(&requester, "hello", "Docs for the merge policy", "public")
        .await;
    let page = w.get(&format!("/t/{second}")).await.expect(200);
    assert!(page
        .text
        .contains("Open as an issue in Codertocat/Hello-World"));
    let token = csrf(&page);
    w.post(
        &format!("/t/{second}/github-issue"),
        &[("csrf", token.as_str())],
    )
    .await
    .expect(303);
    let page = w.get(&format!("/t/{second}")).await.expect(200);
    assert!(
        page.text.contains("Codertocat/Hello-World#2"),
        "{}",
        page.text
    );

    // Without the App configured the endpoint is not there.
    let bare = TestApp::new();
    let o = bare.user("owner").await;
    bare.project(&o, "pp").await;
    let t = bare
        .open_ticket(&o, "pp", "A question here", "public")
        .await;
    bare.post(&path(t), json!({}), Some(&o.access))
        .await
        .expect(404);
}

#[actix_web::test]
async fn a_floss_maintainer_proves_a_repository_and_gets_the_discount() {
    let gh = actix_web::rt::task::spawn_blocking(FakeGithub::start)
        .await
        .unwrap();
    gh.add_repo("oss/tool", 5001);
    gh.add_repo("oss/secret", 5002);
    gh.set_repo_meta("oss/secret", true, Some("MIT"));
    gh.add_repo("oss/closed", 5003);
    gh.set_repo_meta("oss/closed", false, Some("BUSL-1.1"));
    let app = app_with(&gh);
    let owner = app.user("owner").await;
    let dev = app.user("dev").await;
    app.project(&owner, "proj").await;
    let plan = app
        .post(
            "/api/v1/projects/proj/plans",
            json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"},
                   "floss_discount_pct": 50}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let floss = json!({"plan_id": plan, "context": "floss"});
    let r = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            floss.clone(),
            Some(&dev.access),
        )
        .await
        .expect(409);
    assert_eq!(r.body["code"], "floss_proof_required");

    let svc =
        || async { actix_web::test::init_service(guildhall::app::build(app.state.clone())).await };
    let mut b = crate::web::signed_in(&app, svc().await, &dev.email).await;
    let page = b.get("/me/floss").await.expect(200);
    assert!(page.text.contains("not proved any open-source work"));
    // Without the page's token no flow starts; a malformed name is refused.
    b.get("/me/floss/github?repo=oss/tool").await.expect(403);
    let token = csrf(&page);
    b.get(&format!(
        "/me/floss/github?repo=not%20a%20repo&csrf={token}"
    ))
    .await
    .expect(422);
    let proofs = |app: &TestApp| -> i64 {
        guildhall::db::schema::floss_proofs::table
            .count()
            .get_result(&mut app.conn())
            .unwrap()
    };
    // Refused: not theirs, private, not an OSI licence.
    let me = |admin_of: &[&str]| person(950, "dev-gh", Some("dev@oss.example"), admin_of);
    for (repo, admin_of, why) in [
        ("oss/tool", &[][..], "admin or maintainer"),
        ("oss/secret", &["oss/secret"][..], "private"),
        (
            "oss/closed",
            &["oss/closed"][..],
            "not an OSI-approved licence",
        ),
    ] {
        let r = sign_in_flow(
            &mut b,
            &gh,
            me(admin_of),
            &format!("/me/floss/github?repo={repo}"),
        )
        .await
        .expect(400);
        assert!(r.text.contains(why), "{repo}: {}", r.text);
        assert_eq!(proofs(&app), 0, "{repo}: nothing is stored");
    }
    // Proved.
    let back = sign_in_flow(
        &mut b,
        &gh,
        me(&["oss/tool"]),
        "/me/floss/github?repo=oss/tool",
    )
    .await
    .expect(303);
    assert_eq!(
        back.header("location").as_deref(),
        Some("/me/floss?notice=proved")
    );
    let page = b.get("/me/floss?notice=proved").await.expect(200);
    assert!(page.text.contains("oss/tool (MIT, admin)"), "{}", page.text);
    assert_eq!(identity(&app, 950), None, "proving links no account");

    // The discount applies: half of 49.00.
    let s = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            floss,
            Some(&dev.access),
        )
        .await
        .expect(201);
    assert_eq!(s.body["subscription"]["discount_pct"], 50);
    let amount: i64 = guildhall::db::schema::subscription_periods::table
        .select(guildhall::db::schema::subscription_periods::amount)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(amount, 2450);

    // A year later the proof has lapsed: the renewal is charged in full.
    {
        use guildhall::db::schema::{floss_proofs as fp, subscriptions as su};
        let old = guildhall::domain::now() - chrono::Duration::days(366);
        diesel::update(fp::table)
            .set(fp::checked_at.eq(old))
            .execute(&mut app.conn())
            .unwrap();
        let past = guildhall::domain::now() - chrono::Duration::minutes(1);
        diesel::update(su::table)
            .set(su::period_end.eq(Some(past)))
            .execute(&mut app.conn())
            .unwrap();
    }
    let page = b.get("/me/floss").await.expect(200);
    assert!(page.text.contains("Expired"));
    guildhall::domain::plans::renew_due(&app.pool, &guildhall::payments::Sandbox).unwrap();
    let amounts: Vec<i64> = guildhall::db::schema::subscription_periods::table
        .order(guildhall::db::schema::subscription_periods::number)
        .select(guildhall::db::schema::subscription_periods::amount)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(amounts, [2450, 4900]);
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}
