//! The web app in a real browser: Debian's Chromium over WebDriver
//! (`webdriver.rs`) against the app served over real HTTP on a loopback
//! port, on the test's database (SQLite, or PostgreSQL when
//! GUILDHALL_TEST_DATABASE_URL is set). A maintainer, a helper and a
//! requester, each in their own browser, do the whole loop — register,
//! bring a project, apply, approve, post a ticket (seeing the suggested
//! duplicate), fund a bounty, claim, answer, resolve, accept, rate — and
//! the helper's balance and the maintainer's dashboard show the split.
//! With JavaScript on every page of the loop is checked by axe-core (no
//! serious or critical violation) and photographed at 1280 and 390 px into
//! `target/screenshots/`; the same loop runs with JavaScript off. No page
//! may log an error in the browser console.

use crate::util::{Server, TestApp, PASSWORD};
use crate::webdriver::{Browser, Driver};
use serde_json::json;
use std::path::PathBuf;

fn screenshots_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("screenshots")
}

/// What every page of the loop must pass: no console errors; with
/// JavaScript, no serious or critical axe violation, and screenshots.
struct Checks {
    backend: &'static str,
    pages: Vec<String>,
}

impl Checks {
    /// A page answered with an error status on purpose: Chromium reports
    /// it as a failed load, and nothing else may be in the console.
    fn refused(&mut self, b: &Browser, status: u16) {
        let entries = b.console();
        let expected = format!("the server responded with a status of {status}");
        assert!(
            entries.iter().any(|(_, m)| m.contains(&expected)),
            "a {status} on {}: {entries:?}",
            b.url()
        );
        assert!(
            entries
                .iter()
                .all(|(level, m)| level != "SEVERE" || m.contains(&expected)),
            "console errors on {}: {entries:?}",
            b.url()
        );
    }

    fn page(&mut self, b: &Browser, name: &str) {
        let errors: Vec<_> = b
            .console()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .collect();
        assert!(
            errors.is_empty(),
            "console errors on {name} ({}): {errors:?}",
            b.url()
        );
        let title = b.title();
        assert!(
            title.ends_with(" · Guildhall") && title.len() < 120,
            "{name}'s title: {title:?}"
        );
        // HTML + CSS + JS, htmx included, within 150 KB.
        let statics: u64 = ["guildhall.css", "htmx.min.js"]
            .iter()
            .map(|f| {
                std::fs::metadata(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("src/web/static")
                        .join(f),
                )
                .expect("static file")
                .len()
            })
            .sum();
        let weight = b.source().len() as u64 + statics;
        assert!(weight <= 150 * 1024, "{name} weighs {weight} bytes");
        println!("{name}: {weight} bytes with CSS and JS");
        if b.javascript {
            let violations = b.axe();
            assert!(
                violations.is_empty(),
                "axe on {name} ({}):\n{}",
                b.url(),
                violations.join("\n")
            );
            // One set of pictures is enough: the PostgreSQL run takes none.
            if self.backend != "postgres" {
                for width in [1280, 390] {
                    let path = screenshots_dir().join(format!("{name}-{width}.png"));
                    b.screenshot(&path, width);
                }
            }
            // The screenshot's script must not have logged anything either.
            assert!(b.console().iter().all(|(level, _)| level != "SEVERE"));
        }
        self.pages.push(name.to_owned());
    }
}

fn register(b: &Browser, base: &str, name: &str) {
    b.goto(&format!("{base}/register"));
    b.fill("#display_name", name);
    b.fill("#email", &format!("{name}@example.com"));
    b.fill("#password", PASSWORD);
    b.click("main form button[type=submit]");
    b.wait_for_text("Sign out");
}

/// Who resolved ticket `id`.
fn ticket_helper_id(app: &TestApp, id: i64) -> i64 {
    use diesel::prelude::*;
    use guildhall::db::schema::tickets;
    tickets::table
        .find(id)
        .select(tickets::resolved_by)
        .first::<Option<i64>>(&mut app.conn())
        .unwrap()
        .expect("resolved")
}

