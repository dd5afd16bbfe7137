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
