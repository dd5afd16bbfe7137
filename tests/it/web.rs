//! The web app through HTTP as a browser without JavaScript uses it: pages,
//! forms with their CSRF tokens, the session cookie. (The real-browser tests
//! come with the rest of the pages.)

use crate::util::{Resp, TestApp, PASSWORD};
use actix_web::test::TestRequest;
use std::collections::HashMap;

/// A cookie jar and the app's service: what a browser keeps between pages.
pub(crate) struct Browser<'a, S> {
    pub(crate) app: &'a TestApp,
    pub(crate) svc: S,
    pub(crate) jar: HashMap<String, String>,
}

impl<'a, S, B> Browser<'a, S>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    pub(crate) fn with_cookies(&self, mut req: TestRequest) -> TestRequest {
        for (k, v) in &self.jar {
            req = req.cookie(actix_web::cookie::Cookie::new(k.clone(), v.clone()));
        }
        req.peer_addr("10.9.9.9:1".parse().unwrap())
    }

    fn keep(&mut self, r: &Resp) {
        for v in r.headers.get_all("set-cookie") {
            let c = actix_web::cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap();
            if c.max_age().is_some_and(|a| a.is_zero()) || c.value().is_empty() {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Resp {
        let req = self.with_cookies(TestRequest::get().uri(path));
        let r = self.app.send(&self.svc, req).await;
        self.keep(&r);
        r
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.with_cookies(
            TestRequest::post()
                .uri(path)
                .insert_header(("origin", "http://127.0.0.1:8080"))
                .set_form(form.iter().copied().collect::<HashMap<_, _>>()),
        );
        let r = self.app.send(&self.svc, req).await;
        self.keep(&r);
        r
    }
}

/// The CSRF token the page's forms carry.
pub(crate) fn csrf(page: &Resp) -> String {
    let at = page
        .text
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page.text[at..].split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn pages_forms_sessions_and_their_protections() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.project(&owner, "proj").await;
    let private = app
        .open_ticket(
            &owner,
            "proj",
            "<script>alert(1)</script> secret",
            "private",
        )
        .await;
    let public = app
        .open_ticket(&owner, "proj", "<script>alert(2)</script> public", "public")
        .await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = Browser {
        app: &app,
        svc,
        jar: HashMap::new(),
    };

    // The start page: HTML, the projects, a CSRF cookie with its flags.
    let home = b.get("/").await.expect(200);
    assert!(home
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(home.text.contains("href=\"/p/proj\""), "{}", home.text);
    let set: Vec<String> = home
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let csrf_cookie = set.iter().find(|c| c.starts_with("gh_csrf=")).unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );
    // Unknown pages are pages; unknown API paths stay problem+json.
    let missing = b.get("/no/such/page").await.expect(404);
    assert!(
        missing.text.contains("<h1>Not Found</h1>"),
        "{}",
        missing.text
    );
    let api = b.get("/api/v1/no-such-thing").await.expect(404);
    assert_eq!(
        api.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    // A form without its token, or from another site, changes nothing.
    let form = b.get("/register").await.expect(200);
    let token = csrf(&form);
    let fields = |t: &'static str| {
        [
            ("email", "web@example.com"),
            ("password", PASSWORD),
            ("display_name", "Web User"),
            ("csrf", t),
        ]
    };
    b.post("/register", &fields("wrong")).await.expect(403);
    let req = b.with_cookies(
        TestRequest::post()
            .uri("/register")
            .insert_header(("origin", "https://evil.example"))
            .set_form(
                [
                    ("email", "web@example.com"),
                    ("password", PASSWORD),
                    ("display_name", "Web User"),
                    ("csrf", token.as_str()),
                ]
                .into_iter()
                .collect::<HashMap<_, _>>(),
            ),
    );
    app.send(&b.svc, req).await.expect(403);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::users;
        let n: i64 = users::table
            .filter(users::email.eq("web@example.com"))
            .count()
            .get_result(&mut app.conn())
            .unwrap();
        assert_eq!(n, 0, "nothing was written");
    }
    // Errors come back inline, from the API's validation.
    let short = b
        .post(
            "/register",
            &[
                ("email", "web@example.com"),
                ("password", "short"),
                ("display_name", "Web User"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(422);
    assert!(
        short.text.contains("at least 12 characters"),
        "{}",
        short.text
    );

    // Registering signs in with a session cookie.
    let token = csrf(&short);
    let done = b
        .post(
            "/register",
            &[
                ("email", "web@example.com"),
                ("password", PASSWORD),
                ("display_name", "Web User"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(303);
    let session = done
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gh_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/")
    );
    assert!(!session.contains("Secure"), "http public URL: not Secure");
    let home = b.get("/").await.expect(200);
    assert!(home.text.contains("Web User"), "signed in");

    // Text people typed is text.
    let page = b.get(&format!("/t/{public}")).await.expect(200);
    assert!(
        page.text.contains("&#60;script&#62;alert(2)")
            || page.text.contains("&lt;script&gt;alert(2)")
    );
    assert!(!page.text.contains("<script>alert(2)"));
    // A private ticket is not there for someone else.
    b.get(&format!("/t/{private}")).await.expect(404);
    let _ = stranger;

    // Signing out ends the session: the old cookie is dead everywhere.
    let old = b.jar.get("gh_session").cloned().unwrap();
    let token = csrf(&home);
    b.post("/logout", &[("csrf", token.as_str())])
        .await
        .expect(303);
    let home = b.get("/").await.expect(200);
    assert!(home.text.contains("Sign in") && !home.text.contains("Web User"));
    b.jar.insert("gh_session".into(), old);
    let replay = b.get("/").await.expect(200);
    assert!(
        !replay.text.contains("Web User"),
        "a revoked session does not come back"
    );

    // Signing in again through the form.
    let form = b.get("/login").await.expect(200);
    let token = csrf(&form);
    let wrong = b
        .post(
            "/login",
            &[
                ("email", "web@example.com"),
                ("password", "not the password"),
                ("csrf", token.as_str()),
            ],
        )
        .await
        .expect(401);
    assert!(wrong.text.contains("invalid email or password"));
    let token = csrf(&wrong);
    let ok = b
        .post(
            "/login",
            &[
                ("email", "web@example.com"),
                ("password", PASSWORD),
                ("csrf", token.as_str()),
                ("next", "https://evil.example/"),
            ],
        )
        .await
        .expect(303);
    assert_eq!(
        ok.header("location").as_deref(),
        Some("/"),
        "no open redirect"
    );
    let project = b.get("/p/proj").await.expect(200);
    assert!(project.text.contains("proj support"));
    let search = b.get("/search?q=public").await.expect(200);
    assert!(search.text.contains(&format!("/t/{public}")) || search.text.contains("0 matching"));
}

/// Signs `email` in through the form in a fresh browser.
pub(crate) async fn signed_in<'a, S, B>(app: &'a TestApp, svc: S, email: &str) -> Browser<'a, S>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let mut b = Browser {
        app,
        svc,
        jar: HashMap::new(),
    };
    let form = b.get("/login").await.expect(200);
    let token = csrf(&form);
    b.post(
        "/login",
        &[
            ("email", email),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ],
    )
    .await
    .expect(303);
    b
}

/// The whole loop in pages, JavaScript off: post a ticket (accepting the
/// code of conduct), fund a bounty in major units, claim, answer, resolve,
/// accept, rate; the helper is paid the split.
#[actix_web::test]
async fn the_loop_in_pages_without_javascript() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    app.user("req").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let svc = || actix_web::test::init_service(guildhall::app::build(app.state.clone()));
    let mut req = signed_in(&app, svc().await, "req@example.com").await;
    let mut help = signed_in(&app, svc().await, "helper@example.com").await;

    let form = req.get("/new?project=proj").await.expect(200);
    assert!(form.text.contains("code of conduct"), "{}", form.text);
    let token = csrf(&form);
    let fields = |coc: &'static str, token: &str| {
        vec![
            ("project", "proj".to_owned()),
            ("title", "Pages all the way".to_owned()),
            ("body", "Can I do everything in the browser?".to_owned()),
            ("tags", "web Web html".to_owned()),
            ("visibility", "public".to_owned()),
            ("coc", coc.to_owned()),
            ("csrf", token.to_owned()),
        ]
    };
    let refused = req
        .post(
            "/new",
            &fields("no", &token)
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await
        .expect(422);
    assert!(refused.text.contains("code of conduct"), "{}", refused.text);
    let posted = req
        .post(
            "/new",
            &fields("yes", &token)
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await
        .expect(303);
    let location = posted.header("location").unwrap();
    let id: i64 = location.trim_start_matches("/t/").parse().unwrap();
    let page = req.get(&location).await.expect(200);
    assert!(page.text.contains("Pages all the way") && page.text.contains(">open<"));

    // Fund 50.00 USD, typed in major units.
    let token = csrf(&page);
    let bad = req
        .post(
            &format!("/t/{id}/fund"),
            &[("amount", "50.001"), ("csrf", token.as_str())],
        )
        .await
        .expect(422);
    assert!(bad.text.contains("an amount like 50.00"), "{}", bad.text);
    req.post(
        &format!("/t/{id}/fund"),
        &[("amount", "50.00"), ("csrf", token.as_str())],
    )
    .await
    .expect(303);
    let page = req.get(&format!("/t/{id}")).await.expect(200);
    assert!(page.text.contains("50.00 USD in escrow"), "{}", page.text);

    // The helper claims, answers and resolves.
    let page = help.get(&format!("/t/{id}")).await.expect(200);
    assert!(page.text.contains(">Claim</button>"));
    let token = csrf(&page);
    // Without the token: refused, nothing changes.
    help.post(&format!("/t/{id}/claim"), &[("csrf", "nope")])
        .await
        .expect(403);
    for (action, extra) in [
        ("claim", None),
        ("message", Some("Yes: every form works without JavaScript.")),
        ("resolve", None),
    ] {
        let mut f = vec![("csrf", token.as_str())];
        if let Some(body) = extra {
            f.push(("body", body));
        }
        help.post(&format!("/t/{id}/{action}"), &f)
            .await
            .expect(303);
    }
    // The requester accepts and rates.
    let page = req.get(&format!("/t/{id}")).await.expect(200);
    assert!(page.text.contains("every form works without JavaScript"));
    assert!(page.text.contains(">Accept resolution</button>"));
    let token = csrf(&page);
    req.post(&format!("/t/{id}/accept"), &[("csrf", token.as_str())])
        .await
        .expect(303);
    req.post(
        &format!("/t/{id}/rate"),
        &[("stars", "5"), ("csrf", token.as_str())],
    )
    .await
    .expect(303);
    let page = req.get(&format!("/t/{id}")).await.expect(200);
    assert!(page.text.contains(">closed<"));
    // 50.00: helper 42.50, project 5.00, platform 2.50.
    let mut conn = app.conn();
    let paid = guildhall::ledger::account(
        &mut conn,
        guildhall::ledger::AccountKind::UserPayable,
        Some(helper.id),
        "usd",
    )
    .unwrap();
    assert_eq!(paid.available(), 4_250);
    assert_eq!(
        guildhall::ledger::check(&mut conn).unwrap(),
        Vec::<String>::new()
    );
}

/// `serve --demo`'s world: an imported history to search, live tickets in
/// every state, a funded bounty, an open bid and some revenue — and books
/// that balance. Seeding twice adds nothing.
#[actix_web::test]
async fn the_demo_world_is_worth_opening() {
    let app = TestApp::new();
    assert!(guildhall::demo::seed(&app.pool).unwrap());
    assert!(!guildhall::demo::seed(&app.pool).unwrap(), "idempotent");
    app.run_jobs();
    use diesel::prelude::*;
    use guildhall::db::schema::{bids, releases, tickets};
    let mut conn = app.conn();
    let statuses: Vec<String> = tickets::table
        .select(tickets::status)
        .distinct()
        .load(&mut conn)
        .unwrap();
    for s in ["open", "claimed", "resolved", "closed", "cancelled"] {
        assert!(
            statuses.iter().any(|x| x == s),
            "no {s} ticket: {statuses:?}"
        );
    }
    let history: i64 = tickets::table
        .filter(tickets::external_ref.is_not_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert!(history > 100, "{history}");
    let open_bids: i64 = bids::table
        .filter(bids::status.eq("open"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(open_bids, 1);
    let revenue: i64 = releases::table.count().get_result(&mut conn).unwrap();
    assert_eq!(revenue, 1);
    assert_eq!(
        guildhall::ledger::check(&mut conn).unwrap(),
        Vec::<String>::new()
    );
    drop(conn);
    let page = app.get("/search?q=prompt", None).await.expect(200);
    assert!(page.text.contains("matching ticket"), "{}", page.text);
    assert!(!page.text.contains(">0 matching"), "{}", page.text);
    let home = app.get("/", None).await.expect(200);
    assert!(home.text.contains("href=\"/p/genai\""));
}

/// The team's pages answer 404 to anyone outside the team (as the API
/// would), helpers see the queue but not the maintainers' pages, the
/// settings form saves only valid values and only with its token, and the
/// dashboard's statement downloads agree with the release rows.
#[actix_web::test]
async fn team_pages_and_their_permissions() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("requester").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let paid = app
        .paid_and_accepted(&requester, &helper, "proj", "A paid question", 5_000)
        .await;
    let waiting = app
        .open_ticket(&requester, "proj", "A waiting question", "public")
        .await;
    let svc = || actix_web::test::init_service(guildhall::app::build(app.state.clone()));

    // Signed out: sent to sign in; a stranger: 404 everywhere.
    let mut anon = Browser {
        app: &app,
        svc: svc().await,
        jar: HashMap::new(),
    };
    let r = anon.get("/p/proj/queue").await.expect(303);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/login?next=/p/proj/queue")
    );
    anon.get("/p/proj/statement.csv").await.expect(404);
    let mut anon = signed_in(&app, svc().await, &requester.email).await;
    for page in [
        "/p/proj/queue",
        "/p/proj/helpers",
        "/p/proj/settings",
        "/p/proj/dashboard",
        "/p/proj/statement.csv",
    ] {
        anon.get(page).await.expect(404);
    }

    // A helper: the queue with a Claim button; not the maintainers' pages.
    let mut h = signed_in(&app, svc().await, &helper.email).await;
    let q = h.get("/p/proj/queue").await.expect(200);
    assert!(
        q.text.contains(&format!("action=\"/t/{waiting}/claim\"")),
        "{}",
        q.text
    );
    for page in ["/p/proj/helpers", "/p/proj/settings", "/p/proj/dashboard"] {
        h.get(page).await.expect(404);
    }

    // A bid from the ticket page; a form naming it under another ticket's
    // URL is refused (404) and changes nothing; withdrawn from its own.
    let qt = csrf(&q);
    h.post(
        &format!("/t/{waiting}/bid"),
        &[
            ("csrf", qt.as_str()),
            ("amount", "80.00"),
            ("eta_hours", "24"),
            ("body", "today"),
        ],
    )
    .await
    .expect(303);
    let bid_status = |app: &TestApp| -> (i64, i64, String) {
        use diesel::prelude::*;
        use guildhall::db::schema::bids;
        bids::table
            .filter(bids::ticket_id.eq(waiting))
            .select((bids::id, bids::amount, bids::status))
            .first(&mut app.conn())
            .unwrap()
    };
    let (bid, amount, status) = bid_status(&app);
    assert_eq!((amount, status.as_str()), (8_000, "open"));
    let bid_field = bid.to_string();
    h.post(
        &format!("/t/{paid}/withdraw-bid"),
        &[("csrf", qt.as_str()), ("bid", bid_field.as_str())],
    )
    .await
    .expect(404);
    assert_eq!(bid_status(&app).2, "open");
    h.post(
        &format!("/t/{waiting}/withdraw-bid"),
        &[("csrf", qt.as_str()), ("bid", bid_field.as_str())],
    )
    .await
    .expect(303);
    assert_eq!(bid_status(&app).2, "withdrawn");

    // The maintainer: settings refuse out-of-range values and save nothing.
    let mut m = signed_in(&app, svc().await, &owner.email).await;
    let s = m.get("/p/proj/settings").await.expect(200);
    let token = csrf(&s);
    let settings = |share: &'static str, guidelines: &'static str, t: &str| {
        vec![
            ("csrf", t.to_owned()),
            ("name", "Proj".to_owned()),
            ("description", "d".to_owned()),
            ("repo_url", "https://github.com/x/proj".to_owned()),
            ("topics", "rust, full text search".to_owned()),
            ("commission_pct", "12.5".to_owned()),
            ("free_share_pct", share.to_owned()),
            ("min_response_hours", "4".to_owned()),
            ("auto_close_days", "14".to_owned()),
            ("acceptance_days", "7".to_owned()),
            ("guidelines", guidelines.to_owned()),
            ("code_of_conduct", "Be kind.".to_owned()),
            ("legal_entity", String::new()),
        ]
    };
    let bad = settings("150", "Say what you tried.", &token);
    let r = m
        .post(
            "/p/proj/settings",
            &bad.iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await
        .expect(422);
    assert!(r.text.contains("free share pct"), "{}", r.text);
    let forged = settings("40", "Forged.", "not-the-token");
    m.post(
        "/p/proj/settings",
        &forged
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await
    .expect(403);
    let read = |app: &TestApp| -> (i32, String, i32) {
        use diesel::prelude::*;
        use guildhall::db::schema::projects;
        projects::table
            .filter(projects::slug.eq("proj"))
            .select((
                projects::free_share_pct,
                projects::guidelines,
                projects::commission_bps,
            ))
            .first(&mut app.conn())
            .unwrap()
    };
    let before = read(&app);
    assert_ne!(before.1, "Say what you tried.");
    assert_ne!(before.1, "Forged.");
    let good = settings("40", "Say what you tried.", &token);
    let r = m
        .post(
            "/p/proj/settings",
            &good
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await
        .expect(200);
    assert!(r.text.contains("Settings saved."), "{}", r.text);
    assert_eq!(read(&app), (40, "Say what you tried.".to_owned(), 1250));
    {
        use diesel::prelude::*;
        use guildhall::db::schema::projects;
        let topics: String = projects::table
            .filter(projects::slug.eq("proj"))
            .select(projects::topics)
            .first(&mut app.conn())
            .unwrap();
        assert_eq!(
            topics, r#"["rust","full text search"]"#,
            "topics keep their spaces"
        );
    }

    // The maintainer (not a helper) sees the queue without Claim buttons.
    let mq = m.get("/p/proj/queue").await.expect(200);
    assert!(mq.text.contains(&format!("/t/{waiting}")) && !mq.text.contains("/claim\""));

    // The helpers page lists the helper with a Revoke button.
    let hp = m.get("/p/proj/helpers").await.expect(200);
    assert!(hp
        .text
        .contains(&format!("/p/proj/helpers/{}/revoke", helper.id)));

    // Dashboard and statements agree with the release.
    let (amount, commission): (i64, i64) = {
        use diesel::prelude::*;
        use guildhall::db::schema::releases;
        releases::table
            .filter(releases::ticket_id.eq(paid))
            .select((releases::amount, releases::project_amount))
            .first(&mut app.conn())
            .unwrap()
    };
    let d = m.get("/p/proj/dashboard").await.expect(200);
    assert!(
        d.text.contains(&guildhall::web::money(commission, "usd")),
        "{}",
        d.text
    );
    assert!(d.text.contains("<svg"), "a chart");
    let csv = m.get("/p/proj/statement.csv").await.expect(200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let line = csv
        .text
        .lines()
        .find(|l| l.starts_with(&format!("{paid},")))
        .unwrap_or_else(|| panic!("the release in the CSV: {}", csv.text));
    assert!(line.contains(&format!(",usd,{amount},")), "{line}");
    let json = m.get("/p/proj/statement.json").await.expect(200);
    assert_eq!(json.body["total_commission"], commission);
    m.get("/p/proj/dashboard?from=2026-13-01").await.expect(422);
    m.get("/p/proj/dashboard?to=%2B262143-12-31")
        .await
        .expect(422);
    m.get("/p/proj/dashboard?to=-262144-01-01")
        .await
        .expect(422);

    // The requester closes the waiting ticket as answered by the AI lane:
    // the dashboard counts it in that lane. Only the requester, only open
    // tickets; the API may not borrow the reserved reason.
    let s = anon.get(&format!("/t/{waiting}")).await.expect(200);
    let token = csrf(&s);
    h.post(
        &format!("/t/{paid}/ai-solved"),
        &[("csrf", csrf(&q).as_str())],
    )
    .await
    .expect(403);
    anon.post(&format!("/t/{paid}/ai-solved"), &[("csrf", token.as_str())])
        .await
        .expect(409);
    app.post(
        &format!("/api/v1/tickets/{waiting}/close"),
        serde_json::json!({"reason": "answered by the AI lane"}),
        Some(&requester.access),
    )
    .await
    .expect(422);
    anon.post(
        &format!("/t/{waiting}/ai-solved"),
        &[("csrf", token.as_str())],
    )
    .await
    .expect(303);
    let d = m.get("/p/proj/dashboard").await.expect(200);
    let lanes = d.text.split("<h2>Lanes</h2>").nth(1).unwrap();
    assert!(
        lanes.contains("<th scope=\"row\">AI answer</th><td class=\"num\">1</td>")
            && lanes
                .contains("<th scope=\"row\">Paid (bounty or bid)</th><td class=\"num\">1</td>"),
        "{lanes}"
    );
}

/// A draft is saved without entering the queue and offers Submit; search
/// facets narrow by status and tag and can be removed; behind an https
/// public URL every cookie is Secure.
#[actix_web::test]
async fn drafts_search_facets_and_secure_cookies() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    app.user("req").await;
    app.project(&owner, "proj").await;
    let svc = || actix_web::test::init_service(guildhall::app::build(app.state.clone()));
    let mut b = signed_in(&app, svc().await, "req@example.com").await;
    let form = b.get("/new?project=proj").await.expect(200);
    let token = csrf(&form);
    let r = b
        .post(
            "/new",
            &[
                ("csrf", token.as_str()),
                ("project", "proj"),
                ("title", "Segments merge slowly after import"),
                ("body", "details"),
                ("tags", "merge import"),
                ("visibility", "public"),
                ("coc", "yes"),
                ("draft", "yes"),
            ],
        )
        .await
        .expect(303);
    let at = r.header("location").unwrap();
    let id: i64 = at.trim_start_matches("/t/").parse().unwrap();
    let status: String = {
        use diesel::prelude::*;
        use guildhall::db::schema::tickets;
        tickets::table
            .find(id)
            .select(tickets::status)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(status, "draft");
    let page = b.get(&at).await.expect(200);
    assert!(page.text.contains(&format!("action=\"/t/{id}/submit\"")));
    let token = csrf(&page);
    b.post(&format!("/t/{id}/submit"), &[("csrf", token.as_str())])
        .await
        .expect(303);
    // This ticket's notification level, from its page.
    b.post(
        &format!("/t/{id}/notifications"),
        &[("csrf", token.as_str()), ("level", "mute")],
    )
    .await
    .expect(303);
    let me = {
        use diesel::prelude::*;
        use guildhall::db::schema::users;
        users::table
            .filter(users::email.eq("req@example.com"))
            .select(users::id)
            .first::<i64>(&mut app.conn())
            .unwrap()
    };
    assert_eq!(
        guildhall::domain::notifications::override_of(&mut app.conn(), me, "ticket", id).unwrap(),
        Some(guildhall::domain::notifications::Level::Mute)
    );
    let page = b.get(&format!("/t/{id}")).await.expect(200);
    assert!(page.text.contains("<option value=\"mute\" selected>"));

    // Mailing the verification link again: three a day, then 429.
    for expected in [303, 303, 303, 429] {
        b.post("/me/verify-email", &[("csrf", token.as_str())])
            .await
            .expect(expected);
    }

    // Facets: status and tag, each a link that narrows; chosen ones can be
    // removed.
    app.run_jobs();
    let s = b.get("/search?q=segments").await.expect(200);
    assert!(
        s.text
            .contains("href=\"/search?q=segments&#38;status=open\""),
        "{}",
        s.text
    );
    assert!(s.text.contains("href=\"/search?q=segments&#38;tag=merge\""));
    let narrowed = b.get("/search?q=segments&tag=merge").await.expect(200);
    assert!(narrowed.text.contains(&format!("/t/{id}")));
    assert!(narrowed.text.contains("Remove the filter tag merge"));
    let none = b.get("/search?q=segments&tag=nosuchtag").await.expect(200);
    assert!(!none.text.contains(&format!("href=\"/t/{id}\"")));

    // https: Secure cookies.
    let secure = TestApp::builder()
        .env("GUILDHALL_PUBLIC_URL", "https://guildhall.example")
        .build();
    let svc = actix_web::test::init_service(guildhall::app::build(secure.state.clone())).await;
    let home = secure
        .send(&svc, actix_web::test::TestRequest::get().uri("/"))
        .await
        .expect(200);
    let cookies: Vec<String> = home
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(!cookies.is_empty());
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("Secure") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
}
