//! Reply by email: a mail received at a ticket's reply address
//! (`t{ticket}.{user}.{tag}@{reply domain}`) becomes a message on the ticket
//! from that user, with the quoted history cut off. Everything else is
//! dropped and counted: auto-replies, bounces, a second delivery of the
//! same message, a sender who is not the address's user, a forged tag,
//! mail for no reply address, an empty or malformed message.

use crate::db::schema::inbound_emails;
use crate::db::{write_tx, DbConnection};
use crate::domain::{tickets, users};
use crate::error::{AppError, AppResult};
use crate::mail::{Mail, ReplyAddress};
use chrono::Utc;
use diesel::prelude::*;
use mail_parser::{Header, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// The largest message accepted (bigger ones are dropped unread).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// How many "your mail was not posted" answers one address gets a day, and
/// one reply address causes a day: a forged From would otherwise turn us
/// into a mail cannon.
const ANSWERS_PER_ADDRESS_PER_DAY: i64 = 3;
/// How many such answers the whole service sends a day.
const ANSWERS_PER_DAY: i64 = 500;

/// What became of a received mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Posted on the ticket.
    Posted,
    /// Recorded as the appeal of a ban.
    Appealed,
    /// The secret was wrong (never reaches this module's parser).
    Unauthorized,
    /// Larger than [`MAX_BYTES`].
    Oversize,
    /// Not a mail we can read (no single From, no headers).
    Malformed,
    /// A vacation message or other automatic answer (or a null sender).
    AutoReply,
    /// A delivery-status report.
    Bounce,
    /// The receiving server's `Authentication-Results` do not vouch for the
    /// sender (only with `GUILDHALL_INBOUND_AUTHSERV_ID`).
    Unauthenticated,
    /// The same message arrived before for the same address.
    Duplicate,
    /// Not addressed to any reply address.
    UnknownRecipient,
    /// Addressed to something shaped like a reply address whose tag is wrong.
    BadAddress,
    /// From someone other than the address's user.
    SenderMismatch,
    /// The user may not post there (any more), or the ticket refuses it.
    Rejected,
    /// Nothing above the quoted part.
    Empty,
}

impl Outcome {
    /// The name in responses, the table and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Posted => "posted",
            Outcome::Appealed => "appealed",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Oversize => "oversize",
            Outcome::Malformed => "malformed",
            Outcome::AutoReply => "auto_reply",
            Outcome::Bounce => "bounce",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Duplicate => "duplicate",
            Outcome::UnknownRecipient => "unknown_recipient",
            Outcome::BadAddress => "bad_address",
            Outcome::SenderMismatch => "sender_mismatch",
            Outcome::Rejected => "rejected",
            Outcome::Empty => "empty",
        }
    }
}

/// The result of [`receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What became of it.
    pub outcome: Outcome,
    /// The ticket it was for, when known.
    pub ticket_id: Option<i64>,
    /// The message posted.
    pub message_id: Option<i64>,
    /// Who was told it was not posted (a mail queued in the same
    /// transaction as the record).
    pub answered_to: Option<String>,
}

impl Received {
    fn dropped(outcome: Outcome) -> Received {
        Received {
            outcome,
            ticket_id: None,
            message_id: None,
            answered_to: None,
        }
    }
}

/// A message read, before any database work: who sent it, to which
/// addresses, what they wrote, or why it is dropped already.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The From address, lower case.
    sender: String,
    /// Where an automatic answer may go (Return-Path, else From).
    answer_to: Option<String>,
    /// The Message-ID, or a hash of the message when it has none.
    message_ref: String,
    /// Dropped before looking at the recipient.
    early: Option<Outcome>,
    /// Candidate reply addresses, in order of trust.
    candidates: Vec<String>,
    /// The text to post.
    body: String,
}

impl Parsed {
    fn dropped(outcome: Outcome) -> Parsed {
        Parsed {
            sender: String::new(),
            answer_to: None,
            message_ref: String::new(),
            early: Some(outcome),
            candidates: Vec::new(),
            body: String::new(),
        }
    }
}

