//! GitHub's REST API as the App: an RS256 app JWT buys an installation
//! token (cached until shortly before it expires), which comments, labels,
//! closes and reopens issues. Blocking (ureq): call it from jobs.

use anyhow::{anyhow, Context as _};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The GitHub App.
pub struct GithubApp {
    api_base: String,
    app_id: i64,
    key: jsonwebtoken::EncodingKey,
    agent: ureq::Agent,
    tokens: Mutex<HashMap<i64, (String, Instant)>>,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("api_base", &self.api_base)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// An issue as the API returns it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Issue {
    /// The number in its repository.
    pub number: i64,
    /// Node id (stable across renames and transfers).
    pub node_id: String,
    /// Title.
    pub title: String,
    /// Body (Markdown), if any.
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Its page.
    pub html_url: String,
    /// The author.
    pub user: Account,
}

/// A comment on an issue.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Comment {
    /// Id.
    pub id: i64,
    /// Body (Markdown).
    pub body: Option<String>,
    /// The author.
    pub user: Account,
}

/// A GitHub account.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Account {
    /// Id (stable).
    pub id: i64,
    /// Login (may change).
    pub login: String,
    /// `User` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(serde::Serialize)]
struct AppClaims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl GithubApp {
    /// The app with id `app_id` and private key `pem`, talking to `api_base`.
    pub fn new(api_base: &str, app_id: i64, pem: &[u8]) -> anyhow::Result<GithubApp> {
        Ok(GithubApp {
            api_base: api_base.trim_end_matches('/').to_owned(),
            app_id,
            key: jsonwebtoken::EncodingKey::from_rsa_pem(pem)
                .context("GUILDHALL_GITHUB_PRIVATE_KEY_FILE: not an RSA private key")?,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(20))
                .user_agent("guildhall")
                .build(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The app JWT: RS256, issued a minute in the past (clock drift), valid
    /// for nine minutes (GitHub allows ten).
    fn app_jwt(&self) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AppClaims {
            iat: now - 60,
            exp: now + 540,
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .context("signing the app JWT")
    }

    /// A token for `installation`, from the cache while it has five
    /// minutes left.
    pub fn installation_token(&self, installation: i64) -> anyhow::Result<String> {
        if let Some((token, until)) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&installation)
        {
            if *until > Instant::now() {
                return Ok(token.clone());
            }
        }
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api_base
        );
        let response: serde_json::Value = self
            .agent
            .post(&url)
            .set("authorization", &format!("Bearer {}", self.app_jwt()?))
            .set("accept", "application/vnd.github+json")
            .call()
            .map_err(|e| api_error("installation token", e))?
            .into_json()?;
        let token = response["token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("installation token: no token in the answer"))?
            .to_owned();
        // GitHub's tokens last an hour; keep one for 55 minutes.
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                installation,
                (token.clone(), Instant::now() + Duration::from_secs(55 * 60)),
            );
        Ok(token)
    }

    fn call(
        &self,
        installation: i64,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let token = self.installation_token(installation)?;
        let request = self
            .agent
            .request(method, &format!("{}{path}", self.api_base))
            .set("authorization", &format!("Bearer {token}"))
            .set("accept", "application/vnd.github+json");
        let response = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        }
        .map_err(|e| api_error(&format!("{method} {path}"), e))?;
        if response.status() == 204 {
            return Ok(serde_json::Value::Null);
        }
        Ok(response.into_json()?)
    }

    /// An issue.
    pub fn issue(&self, installation: i64, repo: &str, number: i64) -> anyhow::Result<Issue> {
        let v = self.call(
            installation,
            "GET",
            &format!("/repos/{repo}/issues/{number}"),
            None,
        )?;
        Ok(serde_json::from_value(v)?)
    }

