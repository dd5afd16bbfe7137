//! Outbound mail: SMTP through lettre (rustls) when `GUILDHALL_SMTP_URL` is
//! set, otherwise `.eml` files in `<data_dir>/outbox/` (the embedded
//! default, so a fresh checkout can read what it would have sent). Bodies
//! come from askama templates (plain text and HTML). Also the signed links
//! mail carries: an address is verified by one.

pub mod pipe;

use crate::config::Config;
use anyhow::Context as _;
use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport as _};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// How long a verification link works.
pub const VERIFY_LINK_DAYS: i64 = 7;

enum Transport {
    Smtp(Box<SmtpTransport>),
    Outbox(PathBuf),
}

/// The mail service: one per process.
pub struct Mail {
    transport: Transport,
    from: Mailbox,
    public_url: String,
    link_key: [u8; 32],
    reply_domain: Option<String>,
    authserv_id: Option<String>,
}

/// What a genuine reply address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyAddress {
    /// The ticket.
    pub ticket: i64,
    /// The user it was made for.
    pub user: i64,
    /// Made for a team-only note's mail: replies are internal notes.
    pub internal: bool,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
        };
        f.debug_struct("Mail")
            .field("transport", &transport)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// A mail to send: one recipient, a subject, text and HTML.
pub struct Outgoing {
    /// The recipient.
    pub to: Mailbox,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// The ticket it is about: its mails form one thread
    /// (`In-Reply-To`/`References` name the ticket's thread root).
    pub ticket: Option<i64>,
    /// One-click unsubscribe URL (RFC 8058), muting what the mail is about.
    pub unsubscribe: Option<String>,
    /// Where a reply goes (reply by email), when it should not go to From.
    pub reply_to: Option<Mailbox>,
    /// An automatic answer to a mail received (`Auto-Submitted:
    /// auto-replied`); otherwise `auto-generated` (RFC 3834): either way
    /// vacation responders and our own inbound side leave it alone.
    pub auto_reply: bool,
}

/// `Auto-Submitted` (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted(&'static str);

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(if s.trim() == "auto-replied" {
            "auto-replied"
        } else {
            "auto-generated"
        }))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

/// `List-Unsubscribe` (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(
            Self::name(),
            "List-Unsubscribe=One-Click".to_owned(),
        )
    }
}

impl Mail {
    /// The mail service `config` describes; the link key is derived from
    /// the server's signing key.
    pub fn from_config(config: &Config) -> anyhow::Result<Mail> {
        let transport = match &config.smtp_url {
            Some(url) => {
                let url = std::str::from_utf8(&url.0).context("GUILDHALL_SMTP_URL")?;
                let smtp = SmtpTransport::from_url(url)
                    .map_err(|_| anyhow::anyhow!("GUILDHALL_SMTP_URL: not a usable SMTP URL"))?
                    .timeout(Some(std::time::Duration::from_secs(20)))
                    .build();
                Transport::Smtp(Box::new(smtp))
            }
            None => Transport::Outbox(config.data_dir.join("outbox")),
        };
        let key = config.jwt_key()?;
        Ok(Mail {
            transport,
            from: config
                .mail_from
                .parse()
                .context("GUILDHALL_MAIL_FROM is not an address")?,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            link_key: Sha256::new()
                .chain_update(b"guildhall mail link key\0")
                .chain_update(&key.0)
                .finalize()
                .into(),
            reply_domain: config.reply_domain.clone(),
            authserv_id: config.inbound_authserv_id.clone(),
        })
    }

