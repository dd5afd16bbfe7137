//! `POST /webhooks/discord`, `/webhooks/slack/commands` and
//! `/webhooks/slack/interactions`: signatures checked over the raw body
//! before anything is parsed, stale timestamps and replays refused (401,
//! nothing written), each answered within Discord's and Slack's three
//! seconds — the AI lane's answer follows through a job.

use super::webhooks::read_limited;
use crate::channels::chat::{self, Button, ChatUser, Command};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::job_payloads::{ChatAnswer, ChatReply};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use guildhall_jobs::BackgroundJob;
use serde_json::{json, Value};

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn refused(state: &AppState, channel: &'static str, e: chat::Refusal) -> AppError {
    state.metrics.inbound(
        channel,
        match e {
            chat::Refusal::BadSignature => "bad_signature",
            chat::Refusal::Stale => "stale",
        },
    );
    tracing::warn!(channel, reason = %e, "rejected a chat request");
    AppError::Unauthorized(e.to_string().into())
}

fn replayed(state: &AppState, channel: &'static str) -> AppError {
    state.metrics.inbound(channel, "replayed");
    AppError::Unauthorized("replayed request".into())
}

fn malformed(state: &AppState, channel: &'static str, what: &str) -> AppError {
    state.metrics.inbound(channel, "malformed");
    AppError::bad_request(ErrorCode::InvalidBody, format!("malformed request: {what}"))
}

/// What a command or button comes to.
enum Outcome {
    /// A private reply now.
    Reply(String),
    /// The answer follows (a job was queued).
    Deferred(String),
}

/// Runs `command` for `user`; `target` is where a deferred answer goes.
async fn run_command(
    state: &AppState,
    user: ChatUser,
    command: Command,
    target: String,
) -> AppResult<(Outcome, &'static str)> {
    let index = state.index.clone();
    let public_url = state.config.public_url.clone();
    let min_confidence = state.config.ai_min_confidence;
    state
        .db(move |conn| match command {
            Command::Help => Ok((Outcome::Reply(chat::HELP.into()), "help")),
            Command::Link => {
                let url = chat::link_url(conn, &user, &public_url)?;
                Ok((
                    Outcome::Reply(format!(
                        "Open this link while signed in to Guildhall to tie this chat account to yours (it works once, for 30 minutes): {url}"
                    )),
                    "link",
                ))
            }
            Command::Status(id) => Ok((
                Outcome::Reply(chat::status(conn, &user, id, &public_url)?),
                "status",
            )),
            Command::Ask { project, question } => {
                let asked = match chat::ask(conn, &index, &user, project.as_deref(), &question)? {
                    Ok(a) => a,
                    Err(text) => return Ok((Outcome::Reply(text), "ask_unclear")),
                };
                let (question, _, grounding) =
                    chat::grounding(conn, &index, asked.id, min_confidence)?;
                let (confidence, sources, note) = match grounding {
                    crate::domain::ai::Grounding::Nothing(a) => (a.confidence, Vec::new(), a.note),
                    crate::domain::ai::Grounding::Sources {
                        confidence,
                        sources,
                    } => (confidence, sources, None),
                };
                ChatAnswer {
                    provider: user.provider.to_owned(),
                    question_id: asked.id,
                    target,
                    question,
                    project: asked.project.clone(),
                    confidence,
                    sources,
                    note,
                }
                .enqueue(conn)?;
                Ok((
                    Outcome::Deferred(format!(
                        "Looking through {}'s solved tickets…",
                        asked.project
                    )),
                    "ask",
                ))
            }
        })
        .await
}

/// What a press answers: text now, or a one-time link to send.
enum PressReply {
    Text(String),
    NeedsLink,
}

