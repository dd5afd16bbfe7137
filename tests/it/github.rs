//! The GitHub App's webhook: `X-Hub-Signature-256` over the raw body before
//! anything is read, each `X-GitHub-Delivery` once, and installations
//! linking projects to the repositories their `repo_url` names — a proof
//! of control only when the installer is a maintainer's GitHub identity.
//! Payloads: `tests/fixtures/github-webhooks` (@octokit/webhooks-examples).

use crate::util::{Resp, TestApp, User};
use actix_web::test::TestRequest;
use diesel::prelude::*;
use guildhall::db::schema::{github_deliveries, github_repositories, projects, user_identities};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub(crate) const SECRET: &str = "github-webhook-secret";

pub(crate) fn app() -> TestApp {
    TestApp::builder()
        .env("GUILDHALL_GITHUB_WEBHOOK_SECRET", SECRET)
        .build()
}

pub(crate) fn payload(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/github-webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers `body` as event `event` with delivery id `delivery`, signed
/// with `signature` (None: unsigned).
async fn deliver_raw(
    app: &TestApp,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> Resp {
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut req = TestRequest::post()
        .uri("/api/v1/webhooks/github")
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-github-event", event))
        .insert_header(("x-github-delivery", delivery));
    if let Some(sig) = signature {
        req = req.insert_header(("x-hub-signature-256", sig));
    }
    app.send(&svc, req.set_payload(body)).await
}

pub(crate) async fn deliver(app: &TestApp, event: &str, delivery: &str, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap();
    let sig = sign(&bytes);
    deliver_raw(app, event, delivery, bytes, Some(sig)).await
}

async fn metric(app: &TestApp, outcome: &str) -> u64 {
    let r = app.get("/metrics", None).await.expect(200);
    let line = format!("guildhall_inbound_total{{channel=\"github\",outcome=\"{outcome}\"}} ");
    r.text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

fn deliveries(app: &TestApp) -> Vec<String> {
    github_deliveries::table
        .select(github_deliveries::delivery_id)
        .order(github_deliveries::delivery_id)
        .load(&mut app.conn())
        .unwrap()
}

/// A project of `owner` whose repo_url names `repo`.
pub(crate) async fn project_for(app: &TestApp, owner: &User, slug: &str, repo: &str) -> i64 {
    app.post(
        "/api/v1/projects",
        json!({"slug": slug, "name": slug, "repo_url": format!("https://github.com/{repo}"),
               "description": "a test project", "topics": ["rust"]}),
        Some(&owner.access),
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

pub(crate) fn verified(app: &TestApp, project: i64) -> Option<String> {
    projects::table
        .find(project)
        .select(projects::verified_via)
        .first(&mut app.conn())
        .unwrap()
}

#[actix_web::test]
async fn forged_stale_replayed_and_malformed_deliveries_write_nothing() {
    // Not configured: there is no endpoint.
    let plain = TestApp::new();
    deliver(&plain, "ping", "d0", &payload("ping.ping"))
        .await
        .expect(404);

    let app = app();
    let ping = payload("ping.ping");
    let r = deliver(&app, "ping", "d1", &ping).await.expect(200);
    assert_eq!(r.body["outcome"], "pong");
    // The same delivery again: refused, nothing new.
    let r = deliver(&app, "ping", "d1", &ping).await.expect(409);
    assert_eq!(r.body["code"], "duplicate_delivery");

    let bytes = serde_json::to_vec(&ping).unwrap();
    // Signed with another secret, or over other bytes, or not at all.
    let mut other = Hmac::<Sha256>::new_from_slice(b"not the secret").unwrap();
    other.update(&bytes);
    let forged = format!("sha256={}", hex::encode(other.finalize().into_bytes()));
    deliver_raw(&app, "ping", "d2", bytes.clone(), Some(forged))
        .await
        .expect(401);
    let mut tampered = bytes.clone();
    tampered.push(b' ');
    deliver_raw(&app, "ping", "d3", tampered, Some(sign(&bytes)))
        .await
        .expect(401);
    deliver_raw(&app, "ping", "d4", bytes.clone(), None)
        .await
        .expect(401);
    deliver_raw(&app, "ping", "d5", bytes.clone(), Some("sha256=zz".into()))
        .await
        .expect(401);
    // Signed but not JSON; signed but an installation without its id.
    let junk = b"{not json".to_vec();
    let sig = sign(&junk);
    deliver_raw(&app, "ping", "d6", junk, Some(sig))
        .await
        .expect(400);
    let r = deliver(&app, "installation", "d7", &json!({"action": "created"}))
        .await
        .expect(422);
    assert_eq!(r.body["status"], 422);
    // Over 5 MiB.
    let big = json!({"zen": "x".repeat(5 * 1024 * 1024)});
    deliver(&app, "ping", "d8", &big).await.expect(413);
    // Repositories for an installation never announced.
    let r = deliver(
        &app,
        "installation_repositories",
        "d9",
        &json!({"action": "added", "installation": {"id": 42}, "sender": {"id": 1},
                "repositories_added": [{"id": 5, "node_id": "R_5", "full_name": "a/b"}],
                "repositories_removed": []}),
    )
    .await
    .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "installation");

    assert_eq!(
        deliveries(&app),
        vec!["d1".to_owned()],
        "only the ping is recorded"
    );
    let repos: i64 = github_repositories::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(repos, 0);
    for (outcome, n) in [
        ("pong", 1),
        ("duplicate", 1),
        ("bad_signature", 4),
        ("malformed", 2),
        ("oversize", 1),
        ("unknown_installation_or_project", 1),
    ] {
        assert_eq!(metric(&app, outcome).await, n, "{outcome}");
    }
}

#[actix_web::test]
async fn an_installation_links_the_project_that_names_its_repository() {
    let app = app();
    let owner = app.user("owner").await;
    let project = project_for(&app, &owner, "hello", "Codertocat/Hello-World").await;
    let elsewhere = project_for(&app, &owner, "other", "someone/else").await;

    let installed = payload("installation.created");
    let r = deliver(&app, "installation", "i1", &installed)
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "installed");
    assert_eq!(r.body["linked_projects"], json!([project]));
    let row: (String, Option<i64>, Option<i64>) = github_repositories::table
        .find(186853002_i64)
        .select((
            github_repositories::full_name,
            github_repositories::installation_id,
            github_repositories::project_id,
        ))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(
        row,
        (
            "Codertocat/Hello-World".to_owned(),
            Some(957387),
            Some(project)
        )
    );
    // Linked, but no proof of control: the installer is nobody's identity.
    assert_eq!(verified(&app, project), None);
    assert_eq!(verified(&app, elsewhere), None);

    // Uninstalled: the repository is no longer covered; the link stays.
    let mut deleted = installed.clone();
    deleted["action"] = json!("deleted");
    let r = deliver(&app, "installation", "i2", &deleted)
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "removed");
    let covered: Option<i64> = github_repositories::table
        .find(186853002_i64)
        .select(github_repositories::installation_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(covered, None);

    // Installed again by the maintainer's own GitHub account (Sign in with
    // GitHub links it): now it proves control.
    diesel::insert_into(user_identities::table)
        .values((
            user_identities::provider.eq("github"),
            user_identities::external_id.eq("21031067"),
            user_identities::user_id.eq(owner.id),
            user_identities::login.eq("Codertocat"),
            user_identities::created_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(&mut app.conn())
        .unwrap();
    let fresh = app.user("fresh").await;
    let later = project_for(&app, &fresh, "later", "Codertocat/Spoon-Knife").await;
    let mut again = installed.clone();
    again["repositories"] = json!([
        {"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "full_name": "Codertocat/Hello-World", "private": false},
        {"id": 7, "node_id": "R_7", "full_name": "Codertocat/Spoon-Knife", "private": false}
    ]);
    let r = deliver(&app, "installation", "i3", &again)
        .await
        .expect(200);
    // Spoon-Knife links to `later` (its only claimant) without proof: the
    // installer is not `later`'s maintainer.
    assert_eq!(r.body["linked_projects"], json!([later]));
    assert_eq!(verified(&app, later), None);
    // Hello-World was linked already; adding repositories to the
    // installation by its installer proves control for a project not yet
    // linked.
    let owned = project_for(&app, &owner, "owned", "Codertocat/Octo").await;
    let r = deliver(
        &app,
        "installation_repositories",
        "i4",
        &json!({"action": "added", "installation": {"id": 957387}, "sender": {"id": 21031067},
                "repositories_added": [{"id": 8, "node_id": "R_8", "full_name": "Codertocat/Octo"}],
                "repositories_removed": [{"id": 7, "node_id": "R_7", "full_name": "Codertocat/Spoon-Knife"}]}),
    )
    .await
    .expect(200);
    assert_eq!(r.body["linked_projects"], json!([owned]));
    assert_eq!(verified(&app, owned).as_deref(), Some("github_app"));
    let spoon: Option<i64> = github_repositories::table
        .find(7_i64)
        .select(github_repositories::installation_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(spoon, None, "removed from the installation");

    // A linked project that now names another repository loses its link
    // and its proof; when that repository is covered, it links again.
    let owned_id = app
        .get("/api/v1/projects/owned", None)
        .await
        .expect(200)
        .body["id"]
        .as_i64()
        .unwrap();
    app.patch(
        "/api/v1/projects/owned",
        json!({"repo_url": "https://github.com/Codertocat/Other"}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let r = deliver(
        &app,
        "installation_repositories",
        "i5",
        &json!({"action": "added", "installation": {"id": 957387}, "sender": {"id": 21031067},
                "repositories_added": [{"id": 9, "node_id": "R_9", "full_name": "Codertocat/Other"}],
                "repositories_removed": []}),
    )
    .await
    .expect(200);
    assert_eq!(r.body["linked_projects"], json!([owned_id]));
    let other: Option<i64> = github_repositories::table
        .find(9_i64)
        .select(github_repositories::project_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(other, Some(owned_id));
}

#[actix_web::test]
async fn two_projects_naming_one_repository_link_neither() {
    let app = app();
    let a = app.user("a").await;
    let b = app.user("b").await;
    let first = project_for(&app, &a, "first", "Codertocat/Hello-World").await;
    let second = project_for(&app, &b, "second", "codertocat/hello-world.git").await;
    let r = deliver(&app, "installation", "x1", &payload("installation.created"))
        .await
        .expect(200);
    assert_eq!(r.body["linked_projects"], json!([]));
    let linked: Option<i64> = github_repositories::table
        .find(186853002_i64)
        .select(github_repositories::project_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(linked, None, "{first} and {second} both claim it");
}

/// `+support` from a maintainer on GitHub: the issue and its comments
/// become a draft ticket of the issue's author, the bot comments once
/// (edited in place when the command is repeated), labels the issue
/// `support` and closes it; `-support` withdraws the untouched draft and
/// reopens the issue. Someone outside the repository's team is ignored; a
/// repository linked to no project is refused.
#[actix_web::test]
async fn plus_support_imports_the_issue_and_minus_support_undoes_it() {
    use crate::fake_github::{FakeGithub, Issue, APP_ID, INSTALLATION};
    let gh = actix_web::rt::task::spawn_blocking(FakeGithub::start)
        .await
        .unwrap();
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-app-test-key.pem"
    );
    let app = TestApp::builder()
        .env("GUILDHALL_GITHUB_WEBHOOK_SECRET", SECRET)
        .env("GUILDHALL_GITHUB_APP_ID", &APP_ID.to_string())
        .env("GUILDHALL_GITHUB_PRIVATE_KEY_FILE", key)
        .env("GUILDHALL_GITHUB_API_BASE", &gh.base)
        .env("GUILDHALL_PUBLIC_URL", "https://guildhall.test")
        .build();
    let owner = app.user("owner").await;
    let project = project_for(&app, &owner, "hello", "Codertocat/Hello-World").await;
    app.patch(
        "/api/v1/projects/hello",
        json!({"min_response_hours": 24}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    deliver(&app, "installation", "i1", &payload("installation.created"))
        .await
        .expect(200);

    let event = payload("issue_comment.created");
    let issue = &event["issue"];
    gh.add_issue(
        "Codertocat/Hello-World",
        1,
        Issue {
            node_id: issue["node_id"].as_str().unwrap().to_owned(),
            title: issue["title"].as_str().unwrap().to_owned(),
            body: "The README says 'teh' twice.".into(),
            open: true,
            author_id: 21031067,
            author: "Codertocat".into(),
            labels: vec![],
        },
        &[("octocat", "Seen on main too."), ("Codertocat", "+support")],
    );
    let command = |body: &str, association: &str| {
        let mut e = event.clone();
        e["installation"] = json!({"id": INSTALLATION});
        e["comment"]["body"] = json!(body);
        e["comment"]["author_association"] = json!(association);
        e
    };

    app.run_jobs(); // what registering and creating the project queued
                    // Someone outside the repository's team: acknowledged, nothing queued.
    let r = deliver(&app, "issue_comment", "c0", &command("+support", "NONE"))
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "not_allowed");
    // A comment without the command: nothing.
    let r = deliver(&app, "issue_comment", "c1", &command("Thanks!", "OWNER"))
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "ignored");
    assert_eq!(app.run_jobs(), 0);

    let r = deliver(&app, "issue_comment", "c2", &command("+support", "OWNER"))
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "import_queued");
    // The same signed body under a new delivery id is a replay.
    let r = deliver(
        &app,
        "issue_comment",
        "c2-again",
        &command("+support", "OWNER"),
    )
    .await
    .expect(409);
    assert_eq!(r.body["code"], "duplicate_delivery");
    app.run_jobs();

    // The draft ticket, for the issue's author (an account they claim by
    // signing in with GitHub), with the issue's text and comments.
    use guildhall::db::schema::{github_issue_links as gl, tickets, users};
    let (ticket, node): (i64, String) = gl::table
        .select((gl::ticket_id, gl::issue_node_id))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(node, issue["node_id"].as_str().unwrap());
    let (title, body, status, requester, project_id): (String, String, String, i64, i64) =
        tickets::table
            .find(ticket)
            .select((
                tickets::title,
                tickets::body,
                tickets::status,
                tickets::requester_id,
                tickets::project_id,
            ))
            .first(&mut app.conn())
            .unwrap();
    assert_eq!(title, "Spelling error in the README file");
    assert_eq!(status, "draft");
    assert_eq!(project_id, project);
    assert!(body.starts_with("The README says 'teh' twice."), "{body}");
    assert!(
        body.contains("@octocat wrote:\n\nSeen on main too."),
        "{body}"
    );
    assert!(!body.contains("+support"), "{body}");
    assert!(body.ends_with("Imported from https://github.com/Codertocat/Hello-World/issues/1"));
    let (email, can_login): (String, bool) = users::table
        .find(requester)
        .select((users::email, users::can_login))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(
        (email.as_str(), can_login),
        ("github-21031067@github.guildhall.invalid", false)
    );
    let identity: i64 = user_identities::table
        .filter(user_identities::external_id.eq("21031067"))
        .select(user_identities::user_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(identity, requester);

    // On GitHub: one comment with the link, the label, the issue closed.
    let bot_comments = |gh: &FakeGithub| {
        gh.state
            .lock()
            .unwrap()
            .comments
            .iter()
            .filter(|c| c.bot)
            .cloned()
            .collect::<Vec<_>>()
    };
    {
        let comments = bot_comments(&gh);
        assert_eq!(comments.len(), 1);
        assert!(
            comments[0]
                .body
                .contains(&format!("https://guildhall.test/t/{ticket}")),
            "{}",
            comments[0].body
        );
        assert!(
            comments[0].body.contains("aims to answer within 24 hours"),
            "{}",
            comments[0].body
        );
        let s = gh.state.lock().unwrap();
        let i = &s.issues[&("Codertocat/Hello-World".to_owned(), 1)];
        assert_eq!(
            (i.open, i.labels.clone()),
            (false, vec!["support".to_owned()])
        );
    }

    // Repeated: the same ticket, the same comment edited, not a second.
    deliver(&app, "issue_comment", "c3", &command("+support", "MEMBER"))
        .await
        .expect(200);
    app.run_jobs();
    let comments = bot_comments(&gh);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].edits, 1);
    let links: i64 = gl::table.count().get_result(&mut app.conn()).unwrap();
    let drafts: i64 = tickets::table
        .filter(tickets::status.eq("draft"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!((links, drafts), (1, 1));

    // -support: the untouched draft is withdrawn, the issue reopened.
    let r = deliver(
        &app,
        "issue_comment",
        "c4",
        &command("-support", "COLLABORATOR"),
    )
    .await
    .expect(200);
    assert_eq!(r.body["outcome"], "withdraw_queued");
    app.run_jobs();
    let status: String = tickets::table
        .find(ticket)
        .select(tickets::status)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(status, "cancelled");
    assert!(gh.state.lock().unwrap().issues[&("Codertocat/Hello-World".to_owned(), 1)].open);
    let comments = bot_comments(&gh);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("withdrawn"),
        "{}",
        comments[0].body
    );
    // Said again: nothing left to withdraw, and the comment keeps saying so.
    let mut again = command("-support", "OWNER");
    again["comment"]["id"] = json!(1);
    deliver(&app, "issue_comment", "c4b", &again)
        .await
        .expect(200);
    app.run_jobs();
    let comments = bot_comments(&gh);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("withdrawn"),
        "{}",
        comments[0].body
    );
    // The addresses Guildhall gives imported authors cannot be registered.
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "github-21031067@github.guildhall.invalid",
                   "password": crate::util::PASSWORD, "display_name": "Squatter"}),
            None,
        )
        .await
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "email");

    // A repository linked to no project here: refused, nothing recorded.
    let mut elsewhere = command("+support", "OWNER");
    elsewhere["repository"]["id"] = json!(5);
    deliver(&app, "issue_comment", "c5", &elsewhere)
        .await
        .expect(422);
    assert!(!deliveries(&app).contains(&"c5".to_owned()));
}
