//! Sends the daily digests that are due, each at its person's local hour.

use super::JobContext;
use crate::db::DbPool;
use crate::domain::digest::{self, Digest};
use crate::job_payloads::SendDigests;
use crate::mail::Mail;
use askama::Template;
use chrono::{DateTime, Utc};
use guildhall_jobs::BackgroundJob;

#[derive(Template)]
#[template(path = "mail/digest.txt", config = "src/web/askama.toml")]
struct DigestText<'a> {
    name: &'a str,
    d: &'a Digest,
    base: &'a str,
}

#[derive(Template)]
#[template(path = "mail/digest.html", config = "src/web/askama.toml")]
struct DigestHtml<'a> {
    name: &'a str,
    d: &'a Digest,
    base: &'a str,
}

/// Sends every digest due at `at` (the job passes the clock's time; tests
/// pass their own). Returns how many were sent.
pub fn send_due(pool: &DbPool, mail: &Mail, at: DateTime<Utc>) -> anyhow::Result<usize> {
    let due = digest::due(&mut *pool.get()?, at).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sent = 0;
    for d in due {
        let user = crate::domain::users::get(&mut *pool.get()?, d.user_id)
            .map_err(|e| anyhow::anyhow!("user {}: {e}", d.user_id))?;
        let base = mail.ticket_url(0);
        let base = base.trim_end_matches("/t/0");
        let name = user.display_name.as_str();
        let news: usize = d.tickets.iter().map(|t| t.lines.len()).sum();
        let outgoing = crate::mail::Outgoing {
            to: user
                .email
                .parse()
                .map_err(|e| anyhow::anyhow!("user {}'s address: {e}", user.id))?,
            subject: format!(
                "Your Guildhall digest for {}: {news} update{}",
                d.date.format("%Y-%m-%d"),
                if news == 1 { "" } else { "s" }
            ),
            text: DigestText { name, d: &d, base }.render()?,
            html: DigestHtml { name, d: &d, base }.render()?,
            ticket: None,
            unsubscribe: None,
            reply_to: None,
            auto_reply: false,
        };
        // No connection is held while the mail server answers.
        match mail.send(outgoing) {
            Ok(_) => {
                digest::delivered(&mut *pool.get()?, &d)?;
                sent += 1;
            }
            Err(e) => {
                digest::undelivered(&mut *pool.get()?, &d)?;
                return Err(e.context(format!("digest for user {}", d.user_id)));
            }
        }
    }
    Ok(sent)
}

impl BackgroundJob for SendDigests {
    const JOB_NAME: &'static str = "send_digests";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = send_due(&ctx.pool, &ctx.mail, Utc::now())?;
        if n > 0 {
            tracing::info!(sent = n, "daily digests sent");
        }
        Ok(())
    }
}
