//! Discord's and Slack's REST APIs as Guildhall uses them: completing a
//! deferred answer (Discord's interaction webhook, Slack's `response_url`)
//! and direct messages with updates (the bot tokens). Blocking (ureq): call
//! them from jobs.

use anyhow::{anyhow, Context as _};
use serde_json::{json, Value};
use std::time::Duration;

/// The chat APIs configured.
pub struct Chat {
    discord: Option<crate::config::DiscordSettings>,
    slack: Option<crate::config::SlackSettings>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("discord", &self.discord.is_some())
            .field("slack", &self.slack.is_some())
            .finish()
    }
}

/// A message: text and, for an answer, its three buttons for question
/// `buttons`.
#[derive(Debug, Clone)]
pub struct Message {
    /// Text (Markdown that both render).
    pub text: String,
    /// The question whose buttons it carries.
    pub buttons: Option<i64>,
}

/// The buttons under an answer: (action, label).
pub const BUTTONS: [(&str, &str); 3] = [
    ("solved", "Solved"),
    ("post", "Post as ticket"),
    ("expert", "Ask a paid expert"),
];

/// Discord's message body.
pub fn discord_message(m: &Message) -> Value {
    let mut body =
        json!({"content": cut(&m.text, 1900), "flags": 64, "allowed_mentions": {"parse": []}});
    if let Some(q) = m.buttons {
        let style = |a: &str| match a {
            "solved" => 3,
            "post" => 1,
            _ => 2,
        };
        body["components"] = json!([{
            "type": 1,
            "components": BUTTONS.iter().map(|(a, label)| json!({
                "type": 2, "style": style(a), "label": label, "custom_id": format!("gh:{a}:{q}")
            })).collect::<Vec<_>>()
        }]);
    }
    body
}

/// Slack's message body (private to the asker).
pub fn slack_message(m: &Message) -> Value {
    let text = cut(&m.text, 2900);
    let mut body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    if let Some(q) = m.buttons {
        body["blocks"] = json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": BUTTONS.iter().map(|(a, label)| json!({
                "type": "button", "text": {"type": "plain_text", "text": label},
                "action_id": format!("gh:{a}"), "value": q.to_string()
            })).collect::<Vec<_>>()}
        ]);
    }
    body
}

/// `text` cut to `max` characters.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max - 1).collect::<String>() + "…"
    }
}

impl Chat {
    /// The clients `config` describes.
    pub fn from_config(config: &crate::config::Config) -> Chat {
        Chat {
            discord: config.discord.clone(),
            slack: config.slack.clone(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(15))
                .user_agent("guildhall")
                .build(),
        }
    }

    /// Completes Discord's deferred answer to interaction `token`.
    pub fn discord_followup(&self, token: &str, m: &Message) -> anyhow::Result<()> {
        let d = self.discord.as_ref().context("Discord is not configured")?;
        self.agent
            .request(
                "PATCH",
                &format!(
                    "{}/webhooks/{}/{token}/messages/@original",
                    d.api_base, d.app_id
                ),
            )
            .send_json(discord_message(m))
            .map_err(|e| call_error("Discord interaction webhook", e))?;
        Ok(())
    }

    /// Answers through Slack's `response_url` (only to Slack's hosts, or
    /// under the configured API base for tests).
    pub fn slack_respond(&self, response_url: &str, m: &Message) -> anyhow::Result<()> {
        let s = self.slack.as_ref().context("Slack is not configured")?;
        if !slack_url_ok(response_url, &s.api_base) {
            return Err(anyhow!("refusing a response_url outside Slack"));
        }
        self.agent
            .post(response_url)
            .send_json(slack_message(m))
            .map_err(|e| call_error("Slack response_url", e))?;
        Ok(())
    }

