//! TestApp: a fresh database, the real application, and request helpers.

use actix_web::http::{header, Method, StatusCode};
use actix_web::test;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use guildhall::config::{Config, Secret};
use guildhall::db::{self, DbPool};
use guildhall::payments::{Payment, PaymentGateway, PaymentRequest, PaymentStatus, Sandbox};
use guildhall::state::AppState;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The JWT key every test app signs with, so tests can forge tokens.
pub const TEST_JWT_KEY: &str = "test-key-test-key-test-key-test-key-0123456789";
/// A password that passes validation.
pub const PASSWORD: &str = "correct horse battery staple";

/// Everything logged by any test, to check that secrets never appear.
pub fn captured_logs() -> String {
    let buf = log_buffer().lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&buf).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        log_buffer()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(|| CaptureWriter)
            .try_init();
    });
}

/// The PostgreSQL server tests run against, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("GUILDHALL_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A PostgreSQL database made for one test, dropped with it.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    fn create(base: &str) -> (Self, String) {
        let name = format!(
            "guildhall_test_{}",
            guildhall::auth::tokens::random_token(9)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let mut admin =
            diesel::PgConnection::establish(base).expect("connect to GUILDHALL_TEST_DATABASE_URL");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        (
            PgDatabase {
                admin_url: base.to_owned(),
                name: name.clone(),
            },
            with_database(base, &name),
        )
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_and_path = &base[scheme_end..];
    let host = host_and_path.split('/').next().unwrap_or(host_and_path);
    format!("{}{}/{}{}", &base[..scheme_end], host, name, query)
}

/// Configuration overrides for a test app.
#[derive(Default)]
pub struct TestAppBuilder {
    env: HashMap<String, String>,
    database_url: Option<String>,
}

impl TestAppBuilder {
    /// Sets a GUILDHALL_* variable for this app's configuration.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Uses this database URL as is (no fresh database, no migrations).
    pub fn raw_database(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Builds the app on a fresh, migrated database.
    pub fn build(self) -> TestApp {
        init_logging();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = self.env;
        env.entry("GUILDHALL_DATA_DIR".into())
            .or_insert_with(|| dir.path().to_string_lossy().into_owned());
        env.entry("GUILDHALL_JWT_SECRET".into())
            .or_insert_with(|| TEST_JWT_KEY.into());
        env.entry("GUILDHALL_DB_POOL_SIZE".into())
            .or_insert_with(|| "8".into());
        // Every test user registers from the same (absent) address.
        env.entry("GUILDHALL_REGISTER_MAX_PER_ADDRESS".into())
            .or_insert_with(|| "1000".into());
        let (pg, url, migrate) = match (self.database_url, postgres_url()) {
            (Some(raw), _) => (None, raw, false),
            (None, Some(base)) => {
                let (pg, url) = PgDatabase::create(&base);
                (Some(pg), url, true)
            }
            (None, None) => (
                None,
                dir.path().join("test.db").to_string_lossy().into_owned(),
                true,
            ),
        };
        env.insert("GUILDHALL_DATABASE_URL".into(), url.clone());
        let config = Config::from_sources(&env, &HashMap::new()).expect("test configuration");
        let pool = if migrate {
            let pool =
                db::connect(&url, config.db_pool_size, config.db_pool_timeout).expect("pool");
            db::migrate(&mut pool.get().expect("connection")).expect("migrations");
            pool
        } else {
            diesel::r2d2::Pool::builder()
                .max_size(1)
                .connection_timeout(config.db_pool_timeout)
                .build_unchecked(diesel::r2d2::ConnectionManager::new(url))
        };
        let state = guildhall::app::state(config, pool.clone()).expect("state");
        TestApp {
            state,
            pool,
            _dir: dir,
            _pg: pg,
        }
    }
}

/// A running application on its own database.
pub struct TestApp {
    /// The application state (pool, config, tokens).
    pub state: AppState,
    /// The database pool.
    pub pool: DbPool,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// A response: status, headers and JSON body (Null when empty or not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Panics with the body unless the status matches.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// A logged-in test user.
#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// A default app.
    pub fn new() -> Self {
        TestApp::builder().build()
    }

    /// A builder for configuration overrides.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// A connection from the app's pool.
    pub fn conn(&self) -> db::PooledConn {
        self.pool.get().expect("connection")
    }

    /// Runs every due background job, index jobs included (as `serve` would).
    pub fn run_jobs(&self) -> usize {
        let config = &self.state.config;
        let index =
            guildhall::jobs::index_runner(self.pool.clone(), self.state.index.clone(), config)
                .expect("index runner");
        let general = guildhall::jobs::runner(self.pool.clone(), config).expect("runner");
        let mut ran = 0;
        loop {
            let n = general.run_pending().expect("jobs") + index.run_pending().expect("index jobs");
            if n == 0 {
                return ran;
            }
            ran += n;
        }
    }

