//! Outbound mail and verified addresses: against a real SMTP server
//! (aiosmtpd from PyPI on a loopback port, `tests/fake_smtp`), and through
//! the embedded default's outbox when no SMTP server is configured. A
//! registration mails a link containing `verify`; opening it shows a button
//! (mail scanners that follow links verify nothing); pressing it verifies
//! the address; a tampered, expired or foreign link does not.

use crate::util::{TestApp, PASSWORD};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// A directory holding aiosmtpd, installed once per run when missing.
fn pydeps() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let dir = target.join("pydeps-smtp");
        let importable = || {
            Command::new("python3")
                .args(["-c", "import aiosmtpd"])
                .env("PYTHONPATH", &dir)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !importable() {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("--target")
                .arg(&dir)
                .arg(AIOSMTPD)
                .status()
                .expect("python3 runs pip");
            assert!(status.success(), "pip install {AIOSMTPD} failed");
            assert!(importable(), "aiosmtpd still not importable");
        }
        dir
    })
}

/// One SMTP server for one test; stopped when dropped.
pub struct FakeSmtp {
    child: Child,
    /// Where received messages are written.
    pub dir: tempfile::TempDir,
    /// `smtp://127.0.0.1:port`.
    pub url: String,
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeSmtp {
    pub fn start() -> FakeSmtp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new("python3")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake_smtp/fake_smtp.py"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .env("PYTHONPATH", pydeps())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fake SMTP server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the fake SMTP server never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FakeSmtp {
            child,
            dir,
            url: format!("smtp://127.0.0.1:{port}"),
        }
    }

    /// The messages received so far: (envelope recipients, raw message).
    pub fn received(&self) -> Vec<(Vec<String>, String)> {
        messages(self.dir.path(), "json")
            .into_iter()
            .map(|json_path| {
                let envelope: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
                let raw = std::fs::read_to_string(json_path.with_extension("eml")).unwrap();
                let to = envelope["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                (to, raw)
            })
            .collect()
    }
}

/// An app that mails through `smtp`, from support@guildhall.test, with
/// links to https://guildhall.test.
pub fn smtp_app(smtp: &FakeSmtp) -> TestApp {
    TestApp::builder()
        .env("GUILDHALL_SMTP_URL", &smtp.url)
        .env("GUILDHALL_MAIL_FROM", "Guildhall <support@guildhall.test>")
        .env("GUILDHALL_PUBLIC_URL", "https://guildhall.test")
        .build()
}

/// Files with extension `ext` in `dir`, sorted.
fn messages(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The verification link in a raw message (quoted-printable soft breaks
/// undone; the text part carries it whole).
fn link_in(raw: &str) -> String {
    let text = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let at = text.find("/verify?").expect("a verify link in the mail");
    let start = text[..at].rfind("http").expect("the link's start");
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

/// Registers through the API; returns the user id.
async fn register(app: &TestApp, email: &str) -> i64 {
    app.post(
        "/api/v1/auth/register",
        json!({"email": email, "password": PASSWORD, "display_name": "Mia Mailer"}),
        None,
    )
    .await
    .expect(201)
    .body["id"]
        .as_i64()
        .unwrap()
}

async fn verified(app: &TestApp, email: &str) -> bool {
    let login = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await
        .expect(200);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    app.get("/api/v1/me", Some(&token)).await.expect(200).body["email_verified"]
        .as_bool()
        .unwrap()
}

/// Opens `link` as a browser would and presses the button; returns the
/// final page's status.
async fn follow(app: &TestApp, link: &str) -> u16 {
    use actix_web::test::TestRequest;
    let path = &link[link.find("/verify").unwrap()..];
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let page = app.send(&svc, TestRequest::get().uri(path)).await;
    if page.status != 200 {
        return page.status.as_u16();
    }
    let cookies: Vec<String> = page
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let field = |name: &str| -> String {
        let at = page
            .text
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("field {name} in {}", page.text))
            + name.len()
            + 15;
        page.text[at..].split('"').next().unwrap().to_owned()
    };
    let mut req = TestRequest::post().uri("/verify").set_form(
        [
            ("csrf", field("csrf")),
            ("u", field("u")),
            ("e", field("e")),
            ("t", field("t")),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>(),
    );
    for c in cookies {
        let (k, v) = c.split_once('=').unwrap();
        req = req.cookie(actix_web::cookie::Cookie::new(k.to_owned(), v.to_owned()));
    }
    app.send(&svc, req).await.status.as_u16()
}

#[actix_web::test]
async fn registration_mails_a_verify_link_through_smtp() {
    let smtp = actix_web::rt::task::spawn_blocking(FakeSmtp::start)
        .await
        .unwrap();
    let app = smtp_app(&smtp);
    register(&app, "mia@example.com").await;
    assert!(!verified(&app, "mia@example.com").await);
    app.run_jobs();
    let got = smtp.received();
    assert_eq!(got.len(), 1, "one mail: {got:?}");
    let (to, raw) = &got[0];
    assert_eq!(to, &vec!["mia@example.com".to_owned()]);
    assert!(
        raw.contains("From: Guildhall <support@guildhall.test>"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Verify your email address for Guildhall"));
    assert!(raw.contains("Message-ID: <"));
    assert!(raw.contains("text/plain") && raw.contains("text/html"));
    let link = link_in(raw);
    assert!(
        link.starts_with("https://guildhall.test/verify?u="),
        "{link}"
    );

    // A tampered tag or expiry verifies nothing.
    // (Another last character: the same one would be the real link.)
    let other = if link.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{other}", &link[..link.len() - 1]);
    assert_eq!(follow(&app, &tampered).await, 400);
    let later = link.replace("&e=", "&e=9");
    assert_eq!(follow(&app, &later).await, 400);
    assert!(!verified(&app, "mia@example.com").await);

    // The genuine link does, once; pressing it again changes nothing.
    assert_eq!(follow(&app, &link).await, 200);
    assert!(verified(&app, "mia@example.com").await);
    assert_eq!(follow(&app, &link).await, 200);

    // Verified: asking again sends nothing more.
    app.run_jobs();
    assert_eq!(smtp.received().len(), 1);
}

#[actix_web::test]
async fn without_smtp_the_mail_goes_to_the_outbox() {
    let app = TestApp::new();
    let outbox = app.state.config.data_dir.join("outbox");
    let other = register(&app, "other@example.com").await;
    register(&app, "otto@example.com").await;
    app.run_jobs();
    let files = messages(&outbox, "eml");
    assert_eq!(files.len(), 2, "{files:?}");
    let raws: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let otto = raws
        .iter()
        .find(|r| {
            r.contains("To: \"Mia Mailer\" <otto@example.com>") || r.contains("<otto@example.com>")
        })
        .expect("otto's mail");
    assert!(crate::util::captured_logs().contains("mail written to the outbox"));
    // Another user's link does not verify otto, and otto's verifies otto.
    let otto_link = link_in(otto);
    let forged = otto_link.replacen(
        &otto_link[otto_link.find("u=").unwrap()..otto_link.find("&e=").unwrap()],
        &format!("u={other}"),
        1,
    );
    assert_eq!(follow(&app, &forged).await, 400);
    assert!(!verified(&app, "other@example.com").await);
    assert_eq!(follow(&app, &otto_link).await, 200);
    assert!(verified(&app, "otto@example.com").await);
    assert!(!verified(&app, "other@example.com").await);
}