/// The ticket id in a `/t/{id}` URL.
fn ticket_id(url: &str) -> i64 {
    url.rsplit("/t/")
        .next()
        .and_then(|s| s.split(['?', '#', '/']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a ticket URL: {url}"))
}

async fn whole_loop(javascript: bool) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let app = TestApp::new();
    let backend = if crate::util::postgres_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let server = Server::start(app.state.clone(), listener);
    let base = server.base.clone();
    let driver = Driver::start();
    let mut checks = Checks {
        backend,
        pages: Vec::new(),
    };
    let slug = if javascript { "quill" } else { "quill-nojs" };

    // The maintainer registers and brings the project.
    let maintainer = driver.browser(javascript);
    maintainer.goto(&format!("{base}/"));
    checks.page(&maintainer, "home");
    maintainer.goto(&format!("{base}/login"));
    checks.page(&maintainer, "login");
    maintainer.goto(&format!("{base}/register"));
    checks.page(&maintainer, "register");
    register(&maintainer, &base, "maintainer");
    // The address is verified by the link in the mail (the outbox here).
    app.run_jobs();
    let outbox = app.state.config.data_dir.join("outbox");
    let mail = std::fs::read_dir(&outbox)
        .expect("the outbox")
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|m| m.contains("maintainer@example.com"))
        .expect("the maintainer's verification mail");
    let text = mail.replace("=\r\n", "").replace("=3D", "=");
    let at = text.find("/verify?").expect("a verify link");
    let path: String = text[at..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned();
    maintainer.goto(&format!("{base}/me"));
    maintainer.wait_for_text("not verified yet");
    maintainer.goto(&format!("{base}{path}"));
    checks.page(&maintainer, "verify");
    maintainer.click("form[action='/verify'] button");
    maintainer.wait_for_text("Your address is verified");
    maintainer.goto(&format!("{base}/me"));
    assert!(!maintainer.text("main").contains("not verified yet"));
    maintainer.goto(&format!("{base}/projects/new"));
    checks.page(&maintainer, "new-project");
    maintainer.fill("#name", "Quill");
    maintainer.fill("#slug", slug);
    maintainer.fill("#repo_url", "https://github.com/example/quill");
    maintainer.fill("#description", "A search library for Rust.");
    maintainer.click("main form button[type=submit]");
    maintainer.wait_for_text("Settings");
    checks.page(&maintainer, "settings");
    // Settings: a value out of range is refused inline, nothing saved (the
    // browser itself stops a share over 100; the server stops the rest).
    maintainer.fill("#acceptance_days", "9999");
    maintainer.fill("#guidelines", "Say what you tried.");
    maintainer.click("form[action$='/settings'] button[type=submit]");
    maintainer.wait_for_text("Please correct the following");
    assert!(maintainer.text(".errors").contains("acceptance days"));
    checks.refused(&maintainer, 422);
    let guidelines: String = {
        use diesel::prelude::*;
        use guildhall::db::schema::projects;
        projects::table
            .filter(projects::slug.eq(slug))
            .select(projects::guidelines)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(guidelines, "", "a refused form saved nothing");
    maintainer.fill("#acceptance_days", "7");
    maintainer.click("form[action$='/settings'] button[type=submit]");
    maintainer.wait_for_text("Settings saved.");
    // Plans: a price under the minimum is refused inline (what was typed
    // kept), then a monthly plan is published.
    maintainer.goto(&format!("{base}/p/{slug}/plans"));
    checks.page(&maintainer, "plans-maintainer");
    maintainer.fill("#name", "Team");
    maintainer.fill("#price", "0.50");
    maintainer.fill("#included_upgrades", "2");
    maintainer.click("form[action$='/plans'] button[type=submit]");
    maintainer.wait_for_text("Please correct the following");
    checks.refused(&maintainer, 422);
    assert!(maintainer.source().contains("value=\"Team\""));
    maintainer.fill("#price", "49");
    maintainer.fill("#consulting_hours", "1");
    maintainer.click("form[action$='/plans'] button[type=submit]");
    maintainer.wait_for_text("The plan is published.");

    // History to be suggested: a solved ticket, through the API.
    let old_helper = app.user("oldhelper").await;
    let asker = app.user("asker").await;
    let m = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "maintainer@example.com", "password": PASSWORD}),
            None,
        )
        .await
        .expect(200);
    let maintainer_api = crate::util::User {
        id: 0,
        email: "maintainer@example.com".into(),
        access: m.body["access_token"].as_str().unwrap().to_owned(),
        refresh: String::new(),
    };
    app.approved_helper(&maintainer_api, &old_helper, slug)
        .await;
    let solved = app
        .open_ticket(
            &asker,
            slug,
            "Merging index segments after a bulk load",
            "public",
        )
        .await;
    app.answered_and_accepted(
        solved,
        &asker,
        &old_helper,
        "Call the merge policy explicitly once the bulk load ends.",
    )
    .await;
    app.run_jobs();

    // The helper registers and applies as an expert.
    let helper = driver.browser(javascript);
    register(&helper, &base, "helper");
    helper.goto(&format!("{base}/p/{slug}"));
    checks.page(&helper, "project");
    helper.goto(&format!("{base}/p/{slug}/apply"));
    checks.page(&helper, "apply");
    helper.click("#tier-expert");
    helper.fill("#rate", "120.00");
    helper.fill("#bio", "I wrote the merge policy.");
    helper.click("main form button[type=submit]");
    helper.wait_for_text("pending");

    // The maintainer approves.
    maintainer.goto(&format!("{base}/p/{slug}/helpers"));
    checks.page(&maintainer, "helpers");
    maintainer.click("button[aria-label='Approve helper']");
    maintainer.wait_for_text("helper is now approved.");

    // The requester registers and posts a ticket, seeing the duplicate.
    let requester = driver.browser(javascript);
    register(&requester, &base, "requester");
    requester.goto(&format!("{base}/me/notifications"));
    checks.page(&requester, "notifications");
    requester.click("#level-all");
    requester.fill("#time_zone", "Europe/Berlin");
    requester.click("form[action='/me/notifications'] button");
    requester.wait_for_text("Saved.");
    // The requester subscribes to the monthly plan (sandbox money).
    requester.goto(&format!("{base}/p/{slug}/plans"));
    checks.page(&requester, "plans");
    requester.click("form[action$='/subscribe'] button");
    requester.wait_for_text("You are subscribed.");
    requester.wait_for_text("2 upgrades and 60 minutes of consulting left");
    // It books a quarter of an hour of the consulting time included.
    requester.click("main details summary");
    requester.fill(
        "main details textarea[name=topic]",
        "Tuning merges for our bulk loads",
    );
    requester.click("form[action$='/consulting'] button[type=submit]");
    requester.wait_for_text("Booked: the project's maintainers were told");
    requester.wait_for_text("15 minutes: Tuning merges for our bulk loads");
    checks.page(&requester, "subscriptions");
    maintainer.goto(&format!("{base}/p/{slug}/consulting"));
    maintainer.wait_for_text("Tuning merges for our bulk loads");
    checks.page(&maintainer, "consulting");
    // Its invoice: the list with the billing form, and the document.
    requester.goto(&format!("{base}/me/invoices"));
    requester.wait_for_text("-000001");
    checks.page(&requester, "invoices");
    requester.click("main table a[href^='/invoices/']");
    requester.wait_for_text("Payment collected by Guildhall");
    checks.page(&requester, "invoice");
    requester.goto(&format!("{base}/new?project={slug}"));
    checks.page(&requester, "new-ticket");
    requester.fill("#title", "Index segments merging after bulk load");
    if !javascript {
        // JavaScript is really off: typing fetches nothing.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(!requester.text("main").contains("Already answered?"));
        requester.click("button[name=preview]");
    }
    // htmx fetches the suggestions as the title is typed; without
    // JavaScript the button asks for them.
    requester.wait_for_text("Already answered?");
    assert!(requester.has(&format!("#similar a[href='/t/{solved}']")));
    if !javascript {
        // The form kept what was typed.
        assert!(requester
            .source()
            .contains("Index segments merging after bulk load"));
    }
    requester.fill(
        "#body",
        "Segments pile up after I import ten million documents.",
    );
    requester.click("#coc");
    requester.click("form[action='/new'] button[type=submit]:not([name])");
    requester.wait_for_text("Waiting in the queue");
    let id = ticket_id(&requester.url());
    checks.page(&requester, "ticket-open");
    requester.fill("#amount", "50.00");
    requester.click("form[action$='/fund'] button");
    requester.wait_for_text("50.00 USD in escrow");
    // An included upgrade moves it up the queue.
    requester.click(&format!("form[action='/t/{id}/upgrade'] button"));
    requester.wait_for_text("50.00 USD in escrow");
    requester.goto(&format!("{base}/me/subscriptions"));
    requester.wait_for_text("1 upgrade and 45 minutes of consulting left");
    requester.goto(&format!("{base}/t/{id}"));
    requester.goto(&format!("{base}/search?q=segments+merge"));
    requester.wait_for_text("matching ticket");
    checks.page(&requester, "search");
    requester.goto(&format!(
        "{base}/?ask=how+do+segments+merge+after+a+bulk+load"
    ));
    requester.wait_for_text("Answer from solved tickets");
    checks.page(&requester, "ask");

    // The helper claims from the queue, answers and resolves.
    helper.goto(&format!("{base}/p/{slug}/queue"));
    checks.page(&helper, "queue");
    helper.click(&format!("button[aria-label='Claim ticket {id}']"));
    helper.wait_for_text("Resolve");
    checks.page(&helper, "ticket-claimed");
    helper.fill(
        "#message",
        "Run merge_segments once the import ends; see ticket #1.",
    );
    helper.click("form[action$='/message'] button");
    helper.wait_for_text("Run merge_segments once the import ends");
    helper.click(&format!("form[action='/t/{id}/resolve'] button"));
    helper.wait_for_text("resolved");

    // The requester accepts and rates.
    requester.goto(&format!("{base}/t/{id}"));
    requester.click(&format!("form[action='/t/{id}/accept'] button"));
    requester.wait_for_text("Rating");
    checks.page(&requester, "ticket-closed");
    requester.click(&format!("form[action='/t/{id}/rate'] button"));
    requester.wait_for_text("Rating: 5");

    // The split: helper's balance and the maintainer's dashboard agree with
    // the release row and the ledger.
    let (helper_amount, commission, platform): (i64, i64, i64) = {
        use diesel::prelude::*;
        use guildhall::db::schema::releases;
        releases::table
            .filter(releases::ticket_id.eq(id))
            .select((
                releases::helper_amount,
                releases::project_amount,
                releases::platform_amount,
            ))
            .first(&mut app.conn())
            .expect("a release")
    };
    assert_eq!(helper_amount + commission + platform, 5_000);
    let helper_money = guildhall::web::money(helper_amount, "usd");
    let commission_money = guildhall::web::money(commission, "usd");
    assert!(commission > 0 && helper_amount > 0 && helper_amount < 5_000);
    helper.goto(&format!("{base}/me"));
    helper.wait_for_text(&format!("{helper_money} available"));
    checks.page(&helper, "me");
    helper.goto(&format!("{base}/me/earnings"));
    helper.wait_for_text("Your earnings");
    checks.page(&helper, "earnings");
    helper.goto(&format!("{base}/code-of-conduct"));
    helper.wait_for_text("Guildhall's code of conduct");
    checks.page(&helper, "code-of-conduct");
    // The confirmation a chat's `link` command leads to.
    let chat_user = guildhall::channels::chat::ChatUser {
        provider: "discord",
        external: "80351110224678912".into(),
        login: "helper-on-discord".into(),
    };
    let link =
        guildhall::channels::chat::link_url(&mut app.conn(), &chat_user, &base).expect("a link");
    let at = link.find("/chat/link").expect("path");
    helper.goto(&format!("{base}{}", &link[at..]));
    helper.wait_for_text("Never confirm a link someone sent you");
    checks.page(&helper, "chat-link");
    helper.goto(&format!("{base}/u/{}", ticket_helper_id(&app, id)));
    helper.wait_for_text("Solved");
    checks.page(&helper, "profile");
    maintainer.goto(&format!("{base}/p/{slug}/dashboard"));
    maintainer.wait_for_text("Commission:");
    assert!(
        maintainer.text("main").contains(&commission_money),
        "dashboard shows the commission {commission_money}:\n{}",
        maintainer.text("main")
    );
    checks.page(&maintainer, "dashboard");
    // The review queue, with one flag in it.
    app.post(
        "/api/v1/flags",
        json!({"target": "ticket", "id": solved, "reason": "spam", "note": "looks like an ad"}),
        Some(&old_helper.access),
    )
    .await
    .expect(201);
    maintainer.goto(&format!("{base}/p/{slug}/flags"));
    maintainer.wait_for_text("looks like an ad");
    checks.page(&maintainer, "flags");
    // Handing the project over: proposed, then seen and accepted by the
    // new maintainer, then called off.
    maintainer.goto(&format!("{base}/p/{slug}/handover"));
    maintainer.wait_for_text("maintainer of record");
    checks.page(&maintainer, "handover-propose");
    maintainer.fill("#email", "requester@example.com");
    maintainer.click("form[action$='/handover'] button[type=submit]");
    maintainer.wait_for_text("Proposed.");
    let handover: i64 = {
        use diesel::prelude::*;
        guildhall::db::schema::handovers::table
            .select(guildhall::db::schema::handovers::id)
            .order(guildhall::db::schema::handovers::id.desc())
            .first(&mut app.conn())
            .unwrap()
    };
    requester.goto(&format!("{base}/handovers/{handover}"));
    requester.wait_for_text("Still needed for the handover");
    checks.page(&requester, "handover");
    requester.click("form[action$='/accept'] button[type=submit]");
    requester.wait_for_text("Accepted.");
    requester.click("form[action$='/cancel'] button[type=submit]");
    requester.wait_for_text("The handover is called off.");
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new(),
        "ledger check"
    );

    // A private ticket is 404 for anyone outside it.
    let private = app
        .open_ticket(&asker, slug, "Our private stack trace", "private")
        .await;
    requester.goto(&format!("{base}/t/{private}"));
    assert_eq!(requester.title(), "Not Found · Guildhall");
    requester.wait_for_text("There is nothing here");
    checks.refused(&requester, 404);

    // Text people typed is text: a ticket titled <script> renders as such.
    let xss = app
        .open_ticket(&asker, slug, "<script>window.pwned=1</script>", "public")
        .await;
    requester.goto(&format!("{base}/t/{xss}"));
    requester.wait_for_text("<script>window.pwned=1</script>");
    if javascript {
        assert_eq!(
            requester.exec("return window.pwned === undefined;", json!([])),
            json!(true)
        );
    }

    // The accessibility check can fail: an image without a text
    // alternative and a button without a name are caught.
    if javascript {
        requester.exec(
            "document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"data:,\"><button></button>');",
            json!([]),
        );
        let found = requester.axe();
        assert!(
            found.iter().any(|v| v.starts_with("image-alt"))
                && found.iter().any(|v| v.starts_with("button-name")),
            "{found:?}"
        );
    }

    // Signing out ends the session.
    requester.click("header form[action='/logout'] button");
    requester.wait_for_text("Sign in");
    requester.goto(&format!("{base}/me"));
    assert!(
        requester.url().contains("/login"),
        "signed out: {}",
        requester.url()
    );

    for page in [
        "home",
        "new-ticket",
        "ticket-open",
        "queue",
        "dashboard",
        "me",
    ] {
        assert!(checks.pages.iter().any(|p| p == page), "{page} was checked");
    }
    drop(server);
}

