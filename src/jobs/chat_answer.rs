//! Answers to chat questions and replies to chat buttons, sent after the
//! request was acknowledged (Discord wants an answer within 3 s, Slack
//! within 3 s; the AI lane may take longer).

use super::JobContext;
use crate::integrations::chat::Message;
use crate::job_payloads::{ChatAnswer, ChatReply};
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for ChatAnswer {
    const JOB_NAME: &'static str = "chat_answer";
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        use crate::domain::ai::{AiAnswer, Grounding};
        let grounding = if self.sources.is_empty() {
            Grounding::Nothing(AiAnswer {
                answer: None,
                citations: Vec::new(),
                confidence: self.confidence,
                source: "none",
                note: self.note.clone(),
            })
        } else {
            Grounding::Sources {
                confidence: self.confidence,
                sources: self.sources.clone(),
            }
        };
        // The model, if configured, may take seconds: no connection held.
        let answer = crate::domain::ai::compose(grounding, &self.question, "", ctx.ai.as_ref());
        let message = Message {
            text: crate::channels::chat::answer_text(&answer, &self.project, &ctx.public_url),
            buttons: Some(self.question_id),
        };
        match self.provider.as_str() {
            "discord" => ctx.chat.discord_followup(&self.target, &message),
            _ => ctx.chat.slack_respond(&self.target, &message),
        }
    }
}

impl BackgroundJob for ChatReply {
    const JOB_NAME: &'static str = "chat_reply";
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let text = match &self.link_for {
            Some((external, login)) => {
                let user = crate::channels::chat::ChatUser {
                    provider: "slack",
                    external: external.clone(),
                    login: login.clone(),
                };
                let url =
                    crate::channels::chat::link_url(&mut *ctx.pool.get()?, &user, &ctx.public_url)
                        .map_err(|e| anyhow::anyhow!("link: {e}"))?;
                crate::channels::chat::needs_link_text(&url)
            }
            None => self.text.clone(),
        };
        ctx.chat.slack_respond(
            &self.target,
            &Message {
                text,
                buttons: None,
            },
        )
    }
}
