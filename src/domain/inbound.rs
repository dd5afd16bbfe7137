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
use crate::mail::Mail;
use chrono::Utc;
use diesel::prelude::*;
use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// The largest message accepted (bigger ones are dropped unread).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// How many "please use the web page" answers one sender gets a day (a
/// forged From would otherwise turn us into a mail cannon).
const REFUSALS_PER_DAY: i64 = 3;

/// What became of a received mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Posted on the ticket.
    Posted,
    /// The secret was wrong (never reaches this module's parser).
    Unauthorized,
    /// Larger than [`MAX_BYTES`].
    Oversize,
    /// Not a mail we can read (no From, no headers).
    Malformed,
    /// A vacation message or other automatic answer.
    AutoReply,
    /// A delivery-status report.
    Bounce,
    /// The same Message-ID arrived before.
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
    /// Every outcome, for metrics.
    pub const ALL: [Outcome; 12] = [
        Outcome::Posted,
        Outcome::Unauthorized,
        Outcome::Oversize,
        Outcome::Malformed,
        Outcome::AutoReply,
        Outcome::Bounce,
        Outcome::Duplicate,
        Outcome::UnknownRecipient,
        Outcome::BadAddress,
        Outcome::SenderMismatch,
        Outcome::Rejected,
        Outcome::Empty,
    ];

    /// The name in responses, the table and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Posted => "posted",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Oversize => "oversize",
            Outcome::Malformed => "malformed",
            Outcome::AutoReply => "auto_reply",
            Outcome::Bounce => "bounce",
            Outcome::Duplicate => "duplicate",
            Outcome::UnknownRecipient => "unknown_recipient",
            Outcome::BadAddress => "bad_address",
            Outcome::SenderMismatch => "sender_mismatch",
            Outcome::Rejected => "rejected",
            Outcome::Empty => "empty",
        }
    }
}

/// Someone to tell that their mail was not posted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The sender's address.
    pub to: String,
    /// The ticket they wrote to.
    pub ticket_id: i64,
    /// Why, in a sentence.
    pub reason: String,
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
    /// Whom to answer (queued by the caller as a mail).
    pub refusal: Option<Refusal>,
}

impl Received {
    fn dropped(outcome: Outcome) -> Received {
        Received {
            outcome,
            ticket_id: None,
            message_id: None,
            refusal: None,
        }
    }
}