    /// Sends `text` to chat user `external` by direct message; false when
    /// the provider's bot token is not configured.
    pub fn direct_message(
        &self,
        provider: &str,
        external: &str,
        text: &str,
    ) -> anyhow::Result<Delivery> {
        match provider {
            "discord" => {
                let Some((d, token)) = self
                    .discord
                    .as_ref()
                    .and_then(|d| d.bot_token.as_ref().map(|t| (d, t)))
                else {
                    return Ok(Delivery::NotConfigured);
                };
                let auth = format!("Bot {}", std::str::from_utf8(&token.0)?);
                let refused = |code: u16| code < 500 && code != 429;
                let channel = self
                    .agent
                    .post(&format!("{}/users/@me/channels", d.api_base))
                    .set("authorization", &auth)
                    .send_json(json!({"recipient_id": external}));
                let channel: Value = match channel {
                    Ok(r) => r.into_json()?,
                    Err(ureq::Error::Status(code, _)) if refused(code) => {
                        return Ok(Delivery::Refused(format!("Discord DM channel: {code}")))
                    }
                    Err(e) => return Err(call_error("Discord DM channel", e)),
                };
                let id = channel["id"]
                    .as_str()
                    .context("Discord DM channel: no id")?;
                // No masked links in the bot's messages.
                let text = text.replace("](", "]\u{200b}(");
                let sent = self
                    .agent
                    .post(&format!("{}/channels/{id}/messages", d.api_base))
                    .set("authorization", &auth)
                    .send_json(
                        json!({"content": cut(&text, 1900), "allowed_mentions": {"parse": []}}),
                    );
                match sent {
                    Ok(_) => Ok(Delivery::Sent),
                    // Direct messages turned off, or the user gone.
                    Err(ureq::Error::Status(code, _)) if refused(code) => {
                        Ok(Delivery::Refused(format!("Discord message: {code}")))
                    }
                    Err(e) => Err(call_error("Discord message", e)),
                }
            }
            "slack" => {
                let Some((s, token)) = self
                    .slack
                    .as_ref()
                    .and_then(|s| s.bot_token.as_ref().map(|t| (s, t)))
                else {
                    return Ok(Delivery::NotConfigured);
                };
                let user = external;
                // Slack reads <…> as links and mentions.
                let text = text
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let answer: Value = self
                    .agent
                    .post(&format!("{}/chat.postMessage", s.api_base))
                    .set(
                        "authorization",
                        &format!("Bearer {}", std::str::from_utf8(&token.0)?),
                    )
                    .send_json(json!({"channel": user, "text": cut(&text, 2900)}))
                    .map_err(|e| call_error("Slack chat.postMessage", e))?
                    .into_json()?;
                match (answer["ok"] == true, answer["error"].as_str()) {
                    (true, _) => Ok(Delivery::Sent),
                    (
                        false,
                        Some(
                            "ratelimited"
                            | "internal_error"
                            | "fatal_error"
                            | "service_unavailable"
                            | "request_timeout",
                        ),
                    ) => Err(anyhow!(
                        "Slack chat.postMessage: {}",
                        answer["error"].as_str().unwrap_or_default()
                    )),
                    (false, error) => Ok(Delivery::Refused(format!(
                        "Slack chat.postMessage: {}",
                        error.unwrap_or("not ok")
                    ))),
                }
            }
            other => Err(anyhow!("unknown chat provider {other}")),
        }
    }
}

/// What became of a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sent.
    Sent,
    /// The provider's bot token is not configured.
    NotConfigured,
    /// Refused for good (direct messages off, user gone, bad token).
    Refused(String),
}

/// Whether `url` is one Slack gives as `response_url` (https on
/// hooks.slack.com), or under the configured API base (a local fake).
pub fn slack_url_ok(url: &str, api_base: &str) -> bool {
    url.starts_with("https://hooks.slack.com/")
        || (!api_base.starts_with("https://slack.com") && url.starts_with(&format!("{api_base}/")))
}

/// A failed call, with the status but never a token or URL secret.
fn call_error(what: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Status(code, _) => anyhow!("{what}: {code}"),
        ureq::Error::Transport(t) => anyhow!("{what}: {}", t.kind()),
    }
}