    /// An issue's comments, oldest first (up to 300).
    pub fn comments(
        &self,
        installation: i64,
        repo: &str,
        number: i64,
    ) -> anyhow::Result<Vec<Comment>> {
        let mut out = Vec::new();
        for page in 1..=3 {
            let v = self.call(
                installation,
                "GET",
                &format!("/repos/{repo}/issues/{number}/comments?per_page=100&page={page}"),
                None,
            )?;
            let batch: Vec<Comment> = serde_json::from_value(v)?;
            let n = batch.len();
            out.extend(batch);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// Posts a comment; returns its id.
    pub fn comment(
        &self,
        installation: i64,
        repo: &str,
        number: i64,
        body: &str,
    ) -> anyhow::Result<i64> {
        let v = self.call(
            installation,
            "POST",
            &format!("/repos/{repo}/issues/{number}/comments"),
            Some(serde_json::json!({ "body": body })),
        )?;
        v["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("comment: no id in the answer"))
    }

    /// Edits a comment.
    pub fn edit_comment(
        &self,
        installation: i64,
        repo: &str,
        comment: i64,
        body: &str,
    ) -> anyhow::Result<()> {
        self.call(
            installation,
            "PATCH",
            &format!("/repos/{repo}/issues/comments/{comment}"),
            Some(serde_json::json!({ "body": body })),
        )
        .map(|_| ())
    }

    /// Adds a label to an issue.
    pub fn add_label(
        &self,
        installation: i64,
        repo: &str,
        number: i64,
        label: &str,
    ) -> anyhow::Result<()> {
        self.call(
            installation,
            "POST",
            &format!("/repos/{repo}/issues/{number}/labels"),
            Some(serde_json::json!({ "labels": [label] })),
        )
        .map(|_| ())
    }

    /// Opens or closes an issue.
    pub fn set_state(
        &self,
        installation: i64,
        repo: &str,
        number: i64,
        open: bool,
    ) -> anyhow::Result<()> {
        let body = if open {
            serde_json::json!({ "state": "open" })
        } else {
            serde_json::json!({ "state": "closed", "state_reason": "completed" })
        };
        self.call(
            installation,
            "PATCH",
            &format!("/repos/{repo}/issues/{number}"),
            Some(body),
        )
        .map(|_| ())
    }
}

impl GithubApp {
    /// Opens an issue in `repo`.
    pub fn create_issue(
        &self,
        installation: i64,
        repo: &str,
        title: &str,
        body: &str,
    ) -> anyhow::Result<Issue> {
        let v = self.call(
            installation,
            "POST",
            &format!("/repos/{repo}/issues"),
            Some(serde_json::json!({"title": title, "body": body})),
        )?;
        Ok(serde_json::from_value(v)?)
    }
}

/// An API failure, with GitHub's status and message but never a token.
fn api_error(what: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, response) => {
            let message = response
                .into_json::<serde_json::Value>()
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            anyhow!("GitHub {what}: {code} {message}")
        }
        ureq::Error::Transport(t) => anyhow!("GitHub {what}: {}", t.kind()),
    }
}

/// Sign in with GitHub: the OAuth web flow of the app's client id, and what
/// a user's token may ask (who they are, their verified address, their
/// rights on a repository). Blocking (ureq).
pub struct OAuthApp {
    web_base: String,
    api_base: String,
    client_id: String,
    client_secret: crate::config::Secret,
    agent: ureq::Agent,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("web_base", &self.web_base)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The signed-in GitHub user.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OAuthUser {
    /// Id (stable).
    pub id: i64,
    /// Login.
    pub login: String,
    /// Display name, if set.
    #[serde(default)]
    pub name: Option<String>,
}

/// A repository as a user's token sees it.
#[derive(Debug, Clone)]
pub struct UserRepository {
    /// Id.
    pub id: i64,
    /// Node id.
    pub node_id: String,
    /// owner/name as GitHub spells it.
    pub full_name: String,
    /// Whether the user administers it.
    pub admin: bool,
    /// Whether the user maintains it (GitHub's `maintain` role).
    pub maintain: bool,
    /// Whether it is private.
    pub private: bool,
    /// The SPDX id of the licence GitHub detected, if any.
    pub license: Option<String>,
}

/// Where GitHub's web pages are for API `api_base`: github.com for the
/// public API, the host of a GitHub Enterprise server's `/api/v3`, and the
/// base itself otherwise (a local fake).
pub fn web_base(api_base: &str) -> String {
    let base = api_base.trim_end_matches('/');
    if base == "https://api.github.com" {
        "https://github.com".into()
    } else {
        base.strip_suffix("/api/v3").unwrap_or(base).to_owned()
    }
}

impl OAuthApp {
    /// The OAuth client `client_id` of GitHub at `api_base`.
    pub fn new(api_base: &str, client_id: &str, client_secret: crate::config::Secret) -> OAuthApp {
        OAuthApp {
            web_base: web_base(api_base),
            api_base: api_base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(15))
                .user_agent("guildhall")
                .build(),
        }
    }

