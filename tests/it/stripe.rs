//! The Stripe gateway against a local Stripe: localstripe (PyPI) for
//! PaymentIntents, charges, refunds and signed webhooks, wrapped by
//! `tests/fake_stripe/fake_stripe.py` for the Connect endpoints it lacks.
//!
//! The fake is a real HTTP server in its own process; the application runs a
//! real HTTP server too, so Stripe's webhooks reach it over the network,
//! signed, exactly as in production. localstripe is installed into
//! `target/pydeps` (under `CARGO_TARGET_DIR` when set) on first use (pip, from PyPI) when it is not importable.

use crate::util::{TestApp, User};
use diesel::prelude::*;
use guildhall::db::schema::{bounties, payout_accounts, payouts, stripe_events};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub(crate) const SECRET_KEY: &str = "sk_test_guildhall_fake";
pub(crate) const WEBHOOK_SECRET: &str = "whsec_guildhall_fake_stripe";
const LOCALSTRIPE: &str = "localstripe==1.15.10";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A directory holding localstripe, installed once per test run.
fn pydeps() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Beside the build: a clone that shares a build directory
        // (CARGO_TARGET_DIR, as .ci/run's fresh-clone run does) shares it too.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target"));
        let dir = target.join("pydeps");
        let importable = |with_dir: bool| {
            let mut cmd = Command::new("python3");
            cmd.args(["-c", "import localstripe, aiohttp"]);
            if with_dir {
                cmd.env("PYTHONPATH", &dir);
            }
            cmd.stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !importable(true) {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--target",
                ])
                .arg(&dir)
                .arg(LOCALSTRIPE)
                .status()
                .expect("python3 is needed for the fake Stripe (tests/fake_stripe)");
            assert!(status.success(), "pip install {LOCALSTRIPE} failed");
            assert!(importable(true), "localstripe still not importable");
        }
        dir
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the fake Stripe exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the fake Stripe did not start listening on {port}");
}

/// One fake Stripe process for one test; killed when dropped.
pub struct FakeStripe {
    child: Child,
    pub base: String,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeStripe {
    pub fn start() -> FakeStripe {
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(repo().join("tests/fake_stripe/fake_stripe.py"))
            .args(["--port", &port.to_string(), "--fixtures"])
            .arg(repo().join("tests/fixtures/stripe/fixtures3.json"))
            .env("PYTHONPATH", pydeps())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fake Stripe");
        wait_for_port(port, &mut child);
        FakeStripe {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub(crate) fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        match ureq::post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {SECRET_KEY}"))
            .send_form(form)
        {
            Ok(r) => {
                let text = r.into_string().expect("body");
                if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).expect("json")
                }
            }
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "fake Stripe {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("fake Stripe {path}: {e}"),
        }
    }

    fn get(&self, path: &str) -> Value {
        ureq::get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {SECRET_KEY}"))
            .call()
            .expect("fake Stripe GET")
            .into_json()
            .expect("json")
    }

    /// The payer confirms a PaymentIntent with a test card (what Stripe.js
    /// does in the browser with the client secret).
    fn pay(&self, payment_intent: &str) -> Value {
        let pm = self.post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2034"),
                ("card[cvc]", "123"),
            ],
        );
        self.post(
            &format!("/v1/payment_intents/{payment_intent}"),
            &[("payment_method", pm["id"].as_str().unwrap())],
        );
        self.post(
            &format!("/v1/payment_intents/{payment_intent}/confirm"),
            &[],
        )
    }
}

/// The application on a real port, so the fake Stripe can deliver webhooks.
fn serve(app: &TestApp) -> u16 {
    let port = free_port();
    let state = app.state.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || guildhall::app::build(state.clone()))
                .workers(1)
                .bind(("127.0.0.1", port))
                .expect("bind")
                .run();
            tx.send(()).unwrap();
            let _ = server.await;
        })
    });
    rx.recv().unwrap();
    port
}

