//! Tells the sender of a mail to a ticket's reply address that it was not
//! posted, and why (an automatic answer: RFC 3834's `auto-replied`).

use super::JobContext;
use crate::job_payloads::SendInboundRefusal;
use askama::Template;
use guildhall_jobs::BackgroundJob;

#[derive(Template)]
#[template(path = "mail/refusal.txt", config = "src/web/askama.toml")]
struct RefusalText<'a> {
    ticket_id: i64,
    reason: &'a str,
    url: &'a str,
}

#[derive(Template)]
#[template(path = "mail/refusal.html", config = "src/web/askama.toml")]
struct RefusalHtml<'a> {
    ticket_id: i64,
    reason: &'a str,
    url: &'a str,
}

impl BackgroundJob for SendInboundRefusal {
    const JOB_NAME: &'static str = "send_inbound_refusal";
    const DEDUPLICATED: bool = false;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let Ok(to) = self.to.parse() else {
            tracing::warn!("refusal not sent: the sender's address does not parse");
            return Ok(());
        };
        let url = ctx.mail.ticket_url(self.ticket_id);
        let (ticket_id, reason) = (self.ticket_id, self.reason.as_str());
        let sent = ctx.mail.send(crate::mail::Outgoing {
            to,
            subject: format!("Your mail to ticket #{ticket_id} was not posted"),
            text: RefusalText {
                ticket_id,
                reason,
                url: &url,
            }
            .render()?,
            html: RefusalHtml {
                ticket_id,
                reason,
                url: &url,
            }
            .render()?,
            ticket: None,
            unsubscribe: None,
            reply_to: None,
            auto_reply: true,
        });
        match sent {
            // A refused address is not worth retrying.
            Err(e) if crate::mail::is_permanent(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "refusal refused by the mail server");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}
