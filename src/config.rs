//! Configuration: built-in defaults, overridden by an optional TOML file,
//! overridden by `GUILDHALL_*` environment variables. Every setting is listed
//! once in [`SETTINGS`], which is also the table in README.md.

use anyhow::{bail, Context as _};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One documented setting: environment variable, TOML key, default, meaning.
pub struct Setting {
    /// Environment variable name.
    pub env: &'static str,
    /// Key in the TOML file.
    pub key: &'static str,
    /// Default, as text.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Every setting Guildhall reads.
pub const SETTINGS: &[Setting] = &[
    Setting { env: "GUILDHALL_CONFIG", key: "-", default: "(none)", doc: "Path of an optional TOML file with any of the keys below." },
    Setting { env: "GUILDHALL_DATA_DIR", key: "data_dir", default: "./data", doc: "Directory for the SQLite database, the generated JWT secret and (later) the search index. Created on first start." },
    Setting { env: "GUILDHALL_DATABASE_URL", key: "database_url", default: "<data_dir>/guildhall.db", doc: "SQLite file path, or a postgres:// URL to use PostgreSQL." },
    Setting { env: "GUILDHALL_BIND", key: "bind", default: "127.0.0.1:8080", doc: "Address the HTTP API listens on." },
    Setting { env: "GUILDHALL_JWT_SECRET", key: "jwt_secret", default: "(generated)", doc: "HS256 key for access tokens, at least 32 bytes. Unset: generated once into <data_dir>/jwt_secret (mode 0600)." },
    Setting { env: "GUILDHALL_JWT_ISSUER", key: "jwt_issuer", default: "guildhall", doc: "`iss` claim of access tokens." },
    Setting { env: "GUILDHALL_JWT_AUDIENCE", key: "jwt_audience", default: "guildhall-api", doc: "`aud` claim of access tokens." },
    Setting { env: "GUILDHALL_ACCESS_TOKEN_TTL_SECS", key: "access_token_ttl_secs", default: "900", doc: "Lifetime of an access token (15 minutes)." },
    Setting { env: "GUILDHALL_REFRESH_TOKEN_TTL_DAYS", key: "refresh_token_ttl_days", default: "30", doc: "Lifetime of a refresh token family." },
    Setting { env: "GUILDHALL_DB_POOL_SIZE", key: "db_pool_size", default: "10", doc: "Maximum database connections." },
    Setting { env: "GUILDHALL_DB_POOL_TIMEOUT_MS", key: "db_pool_timeout_ms", default: "5000", doc: "Wait for a free connection before answering 503." },
    Setting { env: "GUILDHALL_JOB_WORKERS", key: "job_workers", default: "2", doc: "Background job worker threads (`serve` and `worker`). 0 in `serve` runs no jobs in-process." },
    Setting { env: "GUILDHALL_JOB_POLL_MS", key: "job_poll_ms", default: "1000", doc: "How often idle workers look for due jobs." },
    Setting { env: "GUILDHALL_BODY_LIMIT_BYTES", key: "body_limit_bytes", default: "262144", doc: "Largest accepted request body; larger gets 413." },
    Setting { env: "GUILDHALL_LOGIN_MAX_FAILURES_ACCOUNT", key: "login_max_failures_account", default: "5", doc: "Failed logins on one account from one client address per window before that address gets 429 for it. Failures on an account from anywhere beyond this slow its logins (1 s each), never refuse the right password." },
    Setting { env: "GUILDHALL_LOGIN_MAX_FAILURES_ADDRESS", key: "login_max_failures_address", default: "20", doc: "Failed logins per client address per window before 429." },
    Setting { env: "GUILDHALL_REGISTER_MAX_PER_ADDRESS", key: "register_max_per_address", default: "10", doc: "Registrations per client address per hour before 429." },
    Setting { env: "GUILDHALL_LOGIN_WINDOW_SECS", key: "login_window_secs", default: "900", doc: "Window of the failed-login limits." },
    Setting { env: "GUILDHALL_PLATFORM_FEE_BPS", key: "platform_fee_bps", default: "500", doc: "Platform fee on released escrow, basis points (0–2000), floored." },
    Setting { env: "GUILDHALL_PAYOUT_MINIMUM", key: "payout_minimum", default: "1000", doc: "Smallest balance (minor units) the payout job pays out." },
    Setting { env: "GUILDHALL_PAYMENT_GATEWAY", key: "payment_gateway", default: "sandbox", doc: "`sandbox` (settles at once, test money) or `stripe` (needs GUILDHALL_STRIPE_SECRET_KEY)." },
    Setting { env: "GUILDHALL_STRIPE_SECRET_KEY", key: "stripe_secret_key", default: "(none)", doc: "Stripe secret or restricted key (`sk_…`/`rk_…`). `sk_test_…` marks amounts as test money. Never logged." },
    Setting { env: "GUILDHALL_STRIPE_API_BASE", key: "stripe_api_base", default: "https://api.stripe.com/", doc: "Stripe API base URL; point it at a local fake for tests." },
    Setting { env: "GUILDHALL_STRIPE_TIMEOUT_MS", key: "stripe_timeout_ms", default: "30000", doc: "Timeout of one Stripe API request." },
    Setting { env: "GUILDHALL_PUBLIC_URL", key: "public_url", default: "http://127.0.0.1:8080", doc: "Public base URL of the front end; Stripe onboarding returns payees to `<public_url>/payouts/return` (and `/payouts/refresh` when a link expired)." },
    Setting { env: "GUILDHALL_STRIPE_PUBLISHABLE_KEY", key: "stripe_publishable_key", default: "(none)", doc: "Stripe publishable key (`pk_…`) the web app's card form uses with Stripe.js to confirm a bounty's payment. Unset with the stripe gateway: the web app cannot take card payments (the API still returns `client_secret`)." },
    Setting { env: "GUILDHALL_STRIPE_JS_URL", key: "stripe_js_url", default: "https://js.stripe.com/v3/", doc: "Where the card form loads Stripe.js from; the page's Content-Security-Policy allows that origin (and Stripe's API and frames when it is js.stripe.com). Tests point it at the local fake." },
    Setting { env: "GUILDHALL_STRIPE_WEBHOOK_SECRET", key: "stripe_webhook_secret", default: "(none)", doc: "Signing secret of the Stripe webhook endpoint (`whsec_…`). Unset: POST /webhooks/stripe answers 404." },
    Setting { env: "GUILDHALL_REPUTATION_PRIOR_WEIGHT", key: "reputation_prior_weight", default: "5", doc: "Strength of a project's prior in the Bayesian average of outcomes, in outcomes (0–1000)." },
    Setting { env: "GUILDHALL_REPUTATION_HALF_LIFE_DAYS", key: "reputation_half_life_days", default: "180", doc: "Half-life of an outcome's weight in reputation, days (1–36500)." },
    Setting { env: "GUILDHALL_TRUST_DAMPING", key: "trust_damping", default: "0.15", doc: "EigenTrust damping: share of trust returned to the project's maintainers each step (0.01–1). Larger bounds what sock-puppet rings can gain." },
    Setting { env: "GUILDHALL_TRUST_WEIGHT", key: "trust_weight", default: "0.3", doc: "How much endorsement trust counts in the reputation score (0–1)." },
    Setting { env: "GUILDHALL_AI_API_BASE", key: "ai_api_base", default: "(none)", doc: "OpenAI-compatible API base (e.g. `https://api.openai.com/v1`); when set, the AI lane sends the retrieved tickets to `<base>/chat/completions`. Unset: the lane quotes the solved tickets itself." },
    Setting { env: "GUILDHALL_AI_MODEL", key: "ai_model", default: "gpt-4o-mini", doc: "Model name sent to the chat-completions endpoint." },
    Setting { env: "GUILDHALL_AI_API_KEY", key: "ai_api_key", default: "(none)", doc: "Bearer key for the chat-completions endpoint. Never logged." },
    Setting { env: "GUILDHALL_AI_TIMEOUT_MS", key: "ai_timeout_ms", default: "20000", doc: "Timeout of one chat-completions request." },
    Setting { env: "GUILDHALL_AI_MIN_CONFIDENCE", key: "ai_min_confidence", default: "0.5", doc: "Below this confidence (0–1) the AI lane says it has no answer instead of answering." },
    Setting { env: "GUILDHALL_SMTP_URL", key: "smtp_url", default: "(none)", doc: "Outbound mail server, e.g. `smtps://user:pass@mail.example:465` or `smtp://127.0.0.1:2525` (lettre's URL form; `?tls=required` for STARTTLS). Unset: mail is written as `.eml` files under `<data_dir>/outbox/`. Never logged." },
    Setting { env: "GUILDHALL_MAIL_FROM", key: "mail_from", default: "Guildhall <guildhall@localhost>", doc: "The From of every mail Guildhall sends." },
    Setting { env: "GUILDHALL_REPLY_DOMAIN", key: "reply_domain", default: "(none)", doc: "Domain of the reply-by-email addresses: each mail about a ticket carries `Reply-To: t{ticket}.{user}.{tag}@<domain>` (an HMAC tag), and the mail server for that domain hands what arrives to `POST /api/v1/inbound/email` or `guildhall mail-receive`. Needs GUILDHALL_INBOUND_EMAIL_SECRET. Unset: mails carry no Reply-To and the inbound endpoint answers 404." },
    Setting { env: "GUILDHALL_INBOUND_EMAIL_SECRET", key: "inbound_email_secret", default: "(none)", doc: "Bearer secret the mail server's pipe (`guildhall mail-receive`) presents to `POST /api/v1/inbound/email`; at least 16 characters. Never logged." },
    Setting { env: "GUILDHALL_INBOUND_AUTHSERV_ID", key: "inbound_authserv_id", default: "(none)", doc: "The `authserv-id` your receiving mail server writes in `Authentication-Results` (RFC 8601; it must remove such headers that arrive from outside). When set, a reply is posted only if that header says `dmarc=pass`, or `dkim=pass` for the From domain; otherwise it is dropped as `unauthenticated`. Unset: the sender is trusted by its From address and the reply address's secret tag." },
    Setting { env: "GUILDHALL_GITHUB_WEBHOOK_SECRET", key: "github_webhook_secret", default: "(none)", doc: "The GitHub App's webhook secret: `POST /api/v1/webhooks/github` checks `X-Hub-Signature-256` with it. Unset: that endpoint answers 404. Never logged." },
    Setting { env: "GUILDHALL_GITHUB_APP_ID", key: "github_app_id", default: "(none)", doc: "The GitHub App's id; with GUILDHALL_GITHUB_PRIVATE_KEY_FILE it signs the app JWT (RS256) that buys installation tokens, so the bot can comment, label and open or close issues." },
    Setting { env: "GUILDHALL_GITHUB_PRIVATE_KEY_FILE", key: "github_private_key_file", default: "(none)", doc: "PEM file of the GitHub App's private key (read at start; never logged)." },
    Setting { env: "GUILDHALL_GITHUB_CLIENT_ID", key: "github_client_id", default: "(none)", doc: "OAuth client id of the GitHub App, for Sign in with GitHub." },
    Setting { env: "GUILDHALL_GITHUB_CLIENT_SECRET", key: "github_client_secret", default: "(none)", doc: "OAuth client secret of the GitHub App. Never logged." },
    Setting { env: "GUILDHALL_GITHUB_API_BASE", key: "github_api_base", default: "https://api.github.com", doc: "GitHub's REST API (GitHub Enterprise: `https://host/api/v3`); tests point it at a local fake." },
    Setting { env: "GUILDHALL_DISCORD_PUBLIC_KEY", key: "discord_public_key", default: "(none)", doc: "The Discord application's public key (64 hex digits): `POST /api/v1/webhooks/discord` checks each interaction's Ed25519 signature with it. Unset: that endpoint answers 404." },
    Setting { env: "GUILDHALL_DISCORD_APP_ID", key: "discord_app_id", default: "(none)", doc: "The Discord application's id (needed with the public key): deferred answers are completed through its interaction webhooks." },
    Setting { env: "GUILDHALL_DISCORD_BOT_TOKEN", key: "discord_bot_token", default: "(none)", doc: "The Discord bot's token, to send updates on tickets opened from Discord to their asker by direct message. Unset: no updates go back to Discord. Never logged." },
    Setting { env: "GUILDHALL_DISCORD_API_BASE", key: "discord_api_base", default: "https://discord.com/api/v10", doc: "Discord's REST API; tests point it at a local fake." },
    Setting { env: "GUILDHALL_SLACK_SIGNING_SECRET", key: "slack_signing_secret", default: "(none)", doc: "The Slack app's signing secret: `POST /api/v1/webhooks/slack/commands` and `/slack/interactions` check `X-Slack-Signature` (v0, 5 minutes) with it. Unset: those endpoints answer 404. Never logged." },
    Setting { env: "GUILDHALL_SLACK_BOT_TOKEN", key: "slack_bot_token", default: "(none)", doc: "The Slack bot token (`xoxb-…`), to send updates on tickets opened from Slack to their asker by direct message. Unset: no updates go back to Slack. Never logged." },
    Setting { env: "GUILDHALL_SLACK_API_BASE", key: "slack_api_base", default: "https://slack.com/api", doc: "Slack's Web API; tests point it at a local fake." },
    Setting { env: "GUILDHALL_LOG", key: "log", default: "info", doc: "Log filter (tracing EnvFilter syntax, e.g. `guildhall=debug,info`)." },
];

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    /// See [`SETTINGS`].
    pub data_dir: PathBuf,
    /// See [`SETTINGS`].
    pub database_url: String,
    /// See [`SETTINGS`].
    pub bind: SocketAddr,
    /// `None`: generate or load `<data_dir>/jwt_secret`.
    pub jwt_secret: Option<Secret>,
    /// See [`SETTINGS`].
    pub jwt_issuer: String,
    /// See [`SETTINGS`].
    pub jwt_audience: String,
    /// See [`SETTINGS`].
    pub access_token_ttl: Duration,
    /// See [`SETTINGS`].
    pub refresh_token_ttl: Duration,
    /// See [`SETTINGS`].
    pub db_pool_size: u32,
    /// See [`SETTINGS`].
    pub db_pool_timeout: Duration,
    /// See [`SETTINGS`].
    pub job_workers: usize,
    /// See [`SETTINGS`].
    pub job_poll: Duration,
    /// See [`SETTINGS`].
    pub body_limit_bytes: usize,
    /// See [`SETTINGS`].
    pub login_max_failures_account: u32,
    /// See [`SETTINGS`].
    pub login_max_failures_address: u32,
    /// See [`SETTINGS`].
    pub login_window: Duration,
    /// See [`SETTINGS`].
    pub register_max_per_address: u32,
    /// See [`SETTINGS`].
    pub log: String,
    /// See [`SETTINGS`].
    pub platform_fee_bps: i32,
    /// See [`SETTINGS`].
    pub stripe_webhook_secret: Option<Secret>,
    /// Outbound mail server URL; `None`: the outbox directory.
    pub smtp_url: Option<Secret>,
    /// The From of every mail.
    pub mail_from: String,
    /// Reply by email: the domain of the reply addresses (set only with
    /// `inbound_email_secret`).
    pub reply_domain: Option<String>,
    /// The secret the inbound mail endpoint requires.
    pub inbound_email_secret: Option<Secret>,
    /// See [`SETTINGS`].
    pub inbound_authserv_id: Option<String>,
    /// See [`SETTINGS`].
    pub github_webhook_secret: Option<Secret>,
    /// The GitHub App's id and private key (PEM), when both are set.
    pub github_app: Option<(i64, Secret)>,
    /// The GitHub OAuth client id and secret, when both are set.
    pub github_oauth: Option<(String, Secret)>,
    /// See [`SETTINGS`].
    pub github_api_base: String,
    /// Discord, when its public key is set.
    pub discord: Option<DiscordSettings>,
    /// Slack, when its signing secret is set.
    pub slack: Option<SlackSettings>,
    /// Stripe.js for the web app's card form (publishable key and script
    /// URL); set when the gateway is Stripe and a publishable key is given.
    pub stripe_js: Option<StripeJs>,
    /// See [`SETTINGS`].
    pub payout_minimum: i64,
    /// See [`SETTINGS`].
    pub gateway: GatewayChoice,
    /// See [`SETTINGS`].
    pub public_url: String,
    /// The reputation model's parameters (see [`SETTINGS`]).
    pub reputation: ReputationParams,
    /// The chat-completions endpoint of the AI lane, if configured.
    pub ai: Option<LlmSettings>,
    /// See [`SETTINGS`].
    pub ai_min_confidence: f64,
}

