//! A small W3C WebDriver client for the browser tests: Debian's
//! `chromedriver` driving Debian's `chromium` headless, over HTTP with the
//! blocking client the crate already uses (ureq), so the test build needs
//! no second async HTTP stack. What is missing on the machine is installed
//! by `tests/browser/install.sh` (apt for the browser, npm for axe-core into
//! the build directory), as `.ci/run` does up front.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The build directory (shared by a clone that sets CARGO_TARGET_DIR).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// Installs what the browser tests need once per run (a no-op when it is
/// there) and returns axe-core's source.
pub fn prerequisites() -> &'static str {
    static AXE: OnceLock<String> = OnceLock::new();
    AXE.get_or_init(|| {
        let npm_dir = target_dir().join("npm");
        let axe = npm_dir.join("node_modules/axe-core/axe.min.js");
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() || !axe.exists() {
            let status = Command::new("bash")
                .arg(repo().join("tests/browser/install.sh"))
                .arg(&npm_dir)
                .status()
                .expect("bash runs tests/browser/install.sh");
            assert!(
                status.success(),
                "tests/browser/install.sh failed: the browser tests need chromium, chromium-driver (apt) and axe-core (npm)"
            );
        }
        std::fs::read_to_string(&axe).expect("axe-core installed")
    })
}

/// A running chromedriver.
pub struct Driver {
    base: String,
    child: Child,
}

impl Driver {
    /// Starts chromedriver on a free port.
    pub fn start() -> Driver {
        prerequisites();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { base, child }
    }

    /// A new browser (its own profile and cookies), with or without
    /// JavaScript.
    pub fn browser(&self, javascript: bool) -> Browser {
        let mut prefs = json!({});
        if !javascript {
            prefs = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--force-prefers-reduced-motion"],
                "prefs": prefs
            }
        }}});
        let r = call(&self.base, "POST", "/session", Some(caps));
        let id = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            session: format!("{}/session/{id}", self.base),
            javascript,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{base}{path}");
    let req = ureq::request(method, &url).timeout(Duration::from_secs(60));
    let res = match body {
        Some(b) => req.send_json(b),
        None if method == "POST" => req.send_json(json!({})),
        None => req.call(),
    };
    let v: Value = match res {
        Ok(r) => r.into_json().expect("JSON from chromedriver"),
        Err(ureq::Error::Status(code, r)) => {
            let v: Value = r.into_json().unwrap_or(Value::Null);
            panic!("WebDriver {method} {path}: {code} {v}")
        }
        Err(e) => panic!("WebDriver {method} {path}: {e}"),
    };
    v["value"].clone()
}

/// One browser window (a WebDriver session).
pub struct Browser {
    session: String,
    /// Whether JavaScript runs.
    pub javascript: bool,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.session).call();
    }
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.session, method, path, body)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.cmd("GET", "/title", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn try_find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.session);
        let r = ureq::post(&url).send_json(json!({"using": "css selector", "value": css}));
        match r {
            Ok(r) => {
                let v: Value = r.into_json().ok()?;
                v["value"][ELEMENT].as_str().map(str::to_owned)
            }
            Err(_) => None,
        }
    }

    /// The element `css` selects, waiting up to 10 s for it to appear.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.try_find(css) {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {} — page:\n{}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `css` selects something now.
    pub fn has(&self, css: &str) -> bool {
        self.try_find(css).is_some()
    }

    /// Clicks the element `css` selects.
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    /// Types `text` into the field `css` selects, clearing it first.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/clear"), None);
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// The visible text of the element `css` selects ("" when there is
    /// none, or when the page changed under the question).
    pub fn text(&self, css: &str) -> String {
        let Some(id) = self.try_find(css) else {
            return String::new();
        };
        ureq::get(&format!("{}/element/{id}/text", self.session))
            .call()
            .ok()
            .and_then(|r| r.into_json::<Value>().ok())
            .and_then(|v| v["value"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits up to 10 s for the page's text to contain `needle`.
    pub fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text("body").contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {} — page:\n{}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`).
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with
    /// its result.
    pub fn exec_async(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The browser console's entries since the last call (level, message).
    pub fn console(&self) -> Vec<(String, String)> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets the window size.
    pub fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Runs a Chrome DevTools Protocol command.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// Writes a PNG of the whole page, laid out `width` px wide, to `path`.
    pub fn screenshot(&self, path: &Path, width: u32) {
        self.resize(width, 900);
        let metrics = self.cdp("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .ceil()
            .clamp(400.0, 8000.0);
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
        );
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().expect("a screenshot"),
        )
        .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("screenshot dir");
        std::fs::write(path, bytes).expect("screenshot written");
        self.resize(1280, 900);
    }

    /// Runs axe-core on the page; the serious and critical violations as
    /// `rule: targets` lines.
    pub fn axe(&self) -> Vec<String> {
        let source = prerequisites();
        self.exec(source, json!([]));
        let v = self.exec_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                      v.nodes.map(n => n.target.join(' ')).join(', '))
             )).catch(e => done(['axe failed: ' + e]));",
            json!([]),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}