    /// Where the browser goes to approve: GitHub sends it back to
    /// `redirect_uri` with a code and `state`.
    pub fn authorize_url(&self, state: &str, redirect_uri: &str) -> String {
        let query = serde_urlencoded::to_string([
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("scope", "read:user user:email"),
            ("allow_signup", "true"),
        ])
        .unwrap_or_default();
        format!("{}/login/oauth/authorize?{query}", self.web_base)
    }

    /// Trades the callback's code for the user's token.
    pub fn exchange(&self, code: &str, redirect_uri: &str) -> anyhow::Result<String> {
        let response: serde_json::Value = self
            .agent
            .post(&format!("{}/login/oauth/access_token", self.web_base))
            .set("accept", "application/json")
            .send_form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", std::str::from_utf8(&self.client_secret.0)?),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .map_err(|e| api_error("OAuth code exchange", e))?
            .into_json()?;
        match response["access_token"].as_str() {
            Some(t) if !t.is_empty() => Ok(t.to_owned()),
            // GitHub answers 200 with an error for a bad or used code.
            _ => Err(anyhow!(
                "GitHub OAuth code exchange: {}",
                response["error"]
                    .as_str()
                    .unwrap_or("no token in the answer")
            )),
        }
    }

    fn get(&self, token: &str, path: &str) -> Result<serde_json::Value, Box<ureq::Error>> {
        self.agent
            .get(&format!("{}{path}", self.api_base))
            .set("authorization", &format!("Bearer {token}"))
            .set("accept", "application/vnd.github+json")
            .call()
            .map_err(Box::new)?
            .into_json()
            .map_err(|e| Box::new(ureq::Error::from(e)))
    }

    /// Who the token belongs to.
    pub fn user(&self, token: &str) -> anyhow::Result<OAuthUser> {
        let v = self
            .get(token, "/user")
            .map_err(|e| api_error("GET /user", *e))?;
        Ok(serde_json::from_value(v)?)
    }

    /// The user's primary address, when GitHub has verified it.
    pub fn verified_email(&self, token: &str) -> anyhow::Result<Option<String>> {
        let v = self
            .get(token, "/user/emails")
            .map_err(|e| api_error("GET /user/emails", *e))?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .find(|e| e["primary"] == true && e["verified"] == true)
            .and_then(|e| e["email"].as_str())
            .map(str::to_owned))
    }

    /// Repository `full_name` as the user sees it; `None` when they cannot.
    pub fn repository(
        &self,
        token: &str,
        full_name: &str,
    ) -> anyhow::Result<Option<UserRepository>> {
        let v = match self.get(token, &format!("/repos/{full_name}")) {
            Ok(v) => v,
            Err(e) if matches!(*e, ureq::Error::Status(404 | 403, _)) => return Ok(None),
            Err(e) => return Err(api_error("GET /repos", *e)),
        };
        let id = v["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("GET /repos: no id"))?;
        Ok(Some(UserRepository {
            id,
            node_id: v["node_id"].as_str().unwrap_or_default().to_owned(),
            full_name: v["full_name"].as_str().unwrap_or(full_name).to_owned(),
            admin: v["permissions"]["admin"] == true,
            maintain: v["permissions"]["maintain"] == true,
            private: v["private"] != false,
            license: v["license"]["spdx_id"]
                .as_str()
                .filter(|id| *id != "NOASSERTION")
                .map(str::to_owned),
        }))
    }
}