/// Which payment gateway moves the money.
#[derive(Clone, Debug)]
pub enum GatewayChoice {
    /// The embedded sandbox.
    Sandbox,
    /// Stripe, with these settings.
    Stripe(StripeSettings),
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Discord's interactions endpoint and REST API.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    /// The application's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The application's id.
    pub app_id: String,
    /// The bot's token, for direct messages.
    pub bot_token: Option<Secret>,
    /// REST API base.
    pub api_base: String,
}

/// Slack's slash commands, interactivity and Web API.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// The signing secret.
    pub signing_secret: Secret,
    /// The bot token, for direct messages.
    pub bot_token: Option<Secret>,
    /// Web API base.
    pub api_base: String,
}

/// An http(s) base URL without its trailing slash.
fn http_base(raw: &str, name: &str) -> anyhow::Result<String> {
    let base = raw.trim().trim_end_matches('/').to_owned();
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        bail!("{name}: expected an http(s) URL, got {base:?}");
    }
    Ok(base)
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("jwt_secret", &self.jwt_secret)
            .finish_non_exhaustive()
    }
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Reads the TOML file (from `file`, or `GUILDHALL_CONFIG`) and the
    /// process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("GUILDHALL_"))
            .collect();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("GUILDHALL_CONFIG").map(PathBuf::from));
        let file_values = match file {
            Some(path) => read_toml(&path)?,
            None => HashMap::new(),
        };
        Self::from_sources(&env, &file_values)
    }

    /// Builds the configuration from environment values (by variable name)
    /// over file values (by key) over defaults.
    pub fn from_sources(
        env: &HashMap<String, String>,
        file: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let get = |env_name: &str| -> Option<(String, String)> {
            let setting = SETTINGS.iter().find(|s| s.env == env_name)?;
            if let Some(v) = env.get(env_name) {
                return Some((v.clone(), env_name.to_owned()));
            }
            file.get(setting.key).map(|v| {
                (
                    v.clone(),
                    format!("{} (config file key `{}`)", env_name, setting.key),
                )
            })
        };
        let default_of = |env_name: &str| {
            SETTINGS
                .iter()
                .find(|s| s.env == env_name)
                .map(|s| s.default)
                .unwrap_or_default()
        };
        let text = |name: &str| {
            get(name)
                .map(|(v, _)| v)
                .unwrap_or_else(|| default_of(name).to_owned())
        };
        fn parse<T: std::str::FromStr>(
            raw: Option<(String, String)>,
            default: &str,
            name: &str,
            what: &str,
        ) -> anyhow::Result<T> {
            match raw {
                Some((v, source)) => v
                    .trim()
                    .parse::<T>()
                    .map_err(|_| anyhow::anyhow!("{source}: expected {what}, got {v:?}")),
                None => default
                    .parse::<T>()
                    .map_err(|_| anyhow::anyhow!("built-in default of {name} is invalid")),
            }
        }
        let num = |name: &str, what: &str| -> anyhow::Result<u64> {
            parse::<u64>(get(name), default_of(name), name, what)
        };

        let data_dir = PathBuf::from(text("GUILDHALL_DATA_DIR"));
        let database_url = match get("GUILDHALL_DATABASE_URL") {
            Some((v, source)) => {
                if v.trim().is_empty() {
                    bail!("{source}: must not be empty");
                }
                v
            }
            None => data_dir.join("guildhall.db").to_string_lossy().into_owned(),
        };
        let bind: SocketAddr = parse(
            get("GUILDHALL_BIND"),
            default_of("GUILDHALL_BIND"),
            "GUILDHALL_BIND",
            "an address like 127.0.0.1:8080",
        )?;
        let jwt_secret = match get("GUILDHALL_JWT_SECRET") {
            Some((v, source)) => {
                if v.len() < 32 {
                    bail!("{source}: must be at least 32 bytes long");
                }
                Some(Secret(v.into_bytes()))
            }
            None => None,
        };
        let positive = |name: &str, what: &str| -> anyhow::Result<u64> {
            let v = num(name, what)?;
            if v == 0 {
                bail!("{name}: must be greater than 0");
            }
            Ok(v)
        };
        let log = text("GUILDHALL_LOG");
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| anyhow::anyhow!("GUILDHALL_LOG: invalid filter {log:?}: {e}"))?;
        Ok(Config {
            data_dir,
            database_url,
            bind,
            jwt_secret,
            jwt_issuer: text("GUILDHALL_JWT_ISSUER"),
            jwt_audience: text("GUILDHALL_JWT_AUDIENCE"),
            access_token_ttl: Duration::from_secs(positive(
                "GUILDHALL_ACCESS_TOKEN_TTL_SECS",
                "a number of seconds",
            )?),
            refresh_token_ttl: Duration::from_secs(
                positive("GUILDHALL_REFRESH_TOKEN_TTL_DAYS", "a number of days")? * 86_400,
            ),
            db_pool_size: u32::try_from(positive(
                "GUILDHALL_DB_POOL_SIZE",
                "a number of connections",
            )?)
            .context("GUILDHALL_DB_POOL_SIZE: too large")?,
            db_pool_timeout: Duration::from_millis(positive(
                "GUILDHALL_DB_POOL_TIMEOUT_MS",
                "a number of milliseconds",
            )?),
            job_workers: usize::try_from(num("GUILDHALL_JOB_WORKERS", "a number of threads")?)
                .context("GUILDHALL_JOB_WORKERS: too large")?,
            job_poll: Duration::from_millis(positive(
                "GUILDHALL_JOB_POLL_MS",
                "a number of milliseconds",
            )?),
            body_limit_bytes: usize::try_from(positive(
                "GUILDHALL_BODY_LIMIT_BYTES",
                "a number of bytes",
            )?)
            .context("GUILDHALL_BODY_LIMIT_BYTES: too large")?,
            login_max_failures_account: u32::try_from(positive(
                "GUILDHALL_LOGIN_MAX_FAILURES_ACCOUNT",
                "a count",
            )?)
            .context("GUILDHALL_LOGIN_MAX_FAILURES_ACCOUNT: too large")?,
            login_max_failures_address: u32::try_from(positive(
                "GUILDHALL_LOGIN_MAX_FAILURES_ADDRESS",
                "a count",
            )?)
            .context("GUILDHALL_LOGIN_MAX_FAILURES_ADDRESS: too large")?,
            register_max_per_address: u32::try_from(positive(
                "GUILDHALL_REGISTER_MAX_PER_ADDRESS",
                "a count",
            )?)
            .context("GUILDHALL_REGISTER_MAX_PER_ADDRESS: too large")?,
            login_window: Duration::from_secs(positive(
                "GUILDHALL_LOGIN_WINDOW_SECS",
                "a number of seconds",
            )?),
            log,
            payout_minimum: i64::try_from(positive("GUILDHALL_PAYOUT_MINIMUM", "minor units")?)
                .context("GUILDHALL_PAYOUT_MINIMUM: too large")?,
            smtp_url: get("GUILDHALL_SMTP_URL")
                .map(|(v, _)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| {
                    if v.starts_with("smtp://") || v.starts_with("smtps://") {
                        Ok(Secret(v.into_bytes()))
                    } else {
                        bail!("GUILDHALL_SMTP_URL: expected an smtp:// or smtps:// URL")
                    }
                })
                .transpose()?,
            mail_from: {
                let from = text("GUILDHALL_MAIL_FROM");
                if from.parse::<lettre::message::Mailbox>().is_err() {
                    bail!("GUILDHALL_MAIL_FROM: not an address, got {from:?}");
                }
                from
            },
            inbound_email_secret: match get("GUILDHALL_INBOUND_EMAIL_SECRET") {
                Some((v, _)) if v.trim().chars().count() >= 16 => {
                    Some(Secret(v.trim().as_bytes().to_vec()))
                }
                Some((v, _)) if !v.trim().is_empty() => {
                    bail!("GUILDHALL_INBOUND_EMAIL_SECRET: use at least 16 characters")
                }
                _ => None,
            },
            github_webhook_secret: get("GUILDHALL_GITHUB_WEBHOOK_SECRET")
                .map(|(v, _)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| Secret(v.into_bytes())),
            github_app: match (
                get("GUILDHALL_GITHUB_APP_ID").filter(|(v, _)| !v.trim().is_empty()),
                get("GUILDHALL_GITHUB_PRIVATE_KEY_FILE").filter(|(v, _)| !v.trim().is_empty()),
            ) {
                (None, None) => None,
                (Some((id, _)), Some((file, _))) => {
                    let id: i64 = id.trim().parse().ok().filter(|i| *i > 0).with_context(|| {
                        format!("GUILDHALL_GITHUB_APP_ID: expected a positive number, got {id:?}")
                    })?;
                    let pem = std::fs::read(file.trim())
                        .with_context(|| format!("GUILDHALL_GITHUB_PRIVATE_KEY_FILE: cannot read {file:?}"))?;
                    if !pem.starts_with(b"-----BEGIN") {
                        bail!("GUILDHALL_GITHUB_PRIVATE_KEY_FILE: {file:?} is not a PEM file");
                    }
                    Some((id, Secret(pem)))
                }
                _ => bail!("GUILDHALL_GITHUB_APP_ID and GUILDHALL_GITHUB_PRIVATE_KEY_FILE go together: set both or neither"),
            },
            github_oauth: match (
                get("GUILDHALL_GITHUB_CLIENT_ID").filter(|(v, _)| !v.trim().is_empty()),
                get("GUILDHALL_GITHUB_CLIENT_SECRET").filter(|(v, _)| !v.trim().is_empty()),
            ) {
                (None, None) => None,
                (Some((id, _)), Some((secret, _))) => {
                    Some((id.trim().to_owned(), Secret(secret.trim().as_bytes().to_vec())))
                }
                _ => bail!("GUILDHALL_GITHUB_CLIENT_ID and GUILDHALL_GITHUB_CLIENT_SECRET go together: set both or neither"),
            },
            discord: match get("GUILDHALL_DISCORD_PUBLIC_KEY").filter(|(v, _)| !v.trim().is_empty()) {
                None => None,
                Some((key, _)) => {
                    let bytes = hex::decode(key.trim())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .context("GUILDHALL_DISCORD_PUBLIC_KEY: expected 64 hex digits")?;
                    let app_id = get("GUILDHALL_DISCORD_APP_ID")
                        .map(|(v, _)| v.trim().to_owned())
                        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
                        .context("GUILDHALL_DISCORD_APP_ID: the application's id (digits) goes with the public key")?;
                    Some(DiscordSettings {
                        public_key: bytes,
                        app_id,
                        bot_token: get("GUILDHALL_DISCORD_BOT_TOKEN")
                            .map(|(v, _)| v.trim().to_owned())
                            .filter(|v| !v.is_empty())
                            .map(|v| Secret(v.into_bytes())),
                        api_base: http_base(&text("GUILDHALL_DISCORD_API_BASE"), "GUILDHALL_DISCORD_API_BASE")?,
                    })
                }
            },
            slack: match get("GUILDHALL_SLACK_SIGNING_SECRET").filter(|(v, _)| !v.trim().is_empty()) {
                None => None,
                Some((secret, _)) => Some(SlackSettings {
                    signing_secret: Secret(secret.trim().as_bytes().to_vec()),
                    bot_token: get("GUILDHALL_SLACK_BOT_TOKEN")
                        .map(|(v, _)| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .map(|v| Secret(v.into_bytes())),
                    api_base: http_base(&text("GUILDHALL_SLACK_API_BASE"), "GUILDHALL_SLACK_API_BASE")?,
                }),
            },
            github_api_base: {
                let base = text("GUILDHALL_GITHUB_API_BASE").trim().trim_end_matches('/').to_owned();
                if !(base.starts_with("https://") || base.starts_with("http://")) {
                    bail!("GUILDHALL_GITHUB_API_BASE: expected an http(s) URL, got {base:?}");
                }
                base
            },
            inbound_authserv_id: match get("GUILDHALL_INBOUND_AUTHSERV_ID") {
                Some((v, _)) if !v.trim().is_empty() => {
                    let id = v.trim().to_ascii_lowercase();
                    if id.len() > 200 || id.contains([';', ' ', '\t']) {
                        bail!("GUILDHALL_INBOUND_AUTHSERV_ID: expected a host name, got {id:?}");
                    }
                    Some(id)
                }
                _ => None,
            },
            reply_domain: match get("GUILDHALL_REPLY_DOMAIN") {
                Some((v, _)) if !v.trim().is_empty() => {
                    let domain = v.trim().to_ascii_lowercase();
                    let label_ok = |l: &str| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    };
                    if domain.len() > 200 || !domain.split('.').all(label_ok) {
                        bail!("GUILDHALL_REPLY_DOMAIN: not a domain name, got {domain:?}");
                    }
                    let secret = get("GUILDHALL_INBOUND_EMAIL_SECRET");
                    if secret.is_none_or(|(v, _)| v.trim().is_empty()) {
                        bail!("GUILDHALL_REPLY_DOMAIN needs GUILDHALL_INBOUND_EMAIL_SECRET: without it no reply could be received");
                    }
                    Some(domain)
                }
                _ => None,
            },
            stripe_js: match (
                text("GUILDHALL_PAYMENT_GATEWAY").trim(),
                get("GUILDHALL_STRIPE_PUBLISHABLE_KEY"),
            ) {
                ("stripe", Some((key, _))) if !key.trim().is_empty() => {
                    let key = key.trim().to_owned();
                    if !key.starts_with("pk_") {
                        bail!("GUILDHALL_STRIPE_PUBLISHABLE_KEY: expected a key starting with pk_");
                    }
                    let js_url = text("GUILDHALL_STRIPE_JS_URL");
                    if !(js_url.starts_with("https://") || js_url.starts_with("http://")) {
                        bail!("GUILDHALL_STRIPE_JS_URL: expected an http(s) URL, got {js_url:?}");
                    }
                    Some(StripeJs {
                        publishable_key: key,
                        js_url,
                    })
                }
                _ => None,
            },
            stripe_webhook_secret: get("GUILDHALL_STRIPE_WEBHOOK_SECRET")
                .map(|(v, _)| Secret(v.into_bytes()))
                .filter(|s| !s.0.is_empty()),
            gateway: match text("GUILDHALL_PAYMENT_GATEWAY").trim() {
                "sandbox" => GatewayChoice::Sandbox,
                "stripe" => {
                    let secret_key = text("GUILDHALL_STRIPE_SECRET_KEY");
                    if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
                        bail!("GUILDHALL_STRIPE_SECRET_KEY: the stripe gateway needs a secret key starting with sk_ or rk_");
                    }
                    let api_base = text("GUILDHALL_STRIPE_API_BASE");
                    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
                        bail!(
                            "GUILDHALL_STRIPE_API_BASE: expected an http(s) URL, got {api_base:?}"
                        );
                    }
                    GatewayChoice::Stripe(StripeSettings {
                        secret_key,
                        api_base,
                        public_url: text("GUILDHALL_PUBLIC_URL"),
                        timeout: Duration::from_millis(positive(
                            "GUILDHALL_STRIPE_TIMEOUT_MS",
                            "a number of milliseconds",
                        )?),
                    })
                }
                other => {
                    bail!("GUILDHALL_PAYMENT_GATEWAY: expected sandbox or stripe, got {other:?}")
                }
            },
            public_url: text("GUILDHALL_PUBLIC_URL"),
            reputation: {
                let float = |name: &str, lo: f64, hi: f64| -> anyhow::Result<f64> {
                    let v: f64 = parse(get(name), default_of(name), name, "a number")?;
                    if !(lo..=hi).contains(&v) {
                        bail!("{name}: must be between {lo} and {hi}, got {v}");
                    }
                    Ok(v)
                };
                ReputationParams {
                    prior_weight: float("GUILDHALL_REPUTATION_PRIOR_WEIGHT", 0.0, 1000.0)?,
                    half_life_days: float("GUILDHALL_REPUTATION_HALF_LIFE_DAYS", 1.0, 36500.0)?,
                    damping: float("GUILDHALL_TRUST_DAMPING", 0.01, 1.0)?,
                    trust_weight: float("GUILDHALL_TRUST_WEIGHT", 0.0, 1.0)?,
                }
            },
            ai: match get("GUILDHALL_AI_API_BASE")
                .map(|(v, _)| v)
                .filter(|v| !v.trim().is_empty())
            {
                None => None,
                Some(base) => {
                    if !(base.starts_with("http://") || base.starts_with("https://")) {
                        bail!("GUILDHALL_AI_API_BASE: expected an http(s) URL, got {base:?}");
                    }
                    Some(LlmSettings {
                        api_base: base,
                        model: text("GUILDHALL_AI_MODEL"),
                        api_key: get("GUILDHALL_AI_API_KEY")
                            .map(|(v, _)| v)
                            .filter(|v| !v.is_empty()),
                        timeout: Duration::from_millis(positive(
                            "GUILDHALL_AI_TIMEOUT_MS",
                            "a number of milliseconds",
                        )?),
                    })
                }
            },
            ai_min_confidence: {
                let v: f64 = parse(
                    get("GUILDHALL_AI_MIN_CONFIDENCE"),
                    default_of("GUILDHALL_AI_MIN_CONFIDENCE"),
                    "GUILDHALL_AI_MIN_CONFIDENCE",
                    "a number between 0 and 1",
                )?;
                if !(0.0..=1.0).contains(&v) {
                    bail!("GUILDHALL_AI_MIN_CONFIDENCE: must be between 0 and 1, got {v}");
                }
                v
            },
            platform_fee_bps: {
                let v = num("GUILDHALL_PLATFORM_FEE_BPS", "basis points")?;
                if v > 2000 {
                    bail!("GUILDHALL_PLATFORM_FEE_BPS: must be at most 2000 (20%)");
                }
                i32::try_from(v).context("GUILDHALL_PLATFORM_FEE_BPS: too large")?
            },
        })
    }

    /// Where the search index lives: `<data_dir>/index`.
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    /// The configured JWT key, or the one stored in the data directory,
    /// generated (random, 64 bytes, mode 0600) on first use.
    pub fn jwt_key(&self) -> anyhow::Result<Secret> {
        if let Some(secret) = &self.jwt_secret {
            return Ok(secret.clone());
        }
        let path = self.data_dir.join("jwt_secret");
        if path.exists() {
            let raw = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let raw = raw.trim();
            if raw.len() < 32 {
                bail!(
                    "{} is shorter than 32 bytes; delete it to generate a new one",
                    path.display()
                );
            }
            return Ok(Secret(raw.as_bytes().to_vec()));
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let mut bytes = [0u8; 64];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let encoded = hex::encode(bytes);
        write_private(&path, encoded.as_bytes())?;
        Ok(Secret(encoded.into_bytes()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot create {}", path.display()))
}

fn read_toml(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("GUILDHALL_CONFIG: cannot read {}", path.display()))?;
    let table: toml::Table = raw
        .parse()
        .with_context(|| format!("GUILDHALL_CONFIG: {} is not valid TOML", path.display()))?;
    let mut out = HashMap::new();
    for (key, value) in table {
        if !SETTINGS.iter().any(|s| s.key == key) {
            bail!(
                "GUILDHALL_CONFIG: unknown key `{key}` in {}",
                path.display()
            );
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "GUILDHALL_CONFIG: key `{key}` must be a string or number, got {}",
                other.type_str()
            ),
        };
        out.insert(key, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_sources(&HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "./data/guildhall.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert!(c.jwt_secret.is_none());
    }

    #[test]
    fn reply_by_email_needs_a_domain_and_a_long_secret() {
        let ok = |pairs: &[(&str, &str)]| Config::from_sources(&env(pairs), &HashMap::new());
        let c = ok(&[
            ("GUILDHALL_REPLY_DOMAIN", "Reply.Example.org"),
            ("GUILDHALL_INBOUND_EMAIL_SECRET", "0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(c.reply_domain.as_deref(), Some("reply.example.org"));
        let err = |pairs: &[(&str, &str)]| ok(pairs).err().unwrap().to_string();
        assert!(err(&[("GUILDHALL_REPLY_DOMAIN", "reply.example.org")])
            .contains("GUILDHALL_INBOUND_EMAIL_SECRET"));
        assert!(err(&[
            ("GUILDHALL_REPLY_DOMAIN", "not a domain"),
            ("GUILDHALL_INBOUND_EMAIL_SECRET", "0123456789abcdef"),
        ])
        .contains("GUILDHALL_REPLY_DOMAIN"));
        let short = err(&[("GUILDHALL_INBOUND_EMAIL_SECRET", "too-short")]);
        assert!(
            short.contains("GUILDHALL_INBOUND_EMAIL_SECRET") && !short.contains("too-short"),
            "{short}"
        );
    }

    #[test]
    fn env_beats_file_and_errors_name_the_variable() {
        let file = env(&[("bind", "0.0.0.0:9000"), ("db_pool_size", "3")]);
        let c = Config::from_sources(&env(&[("GUILDHALL_BIND", "127.0.0.1:1")]), &file).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:1");
        assert_eq!(c.db_pool_size, 3);
        let err = Config::from_sources(&env(&[("GUILDHALL_BIND", "nope")]), &HashMap::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("GUILDHALL_BIND"), "{err}");
        let err = Config::from_sources(&env(&[("GUILDHALL_JWT_SECRET", "short")]), &HashMap::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("GUILDHALL_JWT_SECRET") && !err.contains("short\""),
            "{err}"
        );
        let err = Config::from_sources(&HashMap::new(), &env(&[("db_pool_size", "x")]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("db_pool_size"), "{err}");
    }

    #[test]
    fn generated_secret_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::from_sources(&HashMap::new(), &HashMap::new()).unwrap();
        c.data_dir = dir.path().join("d");
        let first = c.jwt_key().unwrap();
        let second = c.jwt_key().unwrap();
        assert_eq!(first.0, second.0);
        assert!(first.0.len() >= 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(c.data_dir.join("jwt_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{first:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("data/g.db"), "data/g.db");
    }
}

/// Where Stripe is and how the gateway identifies itself.
#[derive(Clone)]
pub struct StripeSettings {
    /// `sk_…` or `rk_…`.
    pub secret_key: String,
    /// `https://api.stripe.com/` in production; a local fake in tests.
    pub api_base: String,
    /// Where onboarding returns the payee (`…/payouts/return`) and where an
    /// expired onboarding link sends them (`…/payouts/refresh`).
    pub public_url: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"<redacted>")
            .field("api_base", &self.api_base)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Stripe.js for the web app's card form.
#[derive(Debug, Clone)]
pub struct StripeJs {
    /// `pk_…` (public by design).
    pub publishable_key: String,
    /// The script's URL.
    pub js_url: String,
}

impl StripeJs {
    /// The origins the card page must allow: (scripts, connections,
    /// frames).
    pub fn origins(&self) -> (String, String, String) {
        let origin = self
            .js_url
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        if origin == "https://js.stripe.com" {
            (
                origin.clone(),
                "https://api.stripe.com".into(),
                format!("{origin} https://hooks.stripe.com"),
            )
        } else {
            (origin.clone(), origin.clone(), origin)
        }
    }
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Clone)]
pub struct LlmSettings {
    /// Base URL, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub api_base: String,
    /// Model name.
    pub model: String,
    /// Bearer key, if the endpoint needs one. Never logged.
    pub api_key: Option<String>,
    /// Request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSettings")
            .field("api_base", &self.api_base)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The tunable parameters of the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationParams {
    /// Prior strength `C`, in outcomes.
    pub prior_weight: f64,
    /// Half-life of an outcome's weight, days.
    pub half_life_days: f64,
    /// EigenTrust damping `a` (0 < a ≤ 1): the share of trust that always
    /// returns to the pre-trusted maintainers.
    pub damping: f64,
    /// β: how much trust counts in the score (0–1).
    pub trust_weight: f64,
}

impl Default for ReputationParams {
    fn default() -> Self {
        ReputationParams {
            prior_weight: 5.0,
            half_life_days: 180.0,
            damping: 0.15,
            trust_weight: 0.3,
        }
    }
}