fn stripe_app(fake: &FakeStripe) -> TestApp {
    TestApp::builder()
        .env("GUILDHALL_PAYMENT_GATEWAY", "stripe")
        .env("GUILDHALL_STRIPE_SECRET_KEY", SECRET_KEY)
        .env("GUILDHALL_STRIPE_API_BASE", &fake.base)
        .env("GUILDHALL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("GUILDHALL_PUBLIC_URL", "https://guildhall.test")
        .env("GUILDHALL_PAYOUT_MINIMUM", "100")
        .build()
}

/// `user` proves their open-source work (as the GitHub flow records it).
fn prove_floss(app: &TestApp, user: i64) {
    guildhall::domain::floss::record(
        &mut app.conn(),
        user,
        "floss",
        &guildhall::integrations::github::UserRepository {
            id: 5,
            node_id: "R_5".into(),
            full_name: "floss/tool".into(),
            admin: true,
            maintain: false,
            private: false,
            license: Some("MIT".into()),
        },
    )
    .unwrap();
}

/// Stripe bills `gid`'s next period now (the fake's control).
async fn renew(fake: &std::sync::Arc<FakeStripe>, gid: &str) {
    let (fake, gid) = (fake.clone(), gid.to_owned());
    blocking(move || fake.post(&format!("/_fake/subscriptions/{gid}/renew"), &[])).await;
}

/// The fake Stripe, and the app on a real port with the fake's signed
/// webhooks registered to it.
async fn stripe_world() -> (std::sync::Arc<FakeStripe>, TestApp) {
    let fake = std::sync::Arc::new(blocking(FakeStripe::start).await);
    let app = stripe_app(&fake);
    let port = serve(&app);
    {
        let fake = fake.clone();
        blocking(move || {
            fake.post(
                "/_config/webhooks/guildhall",
                &[
                    (
                        "url",
                        &format!("http://127.0.0.1:{port}/api/v1/webhooks/stripe"),
                    ),
                    ("secret", WEBHOOK_SECRET),
                ],
            )
        })
        .await;
    }
    (fake, app)
}

/// Runs the due background jobs once, off the async thread (they call
/// the fake Stripe).
async fn run_jobs_off_thread(app: &TestApp) {
    let (pool, config) = (app.pool.clone(), app.state.config.clone());
    blocking(move || {
        guildhall::jobs::runner(pool, &config)
            .unwrap()
            .run_pending()
            .unwrap()
    })
    .await;
}

/// Waits (off the async thread) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool + Send + 'static) {
    let ok = actix_web::rt::task::spawn_blocking(move || {
        crate::util::wait_until(Duration::from_secs(20), &mut f)
    })
    .await
    .unwrap();
    assert!(ok, "timed out waiting until {what}");
}

/// Runs blocking work (the fake's HTTP API, the gateway) off the test's
/// async thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(f).await.unwrap()
}