    /// Where the outbox is, when there is no SMTP server.
    pub fn outbox(&self) -> Option<&PathBuf> {
        match &self.transport {
            Transport::Outbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// Builds and sends one mail (blocking: call it from a job or the
    /// blocking pool). Returns its Message-ID.
    pub fn send(&self, mail: Outgoing) -> anyhow::Result<String> {
        let domain = self.from.email.domain().to_owned();
        let message_id = format!(
            "<{}.{}@{domain}>",
            chrono::Utc::now().timestamp_micros(),
            crate::auth::tokens::random_token(9)
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mail.to.clone())
            .subject(mail.subject)
            .message_id(Some(message_id.clone()))
            .header(AutoSubmitted(if mail.auto_reply {
                "auto-replied"
            } else {
                "auto-generated"
            }));
        if let Some(reply_to) = mail.reply_to {
            builder = builder.reply_to(reply_to);
        }
        if let Some(ticket) = mail.ticket {
            let root = format!("<ticket-{ticket}@{domain}>");
            builder = builder.in_reply_to(root.clone()).references(root);
        }
        if let Some(url) = mail.unsubscribe {
            builder = builder
                .header(ListUnsubscribe(url))
                .header(ListUnsubscribePost);
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(mail.text),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(mail.html),
                    ),
            )
            .context("building the mail")?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(&message).context("sending through SMTP")?;
                tracing::info!(message_id = %message_id, "mail sent through SMTP");
            }
            Transport::Outbox(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                    crate::auth::tokens::random_token(6)
                );
                let path = dir.join(name);
                std::fs::write(&path, message.formatted())
                    .with_context(|| format!("writing {}", path.display()))?;
                tracing::info!(
                    path = %path.display(),
                    "no SMTP server configured (GUILDHALL_SMTP_URL): mail written to the outbox"
                );
            }
        }
        Ok(message_id)
    }

    fn tag(&self, what: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.link_key).expect("HMAC takes any key length");
        mac.update(what.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The link that verifies `email_normalized` for user `id`, valid until
    /// `expires` (Unix seconds).
    pub fn verify_link(&self, id: i64, email_normalized: &str, expires: i64) -> String {
        let tag = self.tag(&format!("verify:{id}:{email_normalized}:{expires}"));
        format!("{}/verify?u={id}&e={expires}&t={tag}", self.public_url)
    }

    /// The one-click link that mutes ticket `ticket` for user `user`.
    pub fn unsubscribe_link(&self, user: i64, ticket: i64) -> String {
        let tag = self.tag(&format!("mute:{user}:{ticket}"));
        format!(
            "{}/unsubscribe?u={user}&t={ticket}&s={tag}",
            self.public_url
        )
    }

    /// Whether an unsubscribe link is genuine.
    pub fn check_unsubscribe(&self, user: i64, ticket: i64, tag: &str) -> bool {
        self.same(&self.tag(&format!("mute:{user}:{ticket}")), tag)
    }

    fn reply_tag(&self, ticket: i64, user: i64, internal: bool) -> String {
        let kind = if internal { "note" } else { "public" };
        let tag = &self.tag(&format!("reply:{ticket}:{user}:{kind}"))[..20];
        // Hex never holds an `n`: it marks the address of a team-only
        // note's mail, whose replies are posted as internal notes.
        if internal {
            format!("n{tag}")
        } else {
            tag.to_owned()
        }
    }

    /// The reply-by-email address of ticket `ticket` for user `user`
    /// (`t{ticket}.{user}.{tag}@{domain}`), when replies are received.
    /// `internal`: the mail is about a team-only note, and a reply to it is
    /// posted as one.
    pub fn reply_address(&self, ticket: i64, user: i64, internal: bool) -> Option<Mailbox> {
        let domain = self.reply_domain.as_deref()?;
        let tag = self.reply_tag(ticket, user, internal);
        format!("t{ticket}.{user}.{tag}@{domain}").parse().ok()
    }

    /// The address a banned user appeals ban `ban` at by replying
    /// (`a{ban}.{user}.{tag}@{domain}`), when replies are received.
    pub fn appeal_address(&self, ban: i64, user: i64) -> Option<Mailbox> {
        let domain = self.reply_domain.as_deref()?;
        let tag = &self.tag(&format!("appeal:{ban}:{user}"))[..20];
        format!("a{ban}.{user}.{tag}@{domain}").parse().ok()
    }

    /// Reads an appeal address: `Some(Ok((ban, user)))` when it is one of
    /// ours with a genuine tag, `Some(Err(()))` when it has our shape and
    /// domain but a wrong tag, `None` when it is not an appeal address.
    pub fn read_appeal_address(&self, address: &str) -> Option<Result<(i64, i64), ()>> {
        let domain = self.reply_domain.as_deref()?;
        let (local, at) = address.trim().rsplit_once('@')?;
        if !at.eq_ignore_ascii_case(domain) {
            return None;
        }
        let local = local.to_ascii_lowercase();
        let rest = local.strip_prefix('a')?;
        let mut parts = rest.splitn(3, '.');
        let number = |s: &str| {
            (!s.is_empty()
                && s.len() <= 18
                && s.bytes().all(|b| b.is_ascii_digit())
                && !(s.len() > 1 && s.starts_with('0')))
            .then(|| s.parse::<i64>().ok())
            .flatten()
        };
        let (Some(ban), Some(user)) = (number(parts.next()?), number(parts.next()?)) else {
            return Some(Err(()));
        };
        let tag = parts.next()?;
        let want = &self.tag(&format!("appeal:{ban}:{user}"))[..20];
        Some(if self.same(want, tag) {
            Ok((ban, user))
        } else {
            Err(())
        })
    }

    /// The address mail is sent from (lower case).
    pub fn from_address(&self) -> String {
        self.from.email.to_string().to_ascii_lowercase()
    }

    /// What names our mail when a client quotes it: the From address and
    /// display name (lower case; a name under three letters is too common).
    pub fn from_anchors(&self) -> Vec<String> {
        let mut out = vec![self.from_address()];
        if let Some(name) = self.from.name.as_deref().map(str::trim) {
            if name.chars().count() >= 3 {
                out.push(name.to_lowercase());
            }
        }
        out
    }

    /// The reply domain, when replies are received.
    pub fn reply_domain(&self) -> Option<&str> {
        self.reply_domain.as_deref()
    }

    /// The `authserv-id` whose `Authentication-Results` inbound mail must
    /// pass (DMARC, or DKIM aligned with From), when one is configured.
    pub fn inbound_authserv_id(&self) -> Option<&str> {
        self.authserv_id.as_deref()
    }

    /// Reads a reply address: `Some(Ok(reply))` when it is one of ours with
    /// a genuine tag, `Some(Err(()))` when it has our shape and domain but
    /// a wrong tag (forged or mangled), `None` when it is not a reply
    /// address at all.
    pub fn read_reply_address(&self, address: &str) -> Option<Result<ReplyAddress, ()>> {
        let domain = self.reply_domain.as_deref()?;
        let (local, at) = address.trim().rsplit_once('@')?;
        if !at.eq_ignore_ascii_case(domain) {
            return None;
        }
        // Some servers lower-case local parts; the tag is lower-case hex.
        let local = local.to_ascii_lowercase();
        let rest = local.strip_prefix('t')?;
        let mut parts = rest.splitn(3, '.');
        // Plain digits only: one address, one spelling.
        let number = |s: &str| {
            (!s.is_empty()
                && s.len() <= 18
                && s.bytes().all(|b| b.is_ascii_digit())
                && !(s.len() > 1 && s.starts_with('0')))
            .then(|| s.parse::<i64>().ok())
            .flatten()
        };
        let (Some(ticket), Some(user)) = (number(parts.next()?), number(parts.next()?)) else {
            return Some(Err(()));
        };
        let tag = parts.next()?;
        let internal = tag.starts_with('n');
        let want = self.reply_tag(ticket, user, internal);
        Some(if self.same(&want, tag) {
            Ok(ReplyAddress {
                ticket,
                user,
                internal,
            })
        } else {
            Err(())
        })
    }

    /// The address of a ticket's page.
    pub fn ticket_url(&self, ticket: i64) -> String {
        format!("{}/t/{ticket}", self.public_url)
    }

    /// Compares two tags in constant time (by comparing their MACs).
    fn same(&self, a: &str, b: &str) -> bool {
        let mac = |s: &str| {
            let mut m =
                Hmac::<Sha256>::new_from_slice(&self.link_key).expect("HMAC takes any key length");
            m.update(s.as_bytes());
            m.finalize().into_bytes()
        };
        mac(a) == mac(b)
    }

    /// Whether a verification link's parts are genuine and unexpired.
    pub fn check_verify(&self, id: i64, email_normalized: &str, expires: i64, tag: &str) -> bool {
        if expires < chrono::Utc::now().timestamp() {
            return false;
        }
        let want = self.tag(&format!("verify:{id}:{email_normalized}:{expires}"));
        self.same(&want, tag)
    }
}

/// Whether a send failed for good (the server refused the message or the
/// recipient with a 5xx), as opposed to the server being away.
pub fn is_permanent(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<lettre::transport::smtp::Error>()
            .is_some_and(|s| s.is_permanent())
    })
}