#[actix_web::test]
async fn the_whole_loop_in_chromium_with_javascript() {
    whole_loop(true).await;
}

#[actix_web::test]
async fn the_whole_loop_in_chromium_without_javascript() {
    whole_loop(false).await;
}

/// With the Stripe gateway the bounty is paid on the card page: Stripe.js
/// (the local fake's, loaded from its origin, which the page's CSP allows)
/// confirms the PaymentIntent with its client secret, the fake charges the
/// card and sends the signed `payment_intent.succeeded` webhook to the app
/// over HTTP, and the ticket shows the money in escrow; the ledger agrees.
#[actix_web::test]
async fn a_bounty_paid_by_card_through_stripe_js() {
    use crate::stripe::{FakeStripe, SECRET_KEY, WEBHOOK_SECRET};
    let fake = actix_web::rt::task::spawn_blocking(FakeStripe::start)
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::builder()
        .env("GUILDHALL_PAYMENT_GATEWAY", "stripe")
        .env("GUILDHALL_STRIPE_SECRET_KEY", SECRET_KEY)
        .env("GUILDHALL_STRIPE_API_BASE", &fake.base)
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("GUILDHALL_STRIPE_PUBLISHABLE_KEY", "pk_test_guildhall_fake")
        .env(
            "GUILDHALL_STRIPE_JS_URL",
            &format!("{}/js.stripe.com/v3/", fake.base),
        )
        .env("GUILDHALL_PUBLIC_URL", &base)
        .build();
    let server = Server::start(app.state.clone(), listener);
    fake.post(
        "/_config/webhooks/guildhall",
        &[
            ("url", &format!("{base}/api/v1/webhooks/stripe")),
            ("secret", WEBHOOK_SECRET),
        ],
    );
    let owner = app.user("owner").await;
    let requester = app.user("requester").await;
    app.project(&owner, "proj").await;
    let id = app
        .open_ticket(&requester, "proj", "Paid by card", "public")
        .await;

    let driver = Driver::start();
    let b = driver.browser(true);
    b.goto(&format!("{base}/login?next=/t/{id}"));
    b.fill("#email", &requester.email);
    b.fill("#password", PASSWORD);
    b.click("main form button[type=submit]");
    b.wait_for_text("Fund bounty");
    b.fill("#amount", "50.00");
    b.click("form[action$='/fund'] button");
    b.wait_for_text("Pay 50.00 USD");
    // The card element is Stripe.js's (here the fake's labelled inputs).
    b.fill("#fake-card-number", "4242424242424242");
    b.fill("#fake-card-exp_month", "12");
    b.fill("#fake-card-exp_year", "2034");
    b.fill("#fake-card-cvc", "123");
    let mut checks = Checks {
        backend: "stripe",
        pages: Vec::new(),
    };
    checks.page(&b, "pay");
    b.click("#pay-form button[type=submit]");
    // Back on the ticket; the webhook books the money (reload until then).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if b.url().ends_with(&format!("/t/{id}")) && b.text("main").contains("50.00 USD in escrow")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bounty never reached escrow: {} {}",
            b.url(),
            b.text("main")
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        if b.url().ends_with(&format!("/t/{id}")) {
            b.goto(&format!("{base}/t/{id}"));
        }
    }
    assert!(b
        .console()
        .iter()
        .all(|(level, m)| level != "SEVERE" || m.is_empty()));
    let escrow: i64 = {
        use diesel::prelude::*;
        use guildhall::db::schema::tickets;
        tickets::table
            .find(id)
            .select(tickets::paid_amount)
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(escrow, 5_000);

    // The monthly plan through Stripe Billing: subscribed on the plans page,
    // the first invoice paid by card with Stripe.js, and its invoice.
    app.post(
        "/api/v1/projects/proj/plans",
        json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"}}),
        Some(&owner.access),
    )
    .await
    .expect(201);
    b.goto(&format!("{base}/p/proj/plans"));
    b.click("form[action$='/subscribe'] button");
    b.wait_for_text("Pay 49.00 USD");
    b.fill("#fake-card-number", "4242424242424242");
    b.fill("#fake-card-exp_month", "12");
    b.fill("#fake-card-exp_year", "2034");
    b.fill("#fake-card-cvc", "123");
    b.click("#pay-form button[type=submit]");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if b.url().contains("/me/subscriptions") && b.text("main").contains("active") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription never became active: {} {}",
            b.url(),
            b.text("main")
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        if b.url().contains("/me/subscriptions") {
            b.goto(&format!("{base}/me/subscriptions"));
        }
    }
    b.goto(&format!("{base}/me/invoices"));
    b.wait_for_text("49.00 USD");
    b.click("main table a[href^='/invoices/']");
    b.wait_for_text("Payment collected by Guildhall");
    let invoices = app
        .get("/api/v1/me/invoices", Some(&requester.access))
        .await
        .expect(200);
    let invoice = invoices.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["total"]["amount"] == 4900)
        .expect("the subscription's invoice")["id"]
        .as_i64()
        .unwrap();
    let pdf = app
        .get(
            &format!("/api/v1/invoices/{invoice}/pdf"),
            Some(&requester.access),
        )
        .await
        .expect(200);
    assert!(pdf.text.starts_with("%PDF"));
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
    drop(server);
}