async fn fund(
    app: &TestApp,
    fake: &std::sync::Arc<FakeStripe>,
    backer: &User,
    ticket: i64,
    amount: i64,
) -> i64 {
    let r = app
        .post(
            &format!("/api/v1/tickets/{ticket}/bounties"),
            json!({"amount": amount, "currency": "usd"}),
            Some(&backer.access),
        )
        .await
        .expect(201);
    assert_eq!(r.body["payment"]["gateway"], "stripe");
    assert_eq!(r.body["payment"]["test_money"], true);
    assert_eq!(r.body["payment"]["status"], "requires_action");
    assert_eq!(r.body["bounty"]["status"], "pending_payment");
    let secret = r.body["payment"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let bounty = r.body["bounty"]["id"].as_i64().unwrap();
    let pi: String = bounties::table
        .find(bounty)
        .select(bounties::payment_id.assume_not_null())
        .first(&mut app.conn())
        .unwrap();
    assert!(
        pi.starts_with("pi_") && secret.starts_with(&pi),
        "{pi} / {secret}"
    );
    let pi_at_stripe = {
        let fake = fake.clone();
        let pi = pi.clone();
        blocking(move || fake.get(&format!("/v1/payment_intents/{pi}"))).await
    };
    assert_eq!(pi_at_stripe["amount"], amount);
    assert_eq!(pi_at_stripe["metadata"]["ticket_id"], ticket.to_string());
    assert_eq!(pi_at_stripe["metadata"]["bounty_id"], bounty.to_string());
    let confirmed = {
        let fake = fake.clone();
        blocking(move || fake.pay(&pi)).await
    };
    assert_eq!(confirmed["status"], "succeeded");
    // The signed payment_intent.succeeded webhook books it into escrow.
    let pool = app.pool.clone();
    eventually(
        "the payment_intent.succeeded webhook funds the bounty",
        move || {
            bounties::table
                .find(bounty)
                .select(bounties::status)
                .first::<String>(&mut pool.get().unwrap())
                .is_ok_and(|s| s == "funded")
        },
    )
    .await;
    bounty
}

#[actix_web::test]
async fn stripe_funds_releases_pays_out_and_refunds() {
    let (fake, app) = stripe_world().await;
    let maintainer = app.user("maint").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&maintainer, "proj").await;
    app.approved_helper(&maintainer, &helper, "proj").await;

    // Fund 100.00 through a PaymentIntent, confirmed by the payer.
    let ticket = app
        .open_ticket(&requester, "proj", "Stripe funded", "public")
        .await;
    fund(&app, &fake, &requester, ticket, 10_000).await;
    let applied: Vec<(String, String)> = stripe_events::table
        .select((stripe_events::event_type, stripe_events::outcome))
        .load(&mut app.conn())
        .unwrap();
    assert!(
        applied.contains(&("payment_intent.succeeded".into(), "bounty funded".into())),
        "{applied:?}"
    );

    // Claim, resolve, accept: 85.00 / 10.00 / 5.00.
    for (path, who) in [
        ("claim", &helper),
        ("resolve", &helper),
        ("accept", &requester),
    ] {
        app.post(
            &format!("/api/v1/tickets/{ticket}/{path}"),
            json!({}),
            Some(&who.access),
        )
        .await
        .expect(200);
    }
    let balance = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(balance.body["items"][0]["available"], 8_500);

    // Connect Express onboarding for the helper and the project.
    let mut accounts = vec![];
    for (path, who) in [
        ("/api/v1/me/payouts/onboarding", &helper),
        ("/api/v1/projects/proj/payouts/onboarding", &maintainer),
    ] {
        let o = app
            .post(path, json!({}), Some(&who.access))
            .await
            .expect(200);
        let account = o.body["account_id"].as_str().unwrap().to_owned();
        assert!(account.starts_with("acct_"), "{account}");
        assert_eq!(o.body["ready"], false, "not onboarded yet");
        assert_eq!(
            o.body["url"].as_str().unwrap(),
            format!("{}/_fake/onboarding/{account}", fake.base)
        );
        accounts.push(account);
    }
    // Nothing is paid to accounts that cannot receive transfers.
    let gateway = app.state.gateway.clone();
    let pool = app.pool.clone();
    let report =
        blocking(move || guildhall::domain::payouts::run(&pool, gateway.as_ref(), 100).unwrap())
            .await;
    assert_eq!(report.paid, 0);

    // Stripe finishes onboarding and says so with account.updated webhooks.
    for account in &accounts {
        let fake = fake.clone();
        let account = account.clone();
        blocking(move || fake.post(&format!("/_fake/accounts/{account}/complete"), &[])).await;
    }
    let pool = app.pool.clone();
    eventually(
        "account.updated marks both payout accounts ready",
        move || {
            payout_accounts::table
                .filter(payout_accounts::ready.eq(true))
                .count()
                .get_result::<i64>(&mut pool.get().unwrap())
                .is_ok_and(|n| n == 2)
        },
    )
    .await;

    // The first transfer happens at Stripe but its answer is lost; the next
    // run asks again with the same idempotency key and gets the same
    // transfer back: each payee is paid exactly once.
    {
        let fake = fake.clone();
        blocking(move || fake.post("/_fake/fail_transfers", &[("after", "1")])).await;
    }
    for expected_paid in [1, 1] {
        let gateway = app.state.gateway.clone();
        let pool = app.pool.clone();
        let report = blocking(move || {
            guildhall::domain::payouts::run(&pool, gateway.as_ref(), 100).unwrap()
        })
        .await;
        assert_eq!(report.paid, expected_paid, "{report:?}");
    }
    let transfers = {
        let fake = fake.clone();
        blocking(move || fake.get("/_fake/transfers")).await
    };
    let mut made: Vec<(i64, String, String)> = transfers["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["amount"].as_i64().unwrap(),
                t["destination"].as_str().unwrap().to_owned(),
                t["transfer_group"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    made.sort();
    assert_eq!(
        made,
        vec![
            (1_000, accounts[1].clone(), format!("ticket-{ticket}")),
            (8_500, accounts[0].clone(), format!("ticket-{ticket}")),
        ],
        "one transfer per payee, grouped by ticket"
    );
    let recorded: Vec<(String, Option<String>)> = payouts::table
        .select((payouts::status, payouts::gateway_transfer_id))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(recorded.len(), 2);
    for (status, id) in &recorded {
        assert_eq!(status, "paid");
        assert!(transfers["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"].as_str() == id.as_deref()));
    }
    let balance = app
        .get("/api/v1/me/balance", Some(&helper.access))
        .await
        .expect(200);
    assert_eq!(balance.body["items"][0]["available"], 0);

    // Cancelling a funded ticket refunds the backer through Stripe.
    let second = app
        .open_ticket(&requester, "proj", "Refund me", "public")
        .await;
    let bounty = fund(&app, &fake, &requester, second, 2_500).await;
    app.post(
        &format!("/api/v1/tickets/{second}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    let ran = {
        let pool = app.pool.clone();
        let config = app.state.config.clone();
        blocking(move || {
            let runner = guildhall::jobs::runner(pool, &config).unwrap();
            runner.run_pending().unwrap()
        })
        .await
    };
    assert!(ran >= 1);
    let (status, pi, refund): (String, Option<String>, Option<String>) = bounties::table
        .find(bounty)
        .select((bounties::status, bounties::payment_id, bounties::refund_id))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(status, "refunded");
    let refund = refund.expect("the refund job recorded Stripe's refund id");
    assert!(refund.starts_with("re_"), "{refund}");
    let refunds = {
        let fake = fake.clone();
        let pi = pi.unwrap();
        blocking(move || fake.get(&format!("/v1/refunds?payment_intent={pi}"))).await
    };
    let refunds = refunds["data"].as_array().unwrap().clone();
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");
    assert_eq!(refunds[0]["amount"], 2_500);
    assert_eq!(refunds[0]["id"], refund.as_str());

    let violations = guildhall::ledger::check(&mut app.conn()).unwrap();
    assert_eq!(violations, Vec::<String>::new());
}

#[test]
fn a_stripe_gateway_needs_a_secret_key_and_an_http_base() {
    use guildhall::config::Config;
    use std::collections::HashMap;
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = Config::from_sources(
        &env(&[("GUILDHALL_PAYMENT_GATEWAY", "stripe")]),
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("GUILDHALL_STRIPE_SECRET_KEY"),
        "{err}"
    );
    let err = Config::from_sources(
        &env(&[
            ("GUILDHALL_PAYMENT_GATEWAY", "stripe"),
            ("GUILDHALL_STRIPE_SECRET_KEY", SECRET_KEY),
            ("GUILDHALL_STRIPE_API_BASE", "ftp://x"),
        ]),
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("GUILDHALL_STRIPE_API_BASE"),
        "{err}"
    );
    let err = Config::from_sources(
        &env(&[("GUILDHALL_PAYMENT_GATEWAY", "paypal")]),
        &HashMap::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("sandbox or stripe"), "{err}");
    let ok = Config::from_sources(
        &env(&[
            ("GUILDHALL_PAYMENT_GATEWAY", "stripe"),
            ("GUILDHALL_STRIPE_SECRET_KEY", SECRET_KEY),
        ]),
        &HashMap::new(),
    )
    .unwrap();
    // The key never shows in debug output.
    assert!(!format!("{:?}", ok.gateway).contains(SECRET_KEY));
}

#[test]
fn stripe_errors_come_back_as_errors_without_the_key() {
    use guildhall::payments::PaymentGateway;
    let fake = FakeStripe::start();
    let gateway = guildhall::payments::stripe::StripeGateway::new(
        &guildhall::payments::stripe::StripeSettings {
            secret_key: SECRET_KEY.into(),
            api_base: fake.base.clone(),
            public_url: "https://guildhall.test".into(),
            timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    // No such account: a clear error from Stripe, no panic, no key.
    let err = gateway
        .transfer(500, "usd", "acct_missing", "ticket-1", "payout:missing")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("400") && err.contains("No such destination"),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY));
    // An account that has not finished onboarding cannot receive transfers.
    let account = gateway
        .create_payout_account("payout-account:user:1")
        .unwrap();
    assert_eq!(
        gateway
            .create_payout_account("payout-account:user:1")
            .unwrap(),
        account,
        "the same idempotency key returns the same account"
    );
    assert!(!gateway.payout_account_ready(&account).unwrap());
    let err = gateway
        .transfer(500, "usd", &account, "ticket-1", "payout:early")
        .unwrap_err()
        .to_string();
    assert!(err.contains("capabilities"), "{err}");
    drop(fake);
    // Stripe unreachable: an error, not a hang or a panic.
    let err = gateway
        .transfer(500, "usd", &account, "ticket-1", "payout:down")
        .unwrap_err()
        .to_string();
    assert!(err.contains("stripe"), "{err}");
}

/// The subscription `id` as stored.
fn sub_row(app: &TestApp, id: i64) -> guildhall::domain::plans::Subscription {
    guildhall::domain::plans::get_subscription(&mut app.conn(), id).unwrap()
}

/// Subscribes `who` to `plan` in `context`; the first invoice's payment
/// waits for the card. Returns (our id, Stripe's id, the PaymentIntent).
async fn subscribe_billed(
    app: &TestApp,
    who: &User,
    plan: i64,
    context: &str,
) -> (i64, String, String) {
    let r = app
        .post(
            "/api/v1/projects/proj/subscriptions",
            json!({"plan_id": plan, "context": context}),
            Some(&who.access),
        )
        .await;
    if r.status != 201 {
        let logs = crate::util::captured_logs();
        let tail: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("refused a subscription"))
            .collect();
        panic!("{} {}: {tail:?}", r.status, r.body);
    }
    assert_eq!(r.body["payment"]["status"], "requires_action", "{}", r.body);
    let secret = r.body["payment"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = r.body["subscription"]["id"].as_i64().unwrap();
    let row = sub_row(app, id);
    assert_eq!(row.status, "pending_payment");
    let gid = row
        .gateway_subscription_id
        .clone()
        .expect("billed by Stripe");
    assert!(gid.starts_with("sub_"), "{gid}");
    let pi = secret.split("_secret_").next().unwrap().to_owned();
    (id, gid, pi)
}

async fn eventually_status(app: &TestApp, id: i64, status: &'static str) {
    let pool = app.pool.clone();
    eventually(&format!("subscription {id} is {status}"), move || {
        guildhall::domain::plans::get_subscription(&mut pool.get().unwrap(), id)
            .is_ok_and(|s| s.status == status)
    })
    .await;
}

#[actix_web::test]
async fn stripe_billing_subscribes_renews_fails_and_ends_exactly_once() {
    let (fake, app) = stripe_world().await;
    let owner = app.user("owner").await;
    let business = app.user("business").await;
    let floss = app.user("floss").await;
    let corp = app.user("corp").await;
    app.project(&owner, "proj").await;
    let plan = |body: Value| {
        let app = &app;
        let token = owner.access.clone();
        async move {
            app.post("/api/v1/projects/proj/plans", body, Some(&token))
                .await
                .expect(201)
                .body["id"]
                .as_i64()
                .unwrap()
        }
    };
    let monthly = plan(
        json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"},
        "included_upgrades": 2, "floss_discount_pct": 50}),
    )
    .await;
    let enterprise = plan(json!({"kind": "enterprise", "name": "Enterprise", "price": {"amount": 50000, "currency": "usd"},
        "response_hours": 4, "term_months": 6, "service_credit_pct": 10}))
    .await;

    // A business subscribes to the monthly plan and pays the first invoice.
    let (id, gid, pi) = subscribe_billed(&app, &business, monthly, "professional").await;
    let at_stripe = {
        let (fake, gid) = (fake.clone(), gid.clone());
        blocking(move || fake.get(&format!("/v1/subscriptions/{gid}"))).await
    };
    assert_eq!(at_stripe["status"], "incomplete");
    assert_eq!(at_stripe["metadata"]["subscription_id"], id.to_string());
    assert_eq!(at_stripe["plan"]["amount"], 4900);
    {
        let fake = fake.clone();
        let confirmed = blocking(move || fake.pay(&pi)).await;
        assert_eq!(confirmed["status"], "succeeded");
    }
    eventually_status(&app, id, "active").await;
    let period1 = guildhall::domain::plans::period(&mut app.conn(), id, 1)
        .unwrap()
        .unwrap();
    assert_eq!((period1.status.as_str(), period1.amount), ("paid", 4900));
    assert!(period1
        .gateway_invoice_id
        .as_deref()
        .unwrap()
        .starts_with("in_"));
    // Its invoice, as HTML data and as a PDF.
    let invoices = app
        .get("/api/v1/me/invoices", Some(&business.access))
        .await
        .expect(200);
    let invoice = invoices.body["items"][0]["id"]
        .as_i64()
        .expect("an invoice");
    assert_eq!(invoices.body["items"][0]["total"]["amount"], 4900);
    let pdf = app
        .get(
            &format!("/api/v1/invoices/{invoice}/pdf"),
            Some(&business.access),
        )
        .await
        .expect(200);
    assert_eq!(
        pdf.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert!(pdf.text.starts_with("%PDF"));

    // Stripe renews it: invoice.paid books the second period, once.
    renew(&fake, &gid).await;
    let pool = app.pool.clone();
    let ok = actix_web::rt::task::spawn_blocking(move || {
        crate::util::wait_until(Duration::from_secs(10), || {
            guildhall::domain::plans::period(&mut pool.get().unwrap(), id, 2)
                .unwrap()
                .is_some_and(|p| p.status == "paid")
        })
    })
    .await
    .unwrap();
    if !ok {
        let outcomes: Vec<(String, String)> = stripe_events::table
            .select((stripe_events::event_type, stripe_events::outcome))
            .load(&mut app.conn())
            .unwrap();
        let logs = crate::util::captured_logs();
        let warn: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        panic!("{outcomes:#?}\n{warn:#?}");
    }
    let pool = app.pool.clone();
    eventually("the renewal's invoice.paid books period 2", move || {
        guildhall::domain::plans::period(&mut pool.get().unwrap(), id, 2)
            .unwrap()
            .is_some_and(|p| p.status == "paid" && p.amount == 4900)
    })
    .await;
    assert_eq!(sub_row(&app, id).current_period, 2);
    let outcomes: Vec<(String, String)> = stripe_events::table
        .select((stripe_events::event_type, stripe_events::outcome))
        .load(&mut app.conn())
        .unwrap();
    // Each period was booked by exactly one event: the first invoice's
    // payment_intent.succeeded or invoice.paid, whichever came first, and
    // the renewal's invoice.paid.
    assert_eq!(
        outcomes
            .iter()
            .filter(|(_, o)| o == "subscription period paid")
            .count(),
        2,
        "{outcomes:?}"
    );
    // The same invoice reported again under another event id books nothing.
    let p2 = guildhall::domain::plans::period(&mut app.conn(), id, 2)
        .unwrap()
        .unwrap();
    let again = json!({"id": "evt_again", "type": "invoice.paid", "data": {"object": {
        "id": p2.gateway_invoice_id, "subscription": gid,
        "payment_intent": p2.payment_id, "amount_paid": 4900}}});
    let raw = serde_json::to_vec(&again).unwrap();
    let t = chrono::Utc::now().timestamp();
    let sig = guildhall::payments::stripe_webhook::sign(WEBHOOK_SECRET.as_bytes(), t, &raw);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let r = app
        .send(
            &svc,
            actix_web::test::TestRequest::post()
                .uri("/api/v1/webhooks/stripe")
                .insert_header(("stripe-signature", format!("t={t},v1={sig}")))
                .insert_header(("content-type", "application/json"))
                .set_payload(raw),
        )
        .await
        .expect(200);
    assert!(r.text.contains("already paid"), "{}", r.text);
    let booked: i64 = guildhall::db::schema::subscription_periods::table
        .filter(guildhall::db::schema::subscription_periods::subscription_id.eq(id))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(booked, 2);
    // A refused renewal: past due, the plan holds through the grace.
    {
        let (fake, gid) = (fake.clone(), gid.clone());
        blocking(move || {
            fake.post(
                &format!("/_fake/subscriptions/{gid}/renew"),
                &[("decline", "1")],
            )
        })
        .await;
    }
    {
        let pool = app.pool.clone();
        let ok = actix_web::rt::task::spawn_blocking(move || {
            crate::util::wait_until(Duration::from_secs(10), || {
                guildhall::domain::plans::get_subscription(&mut pool.get().unwrap(), id)
                    .is_ok_and(|s| s.status == "past_due")
            })
        })
        .await
        .unwrap();
        let outcomes: Vec<(String, String)> = stripe_events::table
            .select((stripe_events::event_type, stripe_events::outcome))
            .load(&mut app.conn())
            .unwrap();
        assert!(ok, "{outcomes:#?}");
    }
    // Cancelling a past-due subscription ends it here and at Stripe, and
    // Stripe's customer.subscription.deleted changes nothing more.
    app.post(
        &format!("/api/v1/subscriptions/{id}/cancel"),
        json!({}),
        Some(&business.access),
    )
    .await
    .expect(200);
    assert_eq!(sub_row(&app, id).status, "cancelled");
    run_jobs_off_thread(&app).await;
    let ended = {
        let (fake, gid) = (fake.clone(), gid.clone());
        blocking(move || fake.get(&format!("/v1/subscriptions/{gid}?status=all"))).await
    };
    assert_eq!(ended["status"], "canceled");
    let pool = app.pool.clone();
    eventually("Stripe's deletion is recorded", move || {
        stripe_events::table
            .filter(stripe_events::event_type.eq("customer.subscription.deleted"))
            .select(stripe_events::outcome)
            .load::<String>(&mut pool.get().unwrap())
            .unwrap()
            .contains(&"subscription already ended".to_owned())
    })
    .await;

    // The FLOSS discount is a Stripe coupon on every invoice.
    prove_floss(&app, floss.id);
    let (fid, fgid, fpi) = subscribe_billed(&app, &floss, monthly, "floss").await;
    let f_at_stripe = {
        let (fake, fgid) = (fake.clone(), fgid.clone());
        blocking(move || fake.get(&format!("/v1/subscriptions/{fgid}?expand[]=latest_invoice")))
            .await
    };
    assert_eq!(
        f_at_stripe["latest_invoice"]["amount_due"], 2450,
        "{f_at_stripe}"
    );
    blocking({
        let fake = fake.clone();
        move || fake.pay(&fpi)
    })
    .await;
    eventually_status(&app, fid, "active").await;
    let fp = guildhall::domain::plans::period(&mut app.conn(), fid, 1)
        .unwrap()
        .unwrap();
    assert_eq!(fp.amount, 2450);
    // A year on, the proof has lapsed: the daily sync takes the coupon off
    // at Stripe, and the next renewal is charged in full; proving it again
    // puts the coupon back.
    {
        use guildhall::db::schema::floss_proofs as fp;
        diesel::update(fp::table.filter(fp::user_id.eq(floss.id)))
            .set(fp::checked_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::days(400)))
            .execute(&mut app.conn())
            .unwrap();
    }
    let synced = blocking({
        let pool = app.pool.clone();
        let gateway = app.state.gateway.clone();
        move || guildhall::domain::plans::sync_floss_discounts(&pool, gateway.as_ref()).unwrap()
    })
    .await;
    assert_eq!(synced, 1);
    assert!(!sub_row(&app, fid).gateway_discounted);
    renew(&fake, &fgid).await;
    let pool = app.pool.clone();
    eventually("the full-price renewal is booked", move || {
        guildhall::domain::plans::period(&mut pool.get().unwrap(), fid, 2)
            .unwrap()
            .is_some_and(|p| p.status == "paid" && p.amount == 4900)
    })
    .await;
    prove_floss(&app, floss.id);
    run_jobs_off_thread(&app).await;
    assert!(
        sub_row(&app, fid).gateway_discounted,
        "the proof put it back"
    );
    renew(&fake, &fgid).await;
    let pool = app.pool.clone();
    eventually("the discounted renewal is booked", move || {
        guildhall::domain::plans::period(&mut pool.get().unwrap(), fid, 3)
            .unwrap()
            .is_some_and(|p| p.status == "paid" && p.amount == 2450)
    })
    .await;
    // Cancelled while active: it ends with its period, at Stripe too.
    app.post(
        &format!("/api/v1/subscriptions/{fid}/cancel"),
        json!({}),
        Some(&floss.access),
    )
    .await
    .expect(200);
    run_jobs_off_thread(&app).await;
    let f_after = {
        let (fake, fgid) = (fake.clone(), fgid.clone());
        blocking(move || fake.get(&format!("/v1/subscriptions/{fgid}"))).await
    };
    assert_eq!(f_after["cancel_at_period_end"], true);
    assert_eq!(sub_row(&app, fid).status, "active");

    // Enterprise: a schedule whose first phase is one 6-month term.
    let (eid, egid, epi) = subscribe_billed(&app, &corp, enterprise, "professional").await;
    let e_at_stripe = {
        let (fake, egid) = (fake.clone(), egid.clone());
        blocking(move || fake.get(&format!("/v1/subscriptions/{egid}?expand[]=latest_invoice")))
            .await
    };
    assert_eq!(e_at_stripe["plan"]["interval_count"], 6);
    assert!(
        e_at_stripe["schedule"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sub_sched_"),
        "{e_at_stripe}"
    );
    assert_eq!(e_at_stripe["latest_invoice"]["amount_due"], 300_000);
    blocking({
        let fake = fake.clone();
        move || fake.pay(&epi)
    })
    .await;
    eventually_status(&app, eid, "active").await;
    // A missed response time: the service credit is given to Stripe as a
    // negative item, taken off the next invoice, and used up in the ledger.
    let late = app
        .open_ticket(&corp, "proj", "Production is down", "public")
        .await;
    guildhall::domain::sla::sweep(&mut app.conn()).unwrap();
    {
        use guildhall::db::schema::sla_clocks as sc;
        diesel::update(sc::table.filter(sc::ticket_id.eq(late)))
            .set(sc::due_at.eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)))
            .execute(&mut app.conn())
            .unwrap();
    }
    assert_eq!(
        guildhall::domain::sla::sweep(&mut app.conn())
            .unwrap()
            .breached,
        1
    );
    run_jobs_off_thread(&app).await;
    assert_eq!(sub_row(&app, eid).gateway_credit_outstanding, 5000);
    renew(&fake, &egid).await;
    let pool = app.pool.clone();
    eventually("the renewal less the service credit is booked", move || {
        guildhall::domain::plans::period(&mut pool.get().unwrap(), eid, 2)
            .unwrap()
            .is_some_and(|p| p.status == "paid" && p.amount == 295_000 && p.credit_applied == 5000)
    })
    .await;
    let e = sub_row(&app, eid);
    assert_eq!(e.gateway_credit_outstanding, 0);
    assert_eq!(
        guildhall::domain::plans::service_credit_left(&mut app.conn(), &e).unwrap(),
        0
    );

    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}