async fn run_button(
    state: &AppState,
    user: ChatUser,
    custom_id: &str,
) -> AppResult<(PressReply, &'static str)> {
    let mut parts = custom_id.splitn(3, ':');
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some("gh"), Some(action), Some(id)) => Button::parse(action).zip(id.parse::<i64>().ok()),
        _ => None,
    };
    let Some((button, question)) = parsed else {
        return Ok((
            PressReply::Text("That button is not Guildhall's.".into()),
            "unknown_button",
        ));
    };
    let public_url = state.config.public_url.clone();
    let reply = state
        .db(move |conn| chat::press(conn, &user, button, question, &public_url))
        .await
        .map(|p| match p {
            chat::Pressed::Text(t) => PressReply::Text(t),
            chat::Pressed::NeedsLink => PressReply::NeedsLink,
        })
        .or_else(|e| match e {
            // Told in the chat: the press is answered, not failed.
            AppError::Conflict { detail, .. } => Ok(PressReply::Text(detail.into_owned())),
            AppError::Validation(errors) => Ok(PressReply::Text(format!(
                "The question cannot be posted as it is: {}",
                errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
            other => Err(other),
        })?;
    Ok((
        reply,
        match button {
            Button::Solved => "solved",
            Button::Post => "post",
            Button::Expert => "expert",
        },
    ))
}

/// Discord interactions: Ed25519 over `X-Signature-Timestamp` + body
/// (`GUILDHALL_DISCORD_PUBLIC_KEY`); PING → PONG; the slash commands `ask`
/// (options `question`, `project`), `status` (`ticket`), `link` and
/// `help`; the answer's buttons. Replies are private (ephemeral).
#[utoipa::path(post, path = "/api/v1/webhooks/discord", tag = "projects",
    params(("X-Signature-Ed25519" = String, Header, description = "hex Ed25519 signature of timestamp + body"),
           ("X-Signature-Timestamp" = String, Header, description = "Unix seconds")),
    request_body(content = Object, description = "a Discord interaction"),
    responses((status = 200, body = Object, description = "an interaction response"),
              (status = 400, body = Problem, description = "not an interaction"),
              (status = 401, body = Problem, description = "bad signature, stale timestamp or a replay"),
              (status = 404, body = Problem, description = "Discord is not configured"),
              (status = 413, body = Problem, description = "body over 256 KiB")))]