/// Reads one raw RFC 822 message (no database: call it before taking a
/// connection). `envelope_to` is the SMTP recipient when the mail server
/// passes it; it is then the only address considered (the headers are the
/// sender's to write).
pub fn parse(raw: &[u8], mail: &Mail, envelope_to: Option<&str>) -> Parsed {
    if raw.len() > MAX_BYTES {
        return Parsed::dropped(Outcome::Oversize);
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return Parsed::dropped(Outcome::Malformed);
    };
    // Exactly one From header with exactly one address: anything else is
    // how a forged sender slips past a filter that reads another one.
    let froms: Vec<&Header<'_>> = message
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .collect();
    let sender = match froms.as_slice() {
        [one] => match &one.value {
            HeaderValue::Address(a) if a.iter().count() == 1 => a
                .first()
                .and_then(|a| a.address())
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| a.contains('@') && a.len() <= 320),
            _ => None,
        },
        _ => None,
    };
    let Some(sender) = sender else {
        return Parsed::dropped(Outcome::Malformed);
    };
    // The topmost Return-Path: the one the delivering server wrote.
    let return_path = message
        .headers_raw()
        .find(|(name, _)| name.eq_ignore_ascii_case("Return-Path"))
        .map(|(_, v)| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim()
                .to_ascii_lowercase()
        });
    let message_ref = match message.message_id() {
        Some(id) if !id.trim().is_empty() && id.len() <= 900 => format!("<{}>", id.trim()),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    let early = classify(&message, &sender, mail)
        .err()
        // The null sender: bounces and automatic answers use it.
        .or_else(|| (return_path.as_deref() == Some("")).then_some(Outcome::AutoReply))
        .or_else(|| {
            mail.inbound_authserv_id()
                .filter(|id| !authenticated(&message, id, &sender))
                .map(|_| Outcome::Unauthenticated)
        });
    if let Some(outcome) = early {
        return Parsed::dropped(outcome);
    }
    let candidates = match envelope_to {
        Some(to) => vec![to.trim().trim_matches(['<', '>']).to_owned()],
        None => header_recipients(&message),
    };
    let anchors = mail.from_anchors();
    let mut body = reply_text(&message, &anchors);
    // A backstop: our own mail's unsubscribe link or footer means the quote
    // was not recognised, and posting it would publish the link and the
    // quote.
    if body.contains("/unsubscribe?u=")
        || body
            .to_lowercase()
            .contains("because you follow this ticket")
    {
        body.clear();
    }
    // An automatic answer goes to the envelope sender, and only when it is
    // in the From domain: a free-to-choose Return-Path elsewhere would
    // make us mail a third party.
    let domain = |a: &str| a.rsplit('@').next().unwrap_or("").to_owned();
    let answer_to = match return_path {
        Some(rp) if domain(&rp) == domain(&sender) => Some(rp),
        Some(_) => None,
        None => Some(sender.clone()),
    };
    Parsed {
        answer_to,
        sender,
        message_ref,
        early: None,
        candidates,
        body,
    }
}

/// Decides what a parsed mail becomes and, when it is a genuine reply,
/// posts it; records it (once per message and address) with any answer
/// to the sender queued in the same transaction.
pub fn receive(conn: &mut DbConnection, mail: &Mail, p: &Parsed) -> AppResult<Received> {
    if let Some(outcome) = p.early {
        return Ok(Received::dropped(outcome));
    }
    let reply = match recipient(&p.candidates, mail) {
        Ok(Address::Ticket(r)) => r,
        // An appeal of a ban, mailed to its notice's Reply-To.
        Ok(Address::Appeal { ban, user }) => return receive_appeal(conn, p, ban, user),
        Err(outcome) => return Ok(Received::dropped(outcome)),
    };
    let key = format!(
        "{}|t{}.u{}{}",
        p.message_ref,
        reply.ticket,
        reply.user,
        if reply.internal { ".note" } else { "" }
    );
    let user = match users::get(conn, reply.user) {
        Ok(u) => u,
        Err(AppError::NotFound(_)) => return Ok(Received::dropped(Outcome::BadAddress)),
        Err(e) => return Err(e),
    };
    if users::normalize_email(&p.sender) != user.email_normalized {
        return settle(
            conn,
            &key,
            p,
            reply,
            Outcome::SenderMismatch,
            p.answer_to.as_deref(),
            "it came from an address other than the one this ticket's mail was sent to",
        );
    }
    if user.email_verified_at.is_none() || !user.can_login {
        // Nothing is mailed to an unverified address.
        return Ok(Received {
            outcome: Outcome::Rejected,
            ticket_id: Some(reply.ticket),
            message_id: None,
            answered_to: None,
        });
    }
    if p.body.trim().is_empty() {
        return settle(
            conn,
            &key,
            p,
            reply,
            Outcome::Empty,
            Some(&user.email),
            "we could not find text of yours above the quoted part of the mail",
        );
    }
    // The record and the message together: a second delivery racing this
    // one finds the record and posts nothing.
    let posted = write_tx(conn, |conn| {
        if !insert_record(conn, &key, p, reply, Outcome::Posted, None)? {
            return Ok(None);
        }
        let m = tickets::post_message_via(
            conn,
            reply.ticket,
            reply.user,
            Some(&p.body),
            reply.internal,
            None,
            "email",
        )?;
        diesel::update(inbound_emails::table.filter(inbound_emails::message_key.eq(&key)))
            .set(inbound_emails::message_id.eq(m.id))
            .execute(conn)?;
        Ok(Some(m.id))
    });
    match posted {
        Ok(Some(id)) => {
            tracing::info!(
                ticket_id = reply.ticket,
                user_id = reply.user,
                message_id = id,
                "reply by email posted"
            );
            Ok(Received {
                outcome: Outcome::Posted,
                ticket_id: Some(reply.ticket),
                message_id: Some(id),
                answered_to: None,
            })
        }
        Ok(None) => Ok(Received::dropped(Outcome::Duplicate)),
        // The ticket refused it (cancelled, the user no longer on it or on
        // its team, the text too long): record that, and tell the person.
        Err(e) if actix_web::ResponseError::status_code(&e).is_client_error() => {
            let why = match &e {
                AppError::Validation(_) => "the text is longer than 50,000 characters".into(),
                AppError::NotFound(_) => "you can no longer see the ticket".into(),
                other => other.to_string(),
            };
            settle(
                conn,
                &key,
                p,
                reply,
                Outcome::Rejected,
                Some(&user.email),
                &format!("the ticket did not take it: {why}"),
            )
        }
        Err(e) => Err(e),
    }
}

