//! Mails the link that verifies a user's address.

use super::JobContext;
use crate::job_payloads::SendVerificationEmail;
use askama::Template;
use guildhall_jobs::BackgroundJob;

#[derive(Template)]
#[template(path = "mail/verify.txt", config = "src/web/askama.toml")]
struct VerifyText<'a> {
    name: &'a str,
    link: &'a str,
    days: i64,
}

#[derive(Template)]
#[template(path = "mail/verify.html", config = "src/web/askama.toml")]
struct VerifyHtml<'a> {
    name: &'a str,
    link: &'a str,
    days: i64,
}

impl BackgroundJob for SendVerificationEmail {
    const JOB_NAME: &'static str = "send_verification_email";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let user = {
            let mut conn = ctx.pool.get()?;
            crate::domain::users::get(&mut conn, self.user_id)
                .map_err(|e| anyhow::anyhow!("user {}: {e}", self.user_id))?
        };
        if user.email_verified_at.is_some() || !user.can_login {
            return Ok(());
        }
        let expires = (chrono::Utc::now() + chrono::Duration::days(crate::mail::VERIFY_LINK_DAYS))
            .timestamp();
        let link = ctx
            .mail
            .verify_link(user.id, &user.email_normalized, expires);
        let (name, days) = (user.display_name.as_str(), crate::mail::VERIFY_LINK_DAYS);
        let to = format!(
            "{} <{}>",
            user.display_name.replace(['<', '>', '"'], ""),
            user.email
        )
        .parse()
        .or_else(|_| user.email.parse())
        .map_err(|e| anyhow::anyhow!("user {}'s address: {e}", user.id))?;
        // No connection is held while the mail server answers.
        ctx.mail.send(crate::mail::Outgoing {
            to,
            subject: "Verify your email address for Guildhall".into(),
            ticket: None,
            unsubscribe: None,
            reply_to: None,
            auto_reply: false,
            text: VerifyText {
                name,
                link: &link,
                days,
            }
            .render()?,
            html: VerifyHtml {
                name,
                link: &link,
                days,
            }
            .render()?,
        })?;
        tracing::info!(user_id = user.id, "verification mail sent");
        Ok(())
    }
}
