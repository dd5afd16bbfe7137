//! A local fake of the parts of GitHub's REST API the App uses, served
//! over real HTTP on a loopback port: installation tokens bought with an
//! RS256 app JWT (checked against the test key's public half), issues,
//! comments, labels and issue state. Every other call needs a token it
//! issued. It records what it was asked, for the tests to assert on.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The app id the fake accepts.
pub const APP_ID: i64 = 4242;
/// The installation it knows.
pub const INSTALLATION: i64 = 957387;

/// An issue the fake holds.
#[derive(Debug, Clone)]
pub struct Issue {
    pub node_id: String,
    pub title: String,
    pub body: String,
    pub open: bool,
    pub author_id: i64,
    pub author: String,
    pub labels: Vec<String>,
}

/// A comment the fake holds.
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: i64,
    pub repo: String,
    pub number: i64,
    pub body: String,
    pub author: String,
    pub bot: bool,
    pub edits: u32,
}

/// What the fake holds and was asked.
#[derive(Debug, Default)]
pub struct State {
    pub issues: HashMap<(String, i64), Issue>,
    pub comments: Vec<Comment>,
    pub tokens: Vec<String>,
    pub calls: Vec<String>,
    next_id: i64,
}

/// The fake, serving until dropped.
pub struct FakeGithub {
    pub state: Arc<Mutex<State>>,
    pub base: String,
    _server: crate::util::Server,
}

fn token_ok(req: &HttpRequest, state: &State) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| state.tokens.iter().any(|k| k == t))
}

/// The state, if the request carries a token the fake issued.
fn authorized<'a>(
    req: &HttpRequest,
    state: &'a Mutex<State>,
) -> Option<std::sync::MutexGuard<'a, State>> {
    let s = state.lock().unwrap();
    token_ok(req, &s).then_some(s)
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"message": "Bad credentials"}))
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"message": "Not Found"}))
}

async fn access_token(
    req: HttpRequest,
    path: web::Path<i64>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let jwt = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github-app-test-key.pub.pem"
    ))
    .unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.set_issuer(&[APP_ID.to_string()]);
    if jsonwebtoken::decode::<Value>(jwt, &key, &validation).is_err() {
        return HttpResponse::Unauthorized()
            .json(json!({"message": "A JSON web token could not be decoded"}));
    }
    if path.into_inner() != INSTALLATION {
        return not_found();
    }
    let mut s = state.lock().unwrap();
    let token = format!("ghs_fake{}", s.tokens.len() + 1);
    s.tokens.push(token.clone());
    s.calls.push("POST access_tokens".into());
    HttpResponse::Created().json(json!({"token": token, "expires_at": "2099-01-01T00:00:00Z"}))
}

fn issue_json(repo: &str, number: i64, i: &Issue) -> Value {
    json!({
        "number": number, "node_id": i.node_id, "title": i.title, "body": i.body,
        "state": if i.open { "open" } else { "closed" },
        "html_url": format!("https://github.com/{repo}/issues/{number}"),
        "user": {"id": i.author_id, "login": i.author, "type": "User"},
        "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
    })
}

async fn get_issue(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name, number) = path.into_inner();
    let repo = format!("{owner}/{name}");
    s.calls.push(format!("GET issue {number}"));
    match s.issues.get(&(repo.clone(), number)) {
        Some(i) => HttpResponse::Ok().json(issue_json(&repo, number, i)),
        None => not_found(),
    }
}

async fn patch_issue(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name, number) = path.into_inner();
    let repo = format!("{owner}/{name}");
    let state_field = body["state"].as_str().unwrap_or("").to_owned();
    s.calls.push(format!("PATCH issue {number} {state_field}"));
    match s.issues.get_mut(&(repo.clone(), number)) {
        Some(i) => {
            i.open = state_field != "closed";
            let json = issue_json(&repo, number, i);
            HttpResponse::Ok().json(json)
        }
        None => not_found(),
    }
}

async fn list_comments(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name, number) = path.into_inner();
    let repo = format!("{owner}/{name}");
    let list: Vec<Value> = s
        .comments
        .iter()
        .filter(|c| c.repo == repo && c.number == number)
        .map(|c| {
            json!({"id": c.id, "body": c.body,
                   "user": {"id": 1, "login": c.author, "type": if c.bot { "Bot" } else { "User" }}})
        })
        .collect();
    HttpResponse::Ok().json(list)
}

async fn post_comment(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name, number) = path.into_inner();
    s.next_id += 1;
    let id = 9000 + s.next_id;
    s.comments.push(Comment {
        id,
        repo: format!("{owner}/{name}"),
        number,
        body: body["body"].as_str().unwrap_or("").to_owned(),
        author: "guildhall[bot]".into(),
        bot: true,
        edits: 0,
    });
    s.calls.push(format!("POST comment {number}"));
    HttpResponse::Created().json(json!({"id": id}))
}

async fn patch_comment(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (_, _, id) = path.into_inner();
    s.calls.push(format!("PATCH comment {id}"));
    match s.comments.iter_mut().find(|c| c.id == id) {
        Some(c) => {
            c.body = body["body"].as_str().unwrap_or("").to_owned();
            c.edits += 1;
            HttpResponse::Ok().json(json!({"id": id}))
        }
        None => not_found(),
    }
}

async fn add_labels(
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name, number) = path.into_inner();
    let labels: Vec<String> = body["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    s.calls.push(format!("POST labels {number}"));
    match s.issues.get_mut(&(format!("{owner}/{name}"), number)) {
        Some(i) => {
            for l in labels {
                if !i.labels.contains(&l) {
                    i.labels.push(l);
                }
            }
            HttpResponse::Ok().json(json!([]))
        }
        None => not_found(),
    }
}

impl FakeGithub {
    pub fn start() -> FakeGithub {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        let server = crate::util::Server::start_with(listener, move || {
            actix_web::App::new()
                .app_data(web::Data::new(shared.clone()))
                .route(
                    "/app/installations/{id}/access_tokens",
                    web::post().to(access_token),
                )
                .route(
                    "/repos/{owner}/{repo}/issues/comments/{id}",
                    web::patch().to(patch_comment),
                )
                .route(
                    "/repos/{owner}/{repo}/issues/{n}/comments",
                    web::get().to(list_comments),
                )
                .route(
                    "/repos/{owner}/{repo}/issues/{n}/comments",
                    web::post().to(post_comment),
                )
                .route(
                    "/repos/{owner}/{repo}/issues/{n}/labels",
                    web::post().to(add_labels),
                )
                .route("/repos/{owner}/{repo}/issues/{n}", web::get().to(get_issue))
                .route(
                    "/repos/{owner}/{repo}/issues/{n}",
                    web::patch().to(patch_issue),
                )
        });
        FakeGithub {
            state,
            base,
            _server: server,
        }
    }

    /// Adds an issue (and comments by `(login, body)`).
    pub fn add_issue(&self, repo: &str, number: i64, issue: Issue, comments: &[(&str, &str)]) {
        let mut s = self.state.lock().unwrap();
        s.issues.insert((repo.to_owned(), number), issue);
        for (login, body) in comments {
            s.next_id += 1;
            let id = 100 + s.next_id;
            s.comments.push(Comment {
                id,
                repo: repo.to_owned(),
                number,
                body: (*body).to_owned(),
                author: (*login).to_owned(),
                bot: false,
                edits: 0,
            });
        }
    }
}