    /// Creates a draft ticket as `requester` and returns its id.
    pub async fn draft(
        &self,
        requester: &User,
        project: &str,
        title: &str,
        visibility: &str,
    ) -> i64 {
        self.post(
            "/api/v1/tickets",
            json!({"project": project, "title": title, "body": format!("details about {title}"), "tags": ["help"], "kind": "question", "visibility": visibility}),
            Some(&requester.access),
        )
        .await
        .expect(201)
        .body["id"]
            .as_i64()
            .expect("id")
    }

    /// Creates and submits a ticket (accepting the code of conduct first).
    pub async fn open_ticket(
        &self,
        requester: &User,
        project: &str,
        title: &str,
        visibility: &str,
    ) -> i64 {
        let id = self.draft(requester, project, title, visibility).await;
        self.post(
            &format!("/api/v1/projects/{project}/coc/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
        self.post(
            &format!("/api/v1/tickets/{id}/submit"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
        id
    }

    /// `requester` opens a ticket on `project` and funds a bounty of `amount`
    /// (usd); `helper` claims and resolves it. Returns the ticket id.
    pub async fn funded_and_resolved(
        &self,
        requester: &User,
        helper: &User,
        project: &str,
        title: &str,
        amount: i64,
    ) -> i64 {
        let id = self.open_ticket(requester, project, title, "public").await;
        self.post(
            &format!("/api/v1/tickets/{id}/bounties"),
            json!({"amount": amount, "currency": "usd"}),
            Some(&requester.access),
        )
        .await
        .expect(201);
        for step in ["claim", "resolve"] {
            self.post(
                &format!("/api/v1/tickets/{id}/{step}"),
                json!({}),
                Some(&helper.access),
            )
            .await
            .expect(200);
        }
        id
    }

    /// `helper` claims ticket `id`, answers it with `answer` and resolves
    /// it with that message; then `requester` accepts. Returns the
    /// message id.
    pub async fn answered_and_accepted(
        &self,
        id: i64,
        requester: &User,
        helper: &User,
        answer: &str,
    ) -> i64 {
        self.post(
            &format!("/api/v1/tickets/{id}/claim"),
            json!({}),
            Some(&helper.access),
        )
        .await
        .expect(200);
        let m = self
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                json!({"body": answer}),
                Some(&helper.access),
            )
            .await
            .expect(201);
        let message = m.body["id"].as_i64().expect("message id");
        self.post(
            &format!("/api/v1/tickets/{id}/resolve"),
            json!({"message_id": message}),
            Some(&helper.access),
        )
        .await
        .expect(200);
        self.post(
            &format!("/api/v1/tickets/{id}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
        message
    }

    /// The paid happy path: [`TestApp::funded_and_resolved`], then the
    /// requester accepts (releasing the escrow). Returns the ticket id.
    pub async fn paid_and_accepted(
        &self,
        requester: &User,
        helper: &User,
        project: &str,
        title: &str,
        amount: i64,
    ) -> i64 {
        let id = self
            .funded_and_resolved(requester, helper, project, title, amount)
            .await;
        self.post(
            &format!("/api/v1/tickets/{id}/accept"),
            json!({}),
            Some(&requester.access),
        )
        .await
        .expect(200);
        id
    }

    /// Sends a request through the full application.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Resp {
        let svc = test::init_service(guildhall::app::build(self.state.clone())).await;
        let mut req = test::TestRequest::default()
            .method(method)
            .uri(path)
            .peer_addr("10.1.2.3:4567".parse().expect("addr"));
        if let Some(t) = token {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {t}")));
        }
        if let Some(b) = body {
            req = req.set_json(b);
        }
        self.send(&svc, req).await
    }

    /// Sends a prepared request through a service.
    pub async fn send<S, B>(&self, svc: &S, req: test::TestRequest) -> Resp
    where
        S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
        B: actix_web::body::MessageBody,
    {
        let resp = test::call_service(svc, req.to_request()).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = test::read_body(resp).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::GET, path, None, token).await
    }

    /// POST with JSON.
    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Resp {
        self.request(Method::POST, path, Some(body), token).await
    }

    /// PATCH with JSON.
    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> Resp {
        self.request(Method::PATCH, path, Some(body), token).await
    }

    pub async fn put_json(&self, path: &str, body: Value, token: Option<&str>) -> Resp {
        self.request(Method::PUT, path, Some(body), token).await
    }

    /// Registers and logs in a user.
    pub async fn user(&self, name: &str) -> User {
        let email = format!("{name}@example.com");
        let r = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD, "display_name": name}),
                None,
            )
            .await
            .expect(201);
        let id = r.body["id"].as_i64().expect("id");
        let r = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await
            .expect(200);
        User {
            id,
            email,
            access: r.body["access_token"].as_str().expect("access").to_owned(),
            refresh: r.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        }
    }

