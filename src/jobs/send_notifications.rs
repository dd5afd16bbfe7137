//! Dispatches what happened to tickets into notifications and emails the
//! ones to send at once: to verified addresses only, never to someone who
//! has acted on the ticket since, each claimed by one worker.

use super::JobContext;
use crate::domain::notifications::{self, EMAIL};
use crate::job_payloads::SendNotifications;
use askama::Template;
use guildhall_jobs::BackgroundJob;

#[derive(Template)]
#[template(path = "mail/notification.txt", config = "src/web/askama.toml")]
struct NotificationText<'a> {
    name: &'a str,
    summary: &'a str,
    title: &'a str,
    url: &'a str,
    unsubscribe: &'a str,
    can_reply: bool,
}

#[derive(Template)]
#[template(path = "mail/notification.html", config = "src/web/askama.toml")]
struct NotificationHtml<'a> {
    name: &'a str,
    summary: &'a str,
    title: &'a str,
    url: &'a str,
    unsubscribe: &'a str,
    can_reply: bool,
}

/// How many mails one run sends at most.
const PER_RUN: i64 = 200;

impl BackgroundJob for SendNotifications {
    const JOB_NAME: &'static str = "send_notifications";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let list = {
            let mut conn = ctx.pool.get()?;
            notifications::reap(&mut conn, chrono::Duration::minutes(10))?;
            notifications::dispatch(&mut conn, EMAIL)
                .map_err(|e| anyhow::anyhow!("dispatching notifications: {e}"))?;
            notifications::pending(&mut conn, EMAIL, PER_RUN)?
        };
        for n in list {
            let prepared = {
                let mut conn = ctx.pool.get()?;
                if !notifications::claim(&mut conn, n.id)? {
                    continue;
                }
                let user = crate::domain::users::get(&mut conn, n.user_id)
                    .map_err(|e| anyhow::anyhow!("user {}: {e}", n.user_id))?;
                let may_see = notifications::still_may_see(&mut conn, &n)
                    .map_err(|e| anyhow::anyhow!("notification {}: {e}", n.id))?;
                let told = may_see
                    && user.email_verified_at.is_some()
                    && user.can_login
                    && !notifications::active_since(
                        &mut conn,
                        n.user_id,
                        n.ticket_id,
                        n.happened_at,
                    )?;
                if !told {
                    notifications::finish(&mut conn, n.id, "skipped")?;
                    continue;
                }
                let (title, project) = notifications::subject_of(&mut conn, n.ticket_id)?;
                let internal = notifications::about_internal_note(&mut conn, &n)?;
                (user, title, project, internal)
            };
            let (user, title, project, internal) = prepared;
            let url = ctx.mail.ticket_url(n.ticket_id);
            let unsubscribe = ctx.mail.unsubscribe_link(user.id, n.ticket_id);
            let name = user.display_name.as_str();
            let reply_to = ctx.mail.reply_address(n.ticket_id, user.id, internal);
            let to = user
                .email
                .parse()
                .map_err(|e| anyhow::anyhow!("user {}'s address: {e}", user.id))?;
            let mail = crate::mail::Outgoing {
                to,
                subject: format!("[{project}] {title}"),
                text: NotificationText {
                    name,
                    summary: &n.summary,
                    title: &title,
                    url: &url,
                    unsubscribe: &unsubscribe,
                    can_reply: reply_to.is_some(),
                }
                .render()?,
                html: NotificationHtml {
                    name,
                    summary: &n.summary,
                    title: &title,
                    url: &url,
                    unsubscribe: &unsubscribe,
                    can_reply: reply_to.is_some(),
                }
                .render()?,
                ticket: Some(n.ticket_id),
                unsubscribe: Some(unsubscribe.clone()),
                reply_to,
                auto_reply: false,
            };
            // No connection is held while the mail server answers.
            match ctx.mail.send(mail) {
                Ok(_) => notifications::finish(&mut *ctx.pool.get()?, n.id, "sent")?,
                // The server refused this recipient for good: record it and
                // go on, so one bad address never stalls everyone's mail.
                Err(e) if crate::mail::is_permanent(&e) => {
                    tracing::warn!(notification = n.id, error = %format!("{e:#}"), "mail refused for good");
                    notifications::finish(&mut *ctx.pool.get()?, n.id, "failed")?;
                }
                // The server is away: give it back and retry later.
                Err(e) => {
                    notifications::release(&mut *ctx.pool.get()?, n.id)?;
                    return Err(e.context(format!("notification {}", n.id)));
                }
            }
        }
        // Chat after mail, and a chat failure never holds mail up.
        if let Err(e) = send_chat_updates(ctx) {
            tracing::warn!(error = %format!("{e:#}"), "sending chat updates failed; next run retries");
        }
        Ok(())
    }
}

/// Updates on tickets posted from Discord or Slack go back to the chat, to
/// the person who posted them, by direct message (when the provider's bot
/// token is configured; otherwise they are skipped).
fn send_chat_updates(ctx: &JobContext) -> anyhow::Result<()> {
    use crate::domain::notifications::CHAT;
    let list = {
        let mut conn = ctx.pool.get()?;
        notifications::dispatch(&mut conn, CHAT)
            .map_err(|e| anyhow::anyhow!("dispatching chat updates: {e}"))?;
        notifications::pending(&mut conn, CHAT, PER_RUN)?
    };
    for n in list {
        let target = {
            let mut conn = ctx.pool.get()?;
            if !notifications::claim(&mut conn, n.id)? {
                continue;
            }
            let may_see = notifications::still_may_see(&mut conn, &n)
                .map_err(|e| anyhow::anyhow!("notification {}: {e}", n.id))?;
            let origin = crate::channels::chat::origin(&mut conn, n.ticket_id, n.user_id)?;
            match origin.filter(|_| may_see) {
                Some(o) => {
                    let (title, _) = notifications::subject_of(&mut conn, n.ticket_id)?;
                    Some((o, title))
                }
                None => {
                    notifications::finish(&mut conn, n.id, "skipped")?;
                    None
                }
            }
        };
        let Some(((provider, external), title)) = target else {
            continue;
        };
        let text = format!(
            "Ticket #{} “{title}”: {}\n{}",
            n.ticket_id,
            n.summary,
            ctx.mail.ticket_url(n.ticket_id)
        );
        use crate::integrations::chat::Delivery;
        match ctx.chat.direct_message(&provider, &external, &text) {
            Ok(delivery) => {
                let status = match delivery {
                    Delivery::Sent => "sent",
                    Delivery::NotConfigured => "skipped",
                    Delivery::Refused(why) => {
                        tracing::info!(notification = n.id, why = %why, "a chat update was refused");
                        "failed"
                    }
                };
                let mut conn = ctx.pool.get()?;
                notifications::finish(&mut conn, n.id, status)?;
            }
            Err(e) => {
                tracing::warn!(notification = n.id, error = %e, "a chat update failed; it will be retried");
                notifications::release(&mut *ctx.pool.get()?, n.id)?;
            }
        }
    }
    Ok(())
}
