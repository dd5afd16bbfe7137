//! A local fake of the parts of GitHub's REST API the App uses, served
//! over real HTTP on a loopback port: installation tokens bought with an
//! RS256 app JWT (checked against the test key's public half), issues,
//! comments, labels, issue state and new issues; and the OAuth web flow
//! (authorize, code exchange, `/user`, `/user/emails`, a repository with the
//! user's permissions). Every other call needs a token it issued. It records what it was asked, for the tests to assert on.

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

/// A person who signs in on the fake's authorize page.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: i64,
    pub login: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// owner/name of repositories they administer.
    pub admin_of: Vec<String>,
}

/// What the fake holds and was asked.
#[derive(Debug, Default)]
pub struct State {
    pub issues: HashMap<(String, i64), Issue>,
    pub comments: Vec<Comment>,
    pub tokens: Vec<String>,
    pub calls: Vec<String>,
    next_id: i64,
    /// Who approves the next authorization.
    pub signing_in: Option<Person>,
    /// Codes not yet exchanged, and user tokens, with their person.
    codes: HashMap<String, Person>,
    user_tokens: HashMap<String, Person>,
    /// Repositories by owner/name: (id, node id).
    pub repos: HashMap<String, (i64, String)>,
    /// Repositories that are private, or whose licence is not MIT (None:
    /// no licence found), by owner/name.
    pub repo_meta: HashMap<String, (bool, Option<String>)>,
}

/// The OAuth client the fake knows.
pub const CLIENT_ID: &str = "Iv1.fakeclient";
/// Its secret.
pub const CLIENT_SECRET: &str = "fake-client-secret";

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

/// GitHub's authorize page as if the person in `signing_in` approved:
/// back to `redirect_uri` with a one-time code and the `state`.
async fn authorize(
    q: web::Query<HashMap<String, String>>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return not_found();
    }
    let Some(person) = s.signing_in.clone() else {
        return HttpResponse::Forbidden().finish();
    };
    s.next_id += 1;
    let code = format!("code{}", s.next_id);
    s.codes.insert(code.clone(), person);
    s.calls.push("GET authorize".into());
    let back = format!(
        "{}?{}",
        q["redirect_uri"],
        serde_urlencoded::to_string([("code", code.as_str()), ("state", q["state"].as_str())])
            .unwrap()
    );
    HttpResponse::Found()
        .insert_header(("location", back))
        .finish()
}

/// The code exchange: the client's credentials and a code used once.
async fn oauth_token(
    form: web::Form<HashMap<String, String>>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.calls.push("POST access_token".into());
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return HttpResponse::Ok().json(json!({"error": "incorrect_client_credentials"}));
    }
    let Some(person) = form.get("code").and_then(|c| s.codes.remove(c)) else {
        return HttpResponse::Ok().json(json!({"error": "bad_verification_code"}));
    };
    s.next_id += 1;
    let token = format!("gho_fake{}", s.next_id);
    s.user_tokens.insert(token.clone(), person);
    HttpResponse::Ok().json(
        json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
    )
}

fn person(req: &HttpRequest, s: &State) -> Option<Person> {
    let token = req
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    s.user_tokens.get(token).cloned()
}

async fn get_user(req: HttpRequest, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let s = state.lock().unwrap();
    match person(&req, &s) {
        Some(p) => HttpResponse::Ok()
            .json(json!({"id": p.id, "login": p.login, "name": p.name, "type": "User"})),
        None => unauthorized(),
    }
}

async fn get_emails(req: HttpRequest, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    let s = state.lock().unwrap();
    match person(&req, &s) {
        Some(p) => HttpResponse::Ok().json(
            p.email
                .iter()
                .map(|e| json!({"email": e, "primary": true, "verified": true}))
                .chain([
                    json!({"email": "unverified@example.com", "primary": false, "verified": false}),
                ])
                .collect::<Vec<_>>(),
        ),
        None => unauthorized(),
    }
}

async fn get_repo(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let s = state.lock().unwrap();
    let Some(p) = person(&req, &s) else {
        return unauthorized();
    };
    let (owner, name) = path.into_inner();
    let full = format!("{owner}/{name}");
    let Some((key, (id, node))) = s.repos.iter().find(|(k, _)| k.eq_ignore_ascii_case(&full))
    else {
        return not_found();
    };
    let admin = p.admin_of.iter().any(|r| r.eq_ignore_ascii_case(key));
    let (private, license) = s
        .repo_meta
        .get(key)
        .cloned()
        .unwrap_or((false, Some("MIT".into())));
    let license = license.map(|l| json!({"key": l.to_lowercase(), "spdx_id": l, "name": l}));
    HttpResponse::Ok().json(json!({"id": id, "node_id": node, "full_name": key,
        "private": private, "license": license,
        "permissions": {"admin": admin, "maintain": admin, "push": admin, "pull": true}}))
}

async fn create_issue(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let Some(mut s) = authorized(&req, &state) else {
        return unauthorized();
    };
    let (owner, name) = path.into_inner();
    let repo = format!("{owner}/{name}");
    let number = s
        .issues
        .keys()
        .filter(|(r, _)| *r == repo)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        + 1;
    s.next_id += 1;
    let issue = Issue {
        node_id: format!("I_fake{}", s.next_id),
        title: body["title"].as_str().unwrap_or("").to_owned(),
        body: body["body"].as_str().unwrap_or("").to_owned(),
        open: true,
        author_id: 1,
        author: "guildhall[bot]".into(),
        labels: vec![],
    };
    let json = issue_json(&repo, number, &issue);
    s.issues.insert((repo, number), issue);
    s.calls.push(format!("POST issue {number}"));
    HttpResponse::Created().json(json)
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
                .route("/repos/{owner}/{repo}/issues", web::post().to(create_issue))
                .route("/repos/{owner}/{repo}", web::get().to(get_repo))
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(oauth_token))
                .route("/user", web::get().to(get_user))
                .route("/user/emails", web::get().to(get_emails))
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

    /// The person who approves the next authorization.
    pub fn signing_in(&self, person: Person) {
        self.state.lock().unwrap().signing_in = Some(person);
    }

    /// Adds a repository.
    pub fn add_repo(&self, full_name: &str, id: i64) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(full_name.to_owned(), (id, format!("R_fake{id}")));
    }

    /// Makes a repository private, or licensed otherwise than MIT.
    pub fn set_repo_meta(&self, full_name: &str, private: bool, license: Option<&str>) {
        self.state
            .lock()
            .unwrap()
            .repo_meta
            .insert(full_name.to_owned(), (private, license.map(str::to_owned)));
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