    /// Creates a project owned by `owner`.
    pub async fn project(&self, owner: &User, slug: &str) -> Value {
        self.post(
            "/api/v1/projects",
            json!({"slug": slug, "name": slug, "repo_url": format!("https://github.com/x/{slug}"),
                   "description": "a test project", "topics": ["rust"]}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body
    }

    /// Marks `slug` as having proved control of its repository, as a
    /// project must before it takes real money through a live gateway.
    pub fn verify_project(&self, slug: &str) {
        let mut conn = self.conn();
        let p = guildhall::domain::projects::by_slug(&mut conn, slug).expect("project");
        guildhall::domain::projects::verify(&mut conn, p.id, "platform_admin").expect("verify");
    }

    /// Makes `helper` an approved helper of `slug`, approved by `maintainer`.
    pub async fn approved_helper(&self, maintainer: &User, helper: &User, slug: &str) {
        self.post(
            &format!("/api/v1/projects/{slug}/helpers/apply"),
            json!({"tier": "community", "bio": "hi"}),
            Some(&helper.access),
        )
        .await
        .expect(201);
        self.post(
            &format!("/api/v1/projects/{slug}/helpers/{}/approve", helper.id),
            json!({}),
            Some(&maintainer.access),
        )
        .await
        .expect(200);
    }
}

/// Waits until `f` holds, up to `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A raw JWT key for forging tokens in tests.
pub fn test_secret() -> Secret {
    Secret(TEST_JWT_KEY.as_bytes().to_vec())
}

/// Stands in for Stripe: every payment waits for its webhook (status
/// `requires_action`, id `pi_test_<key>`); refunds, payout accounts and
/// transfers succeed.
pub struct AwaitingWebhook;

impl PaymentGateway for AwaitingWebhook {
    fn name(&self) -> &'static str {
        "stripe"
    }
    fn test_money(&self) -> bool {
        false
    }
    fn create_payment(&self, req: &PaymentRequest) -> anyhow::Result<Payment> {
        Ok(Payment {
            id: format!("pi_test_{}", req.idempotency_key.replace(':', "_")),
            status: PaymentStatus::RequiresAction,
            client_secret: Some("pi_secret_for_the_browser".into()),
        })
    }
    fn refund(&self, _: &str, _: Option<i64>, key: &str) -> anyhow::Result<String> {
        Ok(format!("re_{key}"))
    }
    fn create_payout_account(&self, key: &str) -> anyhow::Result<String> {
        Ok(format!("acct_{key}"))
    }
    fn onboarding_link(&self, account: &str) -> anyhow::Result<String> {
        Ok(format!("https://connect.example/{account}"))
    }
    fn payout_account_ready(&self, _: &str) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn transfer(
        &self,
        _: i64,
        _: &str,
        destination: &str,
        _: &str,
        key: &str,
    ) -> anyhow::Result<String> {
        Ok(format!("tr_{destination}_{key}"))
    }
}

/// A gateway whose charges are refused, as a card is declined: the
/// sandbox's name, so what it refused can succeed later through it.
pub struct Declining;

impl PaymentGateway for Declining {
    fn name(&self) -> &'static str {
        "sandbox"
    }
    fn test_money(&self) -> bool {
        true
    }
    fn create_payment(&self, req: &PaymentRequest) -> anyhow::Result<Payment> {
        let p = Sandbox.create_payment(req)?;
        Ok(Payment {
            status: PaymentStatus::Failed,
            ..p
        })
    }
    fn refund(&self, p: &str, a: Option<i64>, k: &str) -> anyhow::Result<String> {
        Sandbox.refund(p, a, k)
    }
    fn create_payout_account(&self, k: &str) -> anyhow::Result<String> {
        Sandbox.create_payout_account(k)
    }
    fn onboarding_link(&self, a: &str) -> anyhow::Result<String> {
        Sandbox.onboarding_link(a)
    }
    fn payout_account_ready(&self, a: &str) -> anyhow::Result<bool> {
        Sandbox.payout_account_ready(a)
    }
    fn transfer(&self, a: i64, c: &str, d: &str, g: &str, k: &str) -> anyhow::Result<String> {
        Sandbox.transfer(a, c, d, g, k)
    }
}

/// Serves the app on `listener` in a thread of its own; stops on drop.
pub struct Server {
    handle: actix_web::dev::ServerHandle,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

impl Server {
    pub fn start(state: AppState, listener: std::net::TcpListener) -> Server {
        Server::start_with(listener, move || guildhall::app::build(state.clone()))
    }

    /// Serves whatever app `factory` builds (a fake of an outside service).
    pub fn start_with<F, I, S, B>(listener: std::net::TcpListener, factory: F) -> Server
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: actix_service::IntoServiceFactory<S, actix_http::Request>,
        S: actix_service::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
            + 'static,
        S::Error: Into<actix_web::Error> + 'static,
        S::InitError: std::fmt::Debug,
        S::Response: Into<actix_http::Response<B>> + 'static,
        <S::Service as actix_service::Service<actix_http::Request>>::Future: 'static,
        S::Service: 'static,
        B: actix_web::body::MessageBody + 'static,
    {
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(factory)
                    .workers(2)
                    .listen(listener)
                    .expect("listen")
                    .run();
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            })
        });
        Server {
            handle: rx.recv().expect("server started"),
            base,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopping needs a runtime; the server's thread ends with it.
        let handle = self.handle.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(handle.stop(false));
        })
        .join()
        .ok();
    }
}