pub async fn discord(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    const CHANNEL: &str = "discord";
    let Some(settings) = state.config.discord.clone() else {
        return Err(AppError::not_found("discord endpoint"));
    };
    let body = read_limited(payload, chat::MAX_BYTES)
        .await
        .inspect_err(|_| {
            state.metrics.inbound(CHANNEL, "oversize");
        })?;
    chat::verify_discord(
        &settings.public_key,
        header(&req, "x-signature-ed25519").as_deref(),
        header(&req, "x-signature-timestamp").as_deref(),
        &body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| refused(&state, CHANNEL, e))?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|_| malformed(&state, CHANNEL, "not JSON"))?;
    let kind = v["type"].as_i64().unwrap_or(0);
    if kind == 1 {
        state.metrics.inbound(CHANNEL, "ping");
        return Ok(HttpResponse::Ok().json(json!({"type": 1})));
    }
    let id = v["id"]
        .as_str()
        .ok_or_else(|| malformed(&state, CHANNEL, "no id"))?
        .to_owned();
    let who = if v["member"]["user"].is_object() {
        &v["member"]["user"]
    } else {
        &v["user"]
    };
    let user = ChatUser {
        provider: CHANNEL,
        external: who["id"]
            .as_str()
            .ok_or_else(|| malformed(&state, CHANNEL, "no user"))?
            .to_owned(),
        login: who["username"].as_str().unwrap_or("someone").to_owned(),
    };
    once(&state, CHANNEL, id).await?;
    let private = |text: String| {
        let text = crate::integrations::chat::cut(&text, 1900);
        HttpResponse::Ok().json(json!({"type": 4, "data": {"content": text, "flags": 64, "allowed_mentions": {"parse": []}}}))
    };
    match kind {
        2 => {
            let option = |name: &str| {
                v["data"]["options"]
                    .as_array()
                    .and_then(|o| o.iter().find(|o| o["name"] == name))
                    .map(|o| match &o["value"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
            };
            let command = match v["data"]["name"].as_str().unwrap_or("") {
                "ask" => Command::Ask {
                    project: option("project").filter(|p| !p.trim().is_empty()),
                    question: option("question").unwrap_or_default(),
                },
                "status" => {
                    match option("ticket").and_then(|t| t.trim_start_matches('#').parse().ok()) {
                        Some(id) => Command::Status(id),
                        None => Command::Help,
                    }
                }
                "link" => Command::Link,
                _ => Command::Help,
            };
            let token = v["token"].as_str().unwrap_or_default().to_owned();
            let (outcome, name) = run_command(&state, user, command, token).await?;
            state.metrics.inbound(CHANNEL, name);
            Ok(match outcome {
                Outcome::Reply(text) => private(text),
                // The answer edits this deferred, private response.
                Outcome::Deferred(_) => {
                    HttpResponse::Ok().json(json!({"type": 5, "data": {"flags": 64}}))
                }
            })
        }
        3 => {
            let custom = v["data"]["custom_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let (reply, name) = run_button(&state, user.clone(), &custom).await?;
            state.metrics.inbound(CHANNEL, name);
            let text = match reply {
                PressReply::Text(t) => t,
                PressReply::NeedsLink => {
                    let public_url = state.config.public_url.clone();
                    let url = state
                        .db(move |conn| chat::link_url(conn, &user, &public_url))
                        .await?;
                    chat::needs_link_text(&url)
                }
            };
            Ok(private(text))
        }
        _ => Err(malformed(&state, CHANNEL, "unknown interaction type")),
    }
}

/// A Slack request that passed its checks: the form, and the key that
/// identifies it for replay protection ([`once`], called once the request
/// is known to be well formed, so a malformed one writes nothing).
struct SlackRequest {
    form: Vec<(String, String)>,
    key: String,
}

/// Checks a Slack request: configured, within size, signed, fresh, a form,
/// not a retry (`None`: acknowledge and do nothing).
async fn slack_request(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> AppResult<Option<SlackRequest>> {
    const CHANNEL: &str = "slack";
    let Some(settings) = state.config.slack.clone() else {
        return Err(AppError::not_found("slack endpoint"));
    };
    let body = read_limited(payload, chat::MAX_BYTES)
        .await
        .inspect_err(|_| {
            state.metrics.inbound(CHANNEL, "oversize");
        })?;
    chat::verify_slack(
        &settings.signing_secret.0,
        header(req, "x-slack-signature").as_deref(),
        header(req, "x-slack-request-timestamp").as_deref(),
        &body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| refused(state, CHANNEL, e))?;
    if header(req, "x-slack-retry-num").is_some() {
        // The first delivery was acknowledged late or lost: it was handled.
        state.metrics.inbound(CHANNEL, "retry_ignored");
        return Ok(None);
    }
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| malformed(state, CHANNEL, "not a form"))?;
    // Slack's trigger id is unique per command and press; without one the
    // signature itself (it covers the timestamp) identifies the request.
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let key = field("trigger_id")
        .or_else(|| {
            field("payload").and_then(|p| {
                serde_json::from_str::<Value>(&p)
                    .ok()
                    .and_then(|v| v["trigger_id"].as_str().map(str::to_owned))
            })
        })
        .or_else(|| header(req, "x-slack-signature"))
        .unwrap_or_default();
    Ok(Some(SlackRequest { form, key }))
}

/// Records interaction `key` of `channel`; a replay is 401.
async fn once(state: &AppState, channel: &'static str, key: String) -> AppResult<()> {
    let first = state
        .db(move |conn| chat::first_delivery(conn, channel, &key))
        .await?;
    if first {
        Ok(())
    } else {
        Err(replayed(state, channel))
    }
}

/// Refuses a `response_url` that is not Slack's (answers go only there).
fn check_response_url(state: &AppState, url: &str) -> AppResult<()> {
    let api_base = state
        .config
        .slack
        .as_ref()
        .map(|s| s.api_base.as_str())
        .unwrap_or_default();
    if crate::integrations::chat::slack_url_ok(url, api_base) {
        Ok(())
    } else {
        Err(malformed(state, "slack", "response_url is not Slack's"))
    }
}

fn slack_private(text: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"response_type": "ephemeral", "text": text}))
}