/// A mail to a ban's appeal address: from the banned user's own verified
/// address, with text, it becomes the appeal (once per message).
fn receive_appeal(conn: &mut DbConnection, p: &Parsed, ban: i64, user: i64) -> AppResult<Received> {
    let u = match users::get(conn, user) {
        Ok(u) => u,
        Err(AppError::NotFound(_)) => return Ok(Received::dropped(Outcome::BadAddress)),
        Err(e) => return Err(e),
    };
    if users::normalize_email(&p.sender) != u.email_normalized {
        return Ok(Received::dropped(Outcome::SenderMismatch));
    }
    if u.email_verified_at.is_none() || !u.can_login {
        return Ok(Received::dropped(Outcome::Rejected));
    }
    if p.body.trim().is_empty() {
        return Ok(Received::dropped(Outcome::Empty));
    }
    let outcome = match crate::domain::appeals::receive(conn, ban, user, &p.message_ref, &p.body) {
        Ok(crate::domain::appeals::Received::Recorded(id)) => {
            tracing::info!(appeal = id, ban, user_id = user, "ban appealed by email");
            Outcome::Appealed
        }
        Ok(crate::domain::appeals::Received::Duplicate) => Outcome::Duplicate,
        Ok(crate::domain::appeals::Received::TooSoon) => Outcome::Rejected,
        Ok(crate::domain::appeals::Received::NotBanned) | Err(AppError::NotFound(_)) => {
            Outcome::Rejected
        }
        Err(e) => return Err(e),
    };
    Ok(Received::dropped(outcome))
}

/// Records a mail to a genuine address that was not posted and, within
/// the limits, queues the answer to `answer_to`, in one transaction; a
/// second delivery comes back as [`Outcome::Duplicate`] and is not
/// answered again.
fn settle(
    conn: &mut DbConnection,
    key: &str,
    p: &Parsed,
    reply: ReplyAddress,
    outcome: Outcome,
    answer_to: Option<&str>,
    reason: &str,
) -> AppResult<Received> {
    write_tx(conn, |conn| {
        let answer = match answer_to {
            Some(a) if may_answer(conn, a, reply)? => Some(a.to_ascii_lowercase()),
            _ => None,
        };
        let counted = answer.as_deref().map(answer_key);
        if !insert_record(conn, key, p, reply, outcome, counted.as_deref())? {
            return Ok(Received::dropped(Outcome::Duplicate));
        }
        if let Some(to) = &answer {
            guildhall_jobs::BackgroundJob::enqueue(
                &crate::job_payloads::SendInboundRefusal {
                    to: to.clone(),
                    ticket_id: reply.ticket,
                    reason: reason.to_owned(),
                },
                conn,
            )?;
        }
        Ok(Received {
            outcome,
            ticket_id: Some(reply.ticket),
            message_id: None,
            answered_to: answer,
        })
    })
}

