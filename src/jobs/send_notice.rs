//! Mails a user a notice about their account (`job_payloads::SendNotice`):
//! a project's handover, a ban and how to appeal it.

use super::JobContext;
use crate::job_payloads::SendNotice;
use askama::Template;
use guildhall_jobs::BackgroundJob;

#[derive(Template)]
#[template(path = "mail/notice.txt", config = "src/web/askama.toml")]
struct NoticeText<'a> {
    name: &'a str,
    paragraphs: Vec<&'a str>,
    url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/notice.html", config = "src/web/askama.toml")]
struct NoticeHtml<'a> {
    subject: &'a str,
    name: &'a str,
    paragraphs: Vec<&'a str>,
    url: &'a str,
}

impl BackgroundJob for SendNotice {
    const JOB_NAME: &'static str = "send_notice";
    const DEDUPLICATED: bool = false;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let user = crate::domain::users::get(&mut *ctx.pool.get()?, self.user_id)
            .map_err(|e| anyhow::anyhow!("user {}: {e}", self.user_id))?;
        // Nothing is mailed to an address nobody proved (or to an account
        // made for an imported author).
        if user.email_verified_at.is_none() || !user.can_login {
            tracing::info!(
                user_id = user.id,
                "notice not sent: the address is not verified"
            );
            return Ok(());
        }
        let Ok(to) = user.email.parse() else {
            tracing::warn!(
                user_id = user.id,
                "notice not sent: the address does not parse"
            );
            return Ok(());
        };
        let url = format!("{}{}", ctx.public_url.trim_end_matches('/'), self.link);
        // A ban is appealed by replying, when replies are received here.
        let reply_to = self
            .appeal_ban
            .and_then(|ban| ctx.mail.appeal_address(ban, self.user_id));
        let text = match (self.appeal_ban, &reply_to) {
            (Some(_), None) => format!(
                "{}\n\nReplies to this mail are not received on this Guildhall: to appeal, write to the project's maintainers or the platform's moderators another way.",
                self.text
            ),
            _ => self.text.clone(),
        };
        let paragraphs: Vec<&str> = text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let sent = ctx.mail.send(crate::mail::Outgoing {
            to,
            subject: self.subject.clone(),
            text: NoticeText {
                name: &user.display_name,
                paragraphs: paragraphs.clone(),
                url: &url,
            }
            .render()?,
            html: NoticeHtml {
                subject: &self.subject,
                name: &user.display_name,
                paragraphs,
                url: &url,
            }
            .render()?,
            ticket: None,
            unsubscribe: None,
            reply_to,
            auto_reply: false,
        });
        match sent {
            Err(e) if crate::mail::is_permanent(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "notice refused by the mail server");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}