/// Reads one raw RFC 822 message and, when it is a genuine reply, posts it.
/// `envelope_to` is the SMTP recipient when the mail server passes it
/// (it names the reply address even when the headers do not, as for Bcc).
pub fn receive(
    conn: &mut DbConnection,
    mail: &Mail,
    raw: &[u8],
    envelope_to: Option<&str>,
) -> AppResult<Received> {
    if raw.len() > MAX_BYTES {
        return Ok(Received::dropped(Outcome::Oversize));
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return Ok(Received::dropped(Outcome::Malformed));
    };
    let Some(sender) = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@') && a.len() <= 320)
    else {
        return Ok(Received::dropped(Outcome::Malformed));
    };
    let key = match message.message_id() {
        Some(id) if !id.trim().is_empty() && id.len() <= 900 => format!("<{}>", id.trim()),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    let classified = classify(&message, &sender, mail);
    let (outcome, ticket_user) = match classified {
        Err(outcome) => (outcome, None),
        Ok(()) => match recipient(&message, envelope_to, mail) {
            Err(outcome) => (outcome, None),
            Ok((ticket, user)) => (Outcome::Posted, Some((ticket, user))),
        },
    };
    let Some((ticket, user_id)) = ticket_user else {
        return record(conn, &key, outcome, &sender, None, None, None);
    };
    // The address is genuine: is the sender the person it was made for?
    let user = match users::get(conn, user_id) {
        Ok(u) => u,
        Err(_) => return record(conn, &key, Outcome::BadAddress, &sender, None, None, None),
    };
    if users::normalize_email(&sender) != user.email_normalized {
        let mut r = record(
            conn,
            &key,
            Outcome::SenderMismatch,
            &sender,
            Some(ticket),
            None,
            None,
        )?;
        if r.outcome == Outcome::SenderMismatch
            && refusals_today(conn, &sender)? <= REFUSALS_PER_DAY
        {
            r.refusal = Some(Refusal {
                to: sender,
                ticket_id: ticket,
                reason: "it came from an address other than the one this ticket's mail was sent to"
                    .into(),
            });
        }
        return Ok(r);
    }
    let refuse = |reason: &str| Refusal {
        to: sender.clone(),
        ticket_id: ticket,
        reason: reason.to_owned(),
    };
    if user.email_verified_at.is_none() || !user.can_login {
        return record(
            conn,
            &key,
            Outcome::Rejected,
            &sender,
            Some(ticket),
            Some(user_id),
            None,
        );
    }
    let body = reply_text(&message);
    if body.trim().is_empty() {
        let mut r = record(
            conn,
            &key,
            Outcome::Empty,
            &sender,
            Some(ticket),
            Some(user_id),
            None,
        )?;
        if r.outcome == Outcome::Empty {
            r.refusal = Some(refuse(
                "we found no text of yours above the quoted part of the mail",
            ));
        }
        return Ok(r);
    }
    // The record and the message together: a second delivery racing this
    // one finds the record and posts nothing.
    let posted = write_tx(conn, |conn| {
        if !claim_key(conn, &key, &sender)? {
            return Ok(None);
        }
        let m =
            tickets::post_message_via(conn, ticket, user_id, Some(&body), false, None, "email")?;
        diesel::update(inbound_emails::table.filter(inbound_emails::message_key.eq(&key)))
            .set((
                inbound_emails::outcome.eq(Outcome::Posted.as_str()),
                inbound_emails::ticket_id.eq(ticket),
                inbound_emails::user_id.eq(user_id),
                inbound_emails::message_id.eq(m.id),
            ))
            .execute(conn)?;
        Ok(Some(m.id))
    });
    match posted {
        Ok(Some(id)) => {
            tracing::info!(
                ticket_id = ticket,
                user_id,
                message_id = id,
                "reply by email posted"
            );
            Ok(Received {
                outcome: Outcome::Posted,
                ticket_id: Some(ticket),
                message_id: Some(id),
                refusal: None,
            })
        }
        Ok(None) => Ok(Received::dropped(Outcome::Duplicate)),
        // The ticket refused it (cancelled, the user no longer on it, the
        // text too long): record that, and tell the person.
        Err(e) if actix_web::ResponseError::status_code(&e).is_client_error() => {
            let mut r = record(
                conn,
                &key,
                Outcome::Rejected,
                &sender,
                Some(ticket),
                Some(user_id),
                None,
            )?;
            if r.outcome == Outcome::Rejected {
                let why = match &e {
                    AppError::Validation(_) => "the text is longer than 50,000 characters".into(),
                    AppError::NotFound(_) => "you can no longer see the ticket".into(),
                    other => other.to_string(),
                };
                r.refusal = Some(refuse(&format!("the ticket did not take it: {why}")));
            }
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

/// Records a mail that was not posted; a second delivery comes back as
/// [`Outcome::Duplicate`].
fn record(
    conn: &mut DbConnection,
    key: &str,
    outcome: Outcome,
    sender: &str,
    ticket: Option<i64>,
    user: Option<i64>,
    message: Option<i64>,
) -> AppResult<Received> {
    let inserted = crate::per_backend!(conn, |c| diesel::insert_into(inbound_emails::table)
        .values((
            inbound_emails::message_key.eq(key),
            inbound_emails::outcome.eq(outcome.as_str()),
            inbound_emails::sender.eq(sender),
            inbound_emails::ticket_id.eq(ticket),
            inbound_emails::user_id.eq(user),
            inbound_emails::message_id.eq(message),
            inbound_emails::received_at.eq(Utc::now().naive_utc()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    if inserted == 0 {
        return Ok(Received::dropped(Outcome::Duplicate));
    }
    Ok(Received {
        outcome,
        ticket_id: ticket,
        message_id: message,
        refusal: None,
    })
}

/// Takes `key` for a message being posted; false when it was seen before.
fn claim_key(conn: &mut DbConnection, key: &str, sender: &str) -> AppResult<bool> {
    Ok(record(conn, key, Outcome::Posted, sender, None, None, None)?.outcome == Outcome::Posted)
}

/// How many refusals `sender` has earned in the last day, this one included.
fn refusals_today(conn: &mut DbConnection, sender: &str) -> AppResult<i64> {
    let since = Utc::now().naive_utc() - chrono::Duration::days(1);
    Ok(inbound_emails::table
        .filter(inbound_emails::sender.eq(sender))
        .filter(inbound_emails::outcome.eq(Outcome::SenderMismatch.as_str()))
        .filter(inbound_emails::received_at.gt(since))
        .count()
        .get_result(conn)?)
}

fn header_text<'a>(message: &'a Message<'a>, name: &str) -> Option<String> {
    message
        .header_raw(HeaderName::Other(name.into()))
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Auto-replies and bounces, which are never posted (nor answered).
fn classify(message: &Message<'_>, sender: &str, mail: &Mail) -> Result<(), Outcome> {
    // Delivery-status reports (RFC 3464), whatever the sender claims.
    if let Some(ct) = message.content_type() {
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        if ct.ctype().eq_ignore_ascii_case("multipart") && sub == "report" {
            return Err(Outcome::Bounce);
        }
    }
    if message.parts.iter().any(|p| {
        p.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("delivery-status"))
        })
    }) {
        return Err(Outcome::Bounce);
    }
    let local = sender.split('@').next().unwrap_or("");
    if local == "mailer-daemon" || local == "postmaster" {
        return Err(Outcome::Bounce);
    }
    // RFC 3834 and the older conventions vacation programs use.
    if let Some(v) = header_text(message, "Auto-Submitted") {
        if v != "no" && !v.is_empty() {
            return Err(Outcome::AutoReply);
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if let Some(v) = header_text(message, name) {
            if ["bulk", "junk", "list", "auto_reply", "auto-reply"].contains(&v.as_str()) {
                return Err(Outcome::AutoReply);
            }
        }
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Auto-Response"] {
        if message.header_raw(HeaderName::Other(name.into())).is_some() {
            return Err(Outcome::AutoReply);
        }
    }
    if let Some(v) = header_text(message, "X-Auto-Response-Suppress") {
        // Exchange marks its own automatic answers so.
        if v.contains("oof") || v == "all" {
            if let Some(subject) = message.subject() {
                let s = subject.to_ascii_lowercase();
                if s.starts_with("automatic reply") || s.starts_with("out of office") {
                    return Err(Outcome::AutoReply);
                }
            }
        }
    }
    // Our own mail coming back (a loop through a forwarding rule).
    if sender.eq_ignore_ascii_case(&mail.from_address()) {
        return Err(Outcome::AutoReply);
    }
    Ok(())
}

/// The ticket and user the mail was sent to: the envelope recipient first,
/// then the headers a delivering server adds, then To and Cc.
fn recipient(
    message: &Message<'_>,
    envelope_to: Option<&str>,
    mail: &Mail,
) -> Result<(i64, i64), Outcome> {
    let mut candidates: Vec<String> = envelope_to.map(str::to_owned).into_iter().collect();
    for name in ["Delivered-To", "X-Original-To"] {
        for (header, value) in message.headers_raw() {
            if header.eq_ignore_ascii_case(name) {
                candidates.push(value.trim().trim_matches(['<', '>']).to_owned());
            }
        }
    }
    for header in message.headers() {
        if !matches!(header.name, HeaderName::To | HeaderName::Cc) {
            continue;
        }
        if let HeaderValue::Address(a) = &header.value {
            candidates.extend(a.iter().filter_map(|a| a.address()).map(str::to_owned));
        }
    }
    let mut forged = false;
    for c in candidates {
        match mail.read_reply_address(&c) {
            Some(Ok(found)) => return Ok(found),
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

/// The text the person wrote: the plain-text body (or the HTML one made
/// text, its quoted block removed first), without the quoted history and
/// the signature.
pub fn reply_text(message: &Message<'_>) -> String {
    let text = match message.text_part(0) {
        Some(part) if !part.is_text_html() => message.body_text(0).unwrap_or_default().into_owned(),
        _ => match message.body_html(0) {
            Some(html) => mail_parser::decoders::html::html_to_text(&cut_html_quote(&html)),
            None => String::new(),
        },
    };
    strip_quoted(&text)
}

/// Cuts an HTML body at the block mail clients put the quoted mail in.
fn cut_html_quote(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let markers = [
        "<div class=\"gmail_quote",
        "<div class=\"gmail_extra",
        "<blockquote",
        "<div id=\"divrplyfwdmsg\"",
        "<div id=\"appendonsend\"",
        "<hr id=\"stopspelling\"",
        "<div class=\"moz-cite-prefix\"",
        "<div class=\"yahoo_quoted\"",
        "<div id=\"mail-editor-reference-message-container\"",
    ];
    let cut = markers
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(html.len());
    // `lower` has the same byte offsets: ASCII lower-casing keeps lengths.
    html[..cut].to_owned()
}

/// Whether `line` (with up to two following lines, as clients wrap it)
/// introduces a quoted mail: "On … wrote:" and its translations,
/// Outlook's "-----Original Message-----" and its "From: … Sent: …" block.
fn quote_header(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i].trim().trim_start_matches('>').trim();
    let lower = line.to_lowercase();
    if lower.starts_with("-----") && lower.contains("original message") {
        return Some(1);
    }
    if lower.starts_with("________________")
        && lines
            .get(i + 1..(i + 3).min(lines.len()))
            .is_some_and(|next| next.iter().any(|l| is_from_line(l)))
    {
        return Some(1);
    }
    if is_from_line(line)
        && lines
            .get(i + 1..(i + 5).min(lines.len()))
            .is_some_and(|next| {
                next.iter().any(|l| {
                    let l = l.trim().trim_start_matches('*').to_lowercase();
                    [
                        "sent:",
                        "date:",
                        "envoyé :",
                        "envoyé:",
                        "gesendet:",
                        "datum:",
                        "enviado:",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
                })
            })
    {
        return Some(1);
    }
    // "On Mon, 7 Dec 2026 at 15:04, Guildhall <…> wrote:", possibly wrapped,
    // and its translations ("Am … schrieb Guildhall <…>:"): a date (some
    // digit), a verb of writing, a colon at the end.
    let intro = ["on ", "le ", "am ", "el ", "op ", "il "];
    let verbs = [
        "wrote",
        "a écrit",
        "schrieb",
        "escribió",
        "schreef",
        "ha scritto",
    ];
    if intro.iter().any(|p| lower.starts_with(p)) {
        let mut joined = lower.clone();
        for n in 0..3 {
            let j = joined.trim_end();
            if j.ends_with(':')
                && j.chars().any(|c| c.is_ascii_digit())
                && verbs.iter().any(|v| j.contains(v))
            {
                return Some(n + 1);
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
    }
    None
}

fn is_from_line(line: &str) -> bool {
    let l = line.trim().trim_start_matches('*').to_lowercase();
    ["from:", "de :", "de:", "von:", "van:"]
        .iter()
        .any(|p| l.starts_with(p))
}

/// The new text of a reply: above the first quote header (or, when the
/// person wrote below the quote, their unquoted lines), without `>` lines,
/// the `-- ` signature and "Sent from my phone" lines.
pub fn strip_quoted(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let header = (0..lines.len()).find_map(|i| quote_header(&lines, i).map(|n| (i, n)));
    let mut kept: Vec<&str> = match header {
        Some((i, _))
            if lines[..i]
                .iter()
                .any(|l| !is_quoted(l) && !l.trim().is_empty()) =>
        {
            lines[..i].to_vec()
        }
        // Written below (or between) the quotes: keep what is not quoted.
        Some((i, n)) => lines[..i]
            .iter()
            .chain(lines[i + n..].iter())
            .copied()
            .collect(),
        None => lines.clone(),
    };
    kept.retain(|l| !is_quoted(l));
    if let Some(sig) = kept.iter().position(|l| *l == "-- " || *l == "--") {
        kept.truncate(sig);
    }
    while let Some(last) = kept.last() {
        let l = last.trim().to_lowercase();
        if l.is_empty()
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
    let out = kept.join("\n");
    out.trim().to_owned()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
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