/// Inserts the record of a mail; false when this message reached this
/// address before.
fn insert_record(
    conn: &mut DbConnection,
    key: &str,
    p: &Parsed,
    reply: ReplyAddress,
    outcome: Outcome,
    answered_to: Option<&str>,
) -> AppResult<bool> {
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(inbound_emails::table)
        .values((
            inbound_emails::message_key.eq(key),
            inbound_emails::outcome.eq(outcome.as_str()),
            inbound_emails::sender.eq(&p.sender),
            inbound_emails::answered_to.eq(answered_to),
            inbound_emails::ticket_id.eq(reply.ticket),
            inbound_emails::user_id.eq(reply.user),
            inbound_emails::received_at.eq(Utc::now().naive_utc()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// An address as the answer caps count it: lower case, without `+tags`.
fn answer_key(to: &str) -> String {
    let to = to.to_ascii_lowercase();
    let (local, domain) = to.rsplit_once('@').unwrap_or((to.as_str(), ""));
    let base = local.split('+').next().unwrap_or(local);
    format!("{base}@{domain}")
}

/// Whether one more "not posted" answer may go to `to` about `reply`:
/// a few a day per address (ignoring `+tags`), a few strangers a day per
/// reply address, and a cap for the whole service.
fn may_answer(conn: &mut DbConnection, to: &str, reply: ReplyAddress) -> AppResult<bool> {
    let since = Utc::now().naive_utc() - chrono::Duration::days(1);
    let answered = inbound_emails::table
        .filter(inbound_emails::answered_to.is_not_null())
        .filter(inbound_emails::received_at.gt(since));
    let to_them: i64 = answered
        .filter(inbound_emails::answered_to.eq(answer_key(to)))
        .count()
        .get_result(conn)?;
    // Strangers answered about one reply address (its holder could
    // otherwise aim us at a list of victims).
    let about_it: i64 = answered
        .filter(inbound_emails::outcome.eq(Outcome::SenderMismatch.as_str()))
        .filter(inbound_emails::ticket_id.eq(reply.ticket))
        .filter(inbound_emails::user_id.eq(reply.user))
        .count()
        .get_result(conn)?;
    let all: i64 = answered.count().get_result(conn)?;
    Ok(to_them < ANSWERS_PER_ADDRESS_PER_DAY
        && about_it < ANSWERS_PER_ADDRESS_PER_DAY
        && all < ANSWERS_PER_DAY)
}

/// Auto-replies and bounces, which are never posted (nor answered).
fn classify(message: &Message<'_>, sender: &str, mail: &Mail) -> Result<(), Outcome> {
    // Delivery-status reports (RFC 3464), whatever the sender claims.
    let is = |ct: &mail_parser::ContentType<'_>, ty: &str, sub: &str| {
        ct.ctype().eq_ignore_ascii_case(ty)
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(sub))
    };
    if message
        .content_type()
        .is_some_and(|ct| is(ct, "multipart", "report"))
        || message.parts.iter().any(|p| {
            p.content_type()
                .is_some_and(|ct| is(ct, "message", "delivery-status"))
        })
    {
        return Err(Outcome::Bounce);
    }
    let local = sender.split('@').next().unwrap_or("");
    if local == "mailer-daemon" || local == "postmaster" {
        return Err(Outcome::Bounce);
    }
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    // RFC 3834, and the older conventions vacation programs use.
    for name in ["Auto-Submitted", "Autosubmitted"] {
        if header(name).is_some_and(|v| !v.is_empty() && !v.starts_with("no")) {
            return Err(Outcome::AutoReply);
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if header(name).is_some_and(|v| {
            ["bulk", "junk", "list", "auto_reply", "auto-reply"].contains(&v.as_str())
        }) {
            return Err(Outcome::AutoReply);
        }
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Auto-Response"] {
        if header(name).is_some() {
            return Err(Outcome::AutoReply);
        }
    }
    // Our own mail coming back (a loop through a forwarding rule).
    if sender.eq_ignore_ascii_case(&mail.from_address()) {
        return Err(Outcome::AutoReply);
    }
    Ok(())
}

/// Removes RFC 5322 comments (`(…)`, nested) outside quoted strings.
fn without_comments(s: &str) -> String {
    let (mut out, mut depth, mut quoted, mut escaped) = (String::new(), 0usize, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits on `sep` outside quoted strings.
fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

/// Whether the receiving server (`authserv_id`) vouches for the sender:
/// the topmost `Authentication-Results` it wrote (RFC 8601) says
/// `dmarc=pass` for the From domain, or `dkim=pass` with a signing domain
/// aligned with it.
fn authenticated(message: &Message<'_>, authserv_id: &str, sender: &str) -> bool {
    let from_domain = sender.rsplit('@').next().unwrap_or("").to_ascii_lowercase();
    let ours = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, v)| without_comments(&v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .find(|v| {
            split_unquoted(v, ';')
                .first()
                .and_then(|id| id.split_whitespace().next().map(str::to_owned))
                .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        });
    let Some(results) = ours else {
        return false;
    };
    // Relaxed alignment: the From domain or a parent of it (never a bare
    // top-level domain).
    let aligned =
        |d: &str| d.contains('.') && (from_domain == d || from_domain.ends_with(&format!(".{d}")));
    split_unquoted(&results, ';').iter().skip(1).any(|r| {
        let tokens = split_unquoted(r.trim(), ' ');
        let mut tokens = tokens.iter().filter(|t| !t.is_empty());
        let Some(verdict) = tokens.next().map(|t| t.to_ascii_lowercase()) else {
            return false;
        };
        let props: Vec<(String, String)> = tokens
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.trim_matches('"').to_ascii_lowercase(),
                )
            })
            .collect();
        let prop = |name: &str| {
            props
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        match verdict.as_str() {
            "dmarc=pass" => prop("header.from").is_some_and(|d| d == from_domain),
            "dkim=pass" => prop("header.d").is_some_and(|d| aligned(&d)),
            _ => false,
        }
    })
}

/// Reply addresses the headers name: those a delivering server adds
/// first, then To and Cc.
fn header_recipients(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["Delivered-To", "X-Original-To"] {
        for (header, value) in message.headers_raw() {
            if header.eq_ignore_ascii_case(name) {
                out.push(value.trim().trim_matches(['<', '>']).to_owned());
            }
        }
    }
    for header in message.headers() {
        if !matches!(header.name, HeaderName::To | HeaderName::Cc) {
            continue;
        }
        if let HeaderValue::Address(a) = &header.value {
            out.extend(a.iter().filter_map(|a| a.address()).map(str::to_owned));
        }
    }
    out
}

/// Where a received mail goes.
enum Address {
    /// A ticket's reply address.
    Ticket(ReplyAddress),
    /// A ban's appeal address.
    Appeal {
        /// The ban.
        ban: i64,
        /// The banned user.
        user: i64,
    },
}

/// The first genuine reply or appeal address among `candidates`, in their
/// order of trust; one with a wrong tag is noted and passed over.
fn recipient(candidates: &[String], mail: &Mail) -> Result<Address, Outcome> {
    let mut forged = false;
    for c in candidates {
        match mail.read_reply_address(c) {
            Some(Ok(found)) => return Ok(Address::Ticket(found)),
            Some(Err(())) => forged = true,
            None => {}
        }
        match mail.read_appeal_address(c) {
            Some(Ok((ban, user))) => return Ok(Address::Appeal { ban, user }),
            Some(Err(())) => forged = true,
            None => {}
        }
    }
    Err(if forged {
        Outcome::BadAddress
    } else {
        Outcome::UnknownRecipient
    })
}

/// The text the person wrote: the plain-text parts (or the HTML ones made
/// text, their quoted block removed first), without the quoted history and
/// the signature. `anchors` are our From address and name, lower case: an
/// attribution or header block naming them is our mail quoted.
pub fn reply_text(message: &Message<'_>, anchors: &[String]) -> String {
    let plain_part = |p: &&mail_parser::MessagePart<'_>| {
        !p.is_text_html()
            && p.content_type().is_none_or(|ct| {
                ct.ctype().eq_ignore_ascii_case("text")
                    && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
            })
    };
    let plain: Vec<&str> = message
        .text_bodies()
        .filter(plain_part)
        .filter_map(|p| p.text_contents())
        .collect();
    let text = if plain.is_empty() {
        message
            .html_bodies()
            .filter(|p| p.is_text_html())
            .filter_map(|p| p.text_contents())
            .map(|html| mail_parser::decoders::html::html_to_text(&cut_html_quote(html)))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        plain.join("\n")
    };
    strip_quoted_with(&text, anchors)
}

/// Cuts an HTML body at the element mail clients put the quoted mail in,
/// wherever the marking attribute sits in its tag.
fn cut_html_quote(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let markers = [
        "type=\"cite\"",
        "class=\"gmail_quote",
        "class=\"protonmail_quote",
        "yahoo_quoted",
        "id=\"divrplyfwdmsg\"",
        "id=\"appendonsend\"",
        "id=\"stopspelling\"",
        "class=\"moz-cite-prefix\"",
        "id=\"mail-editor-reference-message-container\"",
    ];
    let cut = markers
        .iter()
        .filter_map(|m| lower.find(m))
        .filter_map(|at| lower[..at].rfind('<'))
        .min()
        .unwrap_or(html.len());
    // `lower` has the same byte offsets: ASCII lower-casing keeps lengths.
    html[..cut].to_owned()
}

/// How a quoted mail is introduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// "On … wrote:" followed by `>` lines: the person may have written
    /// below or between them.
    Attribution,
    /// Outlook's header block: everything after it is the old mail.
    Block,
}

const FROM_WORDS: [&str; 11] = [
    "from:", "de:", "de :", "von:", "van:", "da:", "från:", "fra:", "od:", "от:", "从:",
];
const SENT_WORDS: [&str; 17] = [
    "sent:",
    "date:",
    "envoyé :",
    "envoyé:",
    "gesendet:",
    "datum:",
    "enviado:",
    "enviada:",
    "inviato:",
    "data:",
    "skickat:",
    "sendt:",
    "wysłane:",
    "verzonden:",
    "verstuurd:",
    "отправлено:",
    "发送时间:",
];

fn is_from_line(line: &str) -> bool {
    let l = line.trim().trim_start_matches('*').trim().to_lowercase();
    FROM_WORDS.iter().any(|p| l.starts_with(p))
}

fn is_sent_line(line: &str) -> bool {
    let l = line.trim().trim_start_matches('*').trim().to_lowercase();
    SENT_WORDS.iter().any(|p| l.starts_with(p))
}

/// Whether `lines[i]` (with up to two following lines, as clients wrap it)
/// introduces a quoted mail, how, and over how many lines.
fn quote_header(lines: &[&str], i: usize, anchors: &[String]) -> Option<(Quote, usize)> {
    let raw = lines[i].trim();
    let line = raw.trim_start_matches('>').trim();
    let lower = line.to_lowercase();
    let names_us = |s: &str| anchors.iter().any(|a| s.contains(a.as_str()));
    // Outlook's separator, not a quoted copy of one.
    let dashes = raw.starts_with("-----") && lower.ends_with("-----");
    if dashes
        && [
            "original message",
            "message d'origine",
            "ursprüngliche nachricht",
            "mensaje original",
            "messaggio originale",
            "oorspronkelijk bericht",
            "ursprungligt meddelande",
        ]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Some((Quote::Block, 1));
    }
    let ahead = |from: usize, n: usize| &lines[from.min(lines.len())..(from + n).min(lines.len())];
    if lower.starts_with("________________") && ahead(i + 1, 2).iter().any(|l| is_from_line(l)) {
        return Some((Quote::Block, 1));
    }
    // Outlook's header block: From and Sent, and either our name or a
    // Subject line too (a pasted "From: … Date: …" is the person's text).
    if !raw.starts_with('>')
        && is_from_line(line)
        && ahead(i + 1, 4).iter().any(|l| is_sent_line(l))
    {
        let subject = ahead(i + 1, 5).iter().any(|l| {
            let l = l.trim().trim_start_matches('*').trim().to_lowercase();
            [
                "subject:",
                "objet :",
                "objet:",
                "betreff:",
                "asunto:",
                "oggetto:",
                "onderwerp:",
                "ämne:",
                "temat:",
                "emne:",
                "assunto:",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        });
        if names_us(&lower) || subject {
            return Some((Quote::Block, 1));
        }
    }
    // "On Mon, 7 Dec 2026 at 15:04, Guildhall <…> wrote:", possibly wrapped,
    // and its translations ("Am … schrieb Guildhall <…>:"): a date or time,
    // a verb of writing, a colon at the end, and quoted lines after it —
    // or, when it names us, whatever follows (Yahoo and AOL quote without
    // `>`).
    let intro = ["on ", "le ", "am ", "el ", "op ", "il ", "den "];
    let verbs = [
        "wrote",
        "a écrit",
        "schrieb",
        "escribió",
        "schreef",
        "ha scritto",
        "skrev",
    ];
    if !intro.iter().any(|p| lower.starts_with(p)) {
        return None;
    }
    let mut joined = lower.clone();
    for n in 0..3 {
        let j = joined.trim_end();
        if j.ends_with(':') && dated(j) && verbs.iter().any(|v| j.contains(v)) {
            let next = lines[i + n + 1..].iter().find(|l| !l.trim().is_empty());
            if next.is_none_or(|l| l.trim_start().starts_with('>')) {
                return Some((Quote::Attribution, n + 1));
            }
            return names_us(j).then_some((Quote::Block, n + 1));
        }
        let Some(next) = lines.get(i + n + 1) else {
            break;
        };
        if next.trim().is_empty() {
            break;
        }
        joined.push(' ');
        joined.push_str(&next.trim().trim_start_matches('>').trim().to_lowercase());
    }
    None
}

/// Whether `s` holds a time (`15:04`) or a year (four digits).
fn dated(s: &str) -> bool {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    (0..b.len()).any(|i| {
        let time = b[i] == b':' && i > 0 && digit(i - 1) && digit(i + 1) && digit(i + 2);
        let year = (0..4).all(|k| digit(i + k)) && !digit(i + 4) && (i == 0 || !digit(i - 1));
        time || year
    })
}

/// The new text of a reply ([`strip_quoted_with`] knowing nothing of our
/// own From).
pub fn strip_quoted(text: &str) -> String {
    strip_quoted_with(text, &[])
}

/// The new text of a reply: above the first quote header (or, when the
/// person wrote below a `>` quote, their unquoted lines), without a
/// trailing `>` block, the signature and "Sent from my phone" lines.
pub fn strip_quoted_with(text: &str, anchors: &[String]) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let header =
        (0..lines.len()).find_map(|i| quote_header(&lines, i, anchors).map(|(q, n)| (i, q, n)));
    let wrote_above = |i: usize| {
        lines[..i]
            .iter()
            .any(|l| !is_quoted(l) && !l.trim().is_empty())
    };
    let mut kept: Vec<&str> = match header {
        Some((i, Quote::Block, _)) => lines[..i].to_vec(),
        Some((i, Quote::Attribution, _)) if wrote_above(i) => lines[..i].to_vec(),
        // Written below (or between) the quotes: what is not quoted.
        Some((i, Quote::Attribution, n)) => lines[..i]
            .iter()
            .chain(lines[i + n..].iter())
            .copied()
            .filter(|l| !is_quoted(l))
            .collect(),
        // No header: a quoted block at the start is the old mail (the
        // person wrote below it).
        None => {
            let start = lines
                .iter()
                .position(|l| !is_quoted(l) && !l.trim().is_empty())
                .filter(|&at| at > 0 && is_quoted(lines[0]))
                .unwrap_or(0);
            lines[start..].to_vec()
        }
    };
    // The signature: `-- `, or `--` (clients trim the space) when only a
    // few short lines follow it.
    let signature = kept.iter().position(|l| *l == "-- ").or_else(|| {
        kept.iter()
            .rposition(|l| l.trim_end() == "--")
            .filter(|&at| {
                let rest = &kept[at + 1..];
                rest.len() <= 6 && rest.iter().all(|l| l.chars().count() <= 100)
            })
    });
    if let Some(at) = signature {
        kept.truncate(at);
    }
    while let Some(last) = kept.last() {
        let l = last.trim().to_lowercase();
        if l.is_empty()
            || is_quoted(last)
            || l.starts_with("sent from my ")
            || l.starts_with("get outlook for ")
            || l.starts_with("sent from outlook")
            || l.starts_with("sent from mail for windows")
        {
            kept.pop();
        } else {
            break;
        }
    }
    kept.join("\n").trim().to_owned()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Deletes the records of mail received before `before`; returns how many.
pub fn purge_records(conn: &mut DbConnection, before: chrono::NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(inbound_emails::table.filter(inbound_emails::received_at.lt(before)))
        .execute(conn)
}

/// Raised when the inbound endpoint is used without a configured reply
/// domain and secret.
pub fn not_configured() -> AppError {
    AppError::not_found("reply by email is not configured on this server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_on_wrote() {
        let t = "Thanks, that fixed it.\n\nOn Mon, Dec 7, 2026 at 3:04 PM Guildhall <\nnoreply@example.org> wrote:\n\n> Ada claimed your ticket\n> more\n";
        assert_eq!(strip_quoted(t), "Thanks, that fixed it.");
    }

    #[test]
    fn keeps_bottom_posted_text() {
        let t = "On 07/12/2026 15:04, Guildhall wrote:\n> Ada claimed your ticket\nHello, still broken\n";
        assert_eq!(strip_quoted(t), "Hello, still broken");
        // Without a date it is somebody's sentence, not a quote header.
        let t = "On reflection I wrote:\nthe config was wrong.";
        assert_eq!(strip_quoted(t), t);
    }

    #[test]
    fn cuts_outlook_blocks_and_signatures() {
        let t = "It works now.\n\n-- \nGrace\nACME\n\n________________________________\nFrom: Guildhall <g@x>\nSent: Monday\n";
        assert_eq!(strip_quoted(t), "It works now.");
        let t = "Yes.\r\n\r\nFrom: Guildhall <g@x>\r\nSent: Monday, December 7, 2026 3:04 PM\r\nTo: Grace\r\nSubject: Re\r\n\r\nold\r\n";
        assert_eq!(strip_quoted(t), "Yes.");
        let t = "Done\n\nSent from my iPhone\n\n> On 7 Dec 2026, at 15:04, Guildhall <g@x> wrote:\n> old";
        assert_eq!(strip_quoted(t), "Done");
        let t = "Fertig.\n\nAm Mo., 7. Dez. 2026 um 15:04 Uhr schrieb Guildhall <g@x>:\n> alt";
        assert_eq!(strip_quoted(t), "Fertig.");
    }

    #[test]
    fn keeps_what_only_looks_like_a_quote() {
        // A sentence with a number and "wrote:" but no quote after it.
        let t = "Still broken.\nOn 2 hosts the importer wrote:\nerror: segment locked";
        assert_eq!(strip_quoted(t), t);
        // A bare `--` is not a signature marker; only `-- ` is.
        let t =
            "Try:\n--\nSELECT 1;\nSELECT 2;\nSELECT 3;\nSELECT 4;\nSELECT 5;\nSELECT 6;\nSELECT 7;";
        assert_eq!(strip_quoted(t), t);
        // The person's own quote above their answer stays.
        let t = "> is the index rebuilt?\nYes, nightly.\n\nOn Mon, 7 Dec 2026 at 15:04 G <g@x> wrote:\n> old";
        assert_eq!(strip_quoted(t), "> is the index rebuilt?\nYes, nightly.");
        // Outlook's block with nothing above it leaves nothing.
        let t = "\n________________________________\nFrom: G <g@x>\nSent: Monday\n\nHello Riley,\nsecret note";
        assert_eq!(strip_quoted(t), "");
    }

    #[test]
    fn our_name_marks_quotes_without_markers() {
        let us = vec!["support@guildhall.test".to_owned(), "guildhall".to_owned()];
        // Yahoo and AOL quote without `>`.
        let t = "Works now.\n\nOn Monday, December 7, 2026, 03:04 PM, Guildhall <support@guildhall.test> wrote:\n\nHello Riley,\nold";
        assert_eq!(strip_quoted_with(t, &us), "Works now.");
        // Pasted headers of someone else's mail are the person's text.
        let t =
            "The bounce says:\nFrom: MAILER-DAEMON@mx\nDate: Mon, 7 Dec 2026\n\nWhat does it mean?";
        assert_eq!(strip_quoted_with(t, &us), t);
        // Our own header block is cut even without a separator.
        let t = "Yes.\n\nVan: Guildhall <support@guildhall.test>\nVerzonden: maandag\n\nold";
        assert_eq!(strip_quoted_with(t, &us), "Yes.");
        // Written below a quoted Outlook separator.
        let t = "> -----Original Message-----\n> From: G\n> old\n\nMy answer here";
        assert_eq!(strip_quoted_with(t, &us), "My answer here");
        // A trimmed `--` before a short signature.
        let t = "Fixed.\n\n--\nRiley\nACME | +49 30 123";
        assert_eq!(strip_quoted_with(t, &us), "Fixed.");
    }

    #[test]
    fn authentication_results_are_read_as_rfc_8601() {
        let parse = |results: &str| {
            let raw = format!("{results}From: a@corp.example\r\nTo: b@x\r\n\r\nhi");
            let m = MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap()
                .into_owned();
            authenticated(&m, "mx.us", "a@corp.example")
        };
        // OpenDKIM's comment holds a `;`.
        assert!(parse("Authentication-Results: mx.us;\r\n dkim=pass (2048-bit key; unprotected) header.d=corp.example header.s=s1\r\n"));
        assert!(parse(
            "Authentication-Results: mx.us; dmarc=pass (p=reject) header.from=corp.example\r\n"
        ));
        // A quoted `;dmarc=pass` in a sender-chosen value is not a verdict.
        assert!(!parse("Authentication-Results: mx.us; spf=pass smtp.mailfrom=\"x;dmarc=pass\"@evil.example; dmarc=fail header.from=corp.example\r\n"));
        // dmarc must name the From domain; dkim must align with it.
        assert!(!parse(
            "Authentication-Results: mx.us; dmarc=pass header.from=evil.example\r\n"
        ));
        assert!(!parse(
            "Authentication-Results: mx.us; dkim=pass header.d=example\r\n"
        ));
        // Someone else's verdict, or a later (lower) one of ours, counts not.
        assert!(!parse(
            "Authentication-Results: mx.evil; dmarc=pass header.from=corp.example\r\n"
        ));
        assert!(!parse("Authentication-Results: mx.us; dmarc=fail header.from=corp.example\r\nAuthentication-Results: mx.us; dmarc=pass header.from=corp.example\r\n"));
        assert_eq!(
            answer_key("John_Doe+7@Corp.example"),
            "john_doe@corp.example"
        );
    }

    #[test]
    fn dates_and_times_are_recognised() {
        assert!(dated("on mon, 7 dec 2026 at 3:04 pm g wrote:"));
        assert!(dated("on 07/12/26 15:04, g wrote:"));
        assert!(!dated("on 2 hosts the importer wrote:"));
        assert!(!dated("on 12345 machines it wrote:"));
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let t =
            "On second thought the config was wrong.\nFrom: the docs, I read that\nit should be 3.";
        assert_eq!(strip_quoted(t), t);
    }

    #[test]
    fn cuts_html_quotes() {
        let html = "<div dir=\"ltr\">New text</div><div class=\"gmail_quote\"><blockquote>old</blockquote></div>";
        assert_eq!(cut_html_quote(html), "<div dir=\"ltr\">New text</div>");
    }
}