/// Slack slash command (`/guildhall ask [project:] question`, `status N`,
/// `link`, `help`): v0 signature (`GUILDHALL_SLACK_SIGNING_SECRET`) within
/// five minutes; retries (`X-Slack-Retry-Num`) acknowledged and ignored;
/// answered privately at once, the AI answer through `response_url`.
#[utoipa::path(post, path = "/api/v1/webhooks/slack/commands", tag = "projects",
    params(("X-Slack-Signature" = String, Header, description = "v0=<hex HMAC-SHA256 of v0:timestamp:body>"),
           ("X-Slack-Request-Timestamp" = String, Header, description = "Unix seconds")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "a Slack slash command"),
    responses((status = 200, body = Object, description = "a private message"),
              (status = 400, body = Problem, description = "not a slash command"),
              (status = 401, body = Problem, description = "bad signature, stale timestamp or a replay"),
              (status = 404, body = Problem, description = "Slack is not configured"),
              (status = 413, body = Problem, description = "body over 256 KiB")))]
pub async fn slack_commands(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let Some(SlackRequest { form, key }) = slack_request(&state, &req, payload).await? else {
        return Ok(HttpResponse::Ok().finish());
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(user_id), Some(response_url)) = (field("user_id"), field("response_url")) else {
        return Err(malformed(
            &state,
            "slack",
            "user_id and response_url are required",
        ));
    };
    check_response_url(&state, &response_url)?;
    once(&state, "slack", key).await?;
    // Slack's user ids are unique across workspaces (and the same in a
    // command and in a button press, where team ids may differ).
    let user = ChatUser {
        provider: "slack",
        external: user_id.clone(),
        login: field("user_name").unwrap_or_else(|| user_id.clone()),
    };
    let command = chat::parse_text(&field("text").unwrap_or_default());
    let (outcome, name) = run_command(&state, user, command, response_url).await?;
    state.metrics.inbound("slack", name);
    Ok(match outcome {
        Outcome::Reply(text) | Outcome::Deferred(text) => slack_private(&text),
    })
}

/// Slack interactivity: the answer's buttons (`block_actions`), signed
/// like commands; the outcome goes back through `response_url`.
#[utoipa::path(post, path = "/api/v1/webhooks/slack/interactions", tag = "projects",
    params(("X-Slack-Signature" = String, Header, description = "v0=<hex HMAC-SHA256 of v0:timestamp:body>"),
           ("X-Slack-Request-Timestamp" = String, Header, description = "Unix seconds")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "payload=<JSON of a block_actions interaction>"),
    responses((status = 200, description = "acknowledged"),
              (status = 400, body = Problem, description = "not an interaction"),
              (status = 401, body = Problem, description = "bad signature, stale timestamp or a replay"),
              (status = 404, body = Problem, description = "Slack is not configured"),
              (status = 413, body = Problem, description = "body over 256 KiB")))]
pub async fn slack_interactions(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let Some(SlackRequest { form, key }) = slack_request(&state, &req, payload).await? else {
        return Ok(HttpResponse::Ok().finish());
    };
    let v: Value = form
        .iter()
        .find(|(k, _)| k == "payload")
        .and_then(|(_, p)| serde_json::from_str(p).ok())
        .ok_or_else(|| malformed(&state, "slack", "no payload"))?;
    let (Some(user_id), Some(response_url)) =
        (v["user"]["id"].as_str(), v["response_url"].as_str())
    else {
        return Err(malformed(
            &state,
            "slack",
            "user and response_url are required",
        ));
    };
    check_response_url(&state, response_url)?;
    once(&state, "slack", key).await?;
    let user = ChatUser {
        provider: "slack",
        external: user_id.to_owned(),
        login: v["user"]["username"]
            .as_str()
            .or(v["user"]["name"].as_str())
            .unwrap_or(user_id)
            .to_owned(),
    };
    let action = &v["actions"][0];
    let custom = match (action["action_id"].as_str(), action["value"].as_str()) {
        (Some(a), Some(value)) => format!("{a}:{value}"),
        _ => String::new(),
    };
    let (reply, name) = run_button(&state, user.clone(), &custom).await?;
    state.metrics.inbound("slack", name);
    let target = response_url.to_owned();
    let job = match reply {
        PressReply::Text(text) => ChatReply {
            target,
            text,
            link_for: None,
        },
        // The job makes the link, so its token never sits in a payload.
        PressReply::NeedsLink => ChatReply {
            target,
            text: String::new(),
            link_for: Some((user.external.clone(), user.login.clone())),
        },
    };
    state
        .db(move |conn| {
            job.enqueue(conn)?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().finish())
}
