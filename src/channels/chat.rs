//! Discord and Slack: the same commands on both, over plain HTTP.
//!
//! * **Signatures first.** Discord signs `timestamp + body` with Ed25519;
//!   Slack signs `v0:timestamp:body` with HMAC-SHA256. Either is checked
//!   over the raw bytes before anything is parsed, the timestamp must be
//!   within five minutes, and each interaction (Discord's id, Slack's
//!   trigger id) is applied once: a replay is refused like a forgery.
//! * **Commands.** `ask [project:] question` answers from the project's
//!   solved tickets (the AI lane, with citations), privately, with buttons
//!   **Solved**, **Post as ticket** and **Ask a paid expert**;
//!   `status <ticket>`; `link` gives a one-time link that ties the chat
//!   user to a Guildhall account. Posting needs a linked account.
//! * **Updates** on tickets posted from a chat go back to the asker by
//!   direct message (the notification pipeline's `chat` channel).

use crate::db::schema::{chat_deliveries as cd, chat_link_tokens as clt, chat_questions as cq};
use crate::db::schema::{projects, user_identities as ui};
use crate::db::{write_tx, DbConnection};
use crate::domain::tickets::{self as ticket_domain, Kind, NewTicket, Status, Visibility};
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The largest request accepted (interactions are small).
pub const MAX_BYTES: usize = 256 * 1024;
/// How old a signed timestamp may be, either way.
pub const WINDOW_SECS: i64 = 300;
/// How long a link to tie a chat user to an account lasts.
const LINK_MINUTES: i64 = 30;
/// How many links of one chat user are good at once.
const LIVE_LINKS: i64 = 3;
/// How many questions one chat user may ask in an hour (each may ask the
/// language model).
pub const QUESTIONS_PER_HOUR: i64 = 30;

/// Why a request was refused before it was read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No or a wrong signature.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the window.
    #[error("stale timestamp")]
    Stale,
}

fn fresh(timestamp: &str, now: i64) -> Result<(), Refusal> {
    let t: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::BadSignature)?;
    if (now - t).abs() > WINDOW_SECS {
        return Err(Refusal::Stale);
    }
    Ok(())
}

/// Discord: Ed25519 by `public_key` over `timestamp + body`.
pub fn verify_discord(
    public_key: &[u8; 32],
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let (Some(sig), Some(ts)) = (signature, timestamp) else {
        return Err(Refusal::BadSignature);
    };
    let sig = hex::decode(sig.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(Refusal::BadSignature)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| Refusal::BadSignature)?;
    let mut signed = ts.as_bytes().to_vec();
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| Refusal::BadSignature)?;
    fresh(ts, now)
}

/// Slack: `v0=` HMAC-SHA256 by the signing secret over
/// `v0:timestamp:body`.
pub fn verify_slack(
    secret: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let (Some(sig), Some(ts)) = (signature, timestamp) else {
        return Err(Refusal::BadSignature);
    };
    let sig = sig
        .trim()
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Refusal::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refusal::BadSignature)?;
    mac.update(format!("v0:{}:", ts.trim()).as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| Refusal::BadSignature)?;
    fresh(ts, now)
}

/// Records interaction `id` of `provider`; false when it was seen before
/// (a replay).
pub fn first_delivery(conn: &mut DbConnection, provider: &str, id: &str) -> AppResult<bool> {
    let n = crate::per_backend!(conn, |c| diesel::insert_into(cd::table)
        .values((
            cd::provider.eq(provider),
            cd::delivery_id.eq(id),
            cd::received_at.eq(Utc::now().naive_utc()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// Forgets interaction records older than `before` (only replays inside
/// the five-minute window need them), link tokens that expired before it,
/// and questions that never became tickets and are older than
/// `questions_before` (their buttons are stale).
pub fn purge(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    questions_before: NaiveDateTime,
) -> QueryResult<usize> {
    Ok(
        diesel::delete(cd::table.filter(cd::received_at.lt(before))).execute(conn)?
            + diesel::delete(clt::table.filter(clt::expires_at.lt(before))).execute(conn)?
            + diesel::delete(
                cq::table
                    .filter(cq::ticket_id.is_null())
                    .filter(cq::created_at.lt(questions_before)),
            )
            .execute(conn)?,
    )
}

/// Who pressed or typed: `discord` or `slack`, their id there (Slack:
/// `team:user`) and name.
#[derive(Debug, Clone)]
pub struct ChatUser {
    /// `discord` or `slack`.
    pub provider: &'static str,
    /// Their id there.
    pub external: String,
    /// Their name there.
    pub login: String,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask a question, of a project by slug or name if given.
    Ask {
        /// The project, if named.
        project: Option<String>,
        /// The question.
        question: String,
    },
    /// A ticket's status.
    Status(i64),
    /// A one-time link to tie the chat user to an account.
    Link,
    /// What the commands are.
    Help,
}

/// Reads a command's text (Slack's `text`): `ask [project:] question`,
/// `status 12`, `link`, `help`; anything else is a question.
pub fn parse_text(text: &str) -> Command {
    let text = text.trim();
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(w, r)| (w, r.trim()));
    match word.to_ascii_lowercase().as_str() {
        "" | "help" => Command::Help,
        "link" => Command::Link,
        "status" => match rest.trim_start_matches('#').parse() {
            Ok(id) => Command::Status(id),
            Err(_) => Command::Help,
        },
        "ask" => ask_text(rest),
        _ => ask_text(text),
    }
}

fn ask_text(text: &str) -> Command {
    let text = text.trim();
    if let Some((first, rest)) = text.split_once(char::is_whitespace) {
        if let Some(project) = first.strip_suffix(':').filter(|p| !p.is_empty()) {
            return Command::Ask {
                project: Some(project.to_owned()),
                question: rest.trim().to_owned(),
            };
        }
    }
    if text.is_empty() {
        return Command::Help;
    }
    Command::Ask {
        project: None,
        question: text.to_owned(),
    }
}

/// What the commands are.
pub const HELP: &str = "Ask Guildhall about an open-source project:\n• `ask [project:] your question` — an answer from the project's solved tickets, with buttons to post it as a ticket or ask a paid expert\n• `status 123` — where ticket 123 stands\n• `link` — tie this chat account to your Guildhall account (needed to post tickets)";

/// The account the chat user linked, if any.
pub fn linked(conn: &mut DbConnection, user: &ChatUser) -> QueryResult<Option<i64>> {
    ui::table
        .filter(ui::provider.eq(user.provider))
        .filter(ui::external_id.eq(&user.external))
        .select(ui::user_id)
        .first(conn)
        .optional()
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A one-time link (thirty minutes) that ties `user` to the account of
/// whoever opens it signed in.
pub fn link_url(conn: &mut DbConnection, user: &ChatUser, public_url: &str) -> AppResult<String> {
    let token = crate::auth::tokens::random_token(32);
    // Only the newest few links of a chat user stay good: asking again and
    // again never piles up live tokens.
    let keep: Vec<String> = clt::table
        .filter(clt::provider.eq(user.provider))
        .filter(clt::external_user.eq(&user.external))
        .order(clt::expires_at.desc())
        .limit(LIVE_LINKS - 1)
        .select(clt::token_hash)
        .load(conn)?;
    diesel::delete(
        clt::table
            .filter(clt::provider.eq(user.provider))
            .filter(clt::external_user.eq(&user.external))
            .filter(clt::token_hash.ne_all(keep)),
    )
    .execute(conn)?;
    diesel::insert_into(clt::table)
        .values((
            clt::token_hash.eq(hash(&token)),
            clt::provider.eq(user.provider),
            clt::external_user.eq(&user.external),
            clt::login.eq(&user.login),
            clt::expires_at.eq(Utc::now().naive_utc() + chrono::Duration::minutes(LINK_MINUTES)),
        ))
        .execute(conn)?;
    Ok(format!(
        "{}/chat/link?token={token}",
        public_url.trim_end_matches('/')
    ))
}

/// What a link would tie: (provider, chat name, chat id), if it is still
/// good.
pub fn peek_link(conn: &mut DbConnection, token: &str) -> AppResult<(String, String, String)> {
    clt::table
        .find(hash(token))
        .filter(clt::used_at.is_null())
        .filter(clt::expires_at.gt(Utc::now().naive_utc()))
        .select((clt::provider, clt::login, clt::external_user))
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            AppError::bad_request(
                ErrorCode::Conflict,
                "this link was used already or has expired; ask for a new one with the `link` command",
            )
        })
}

/// The chat accounts linked to `user`: (provider, chat name).
pub fn linked_accounts(conn: &mut DbConnection, user: i64) -> QueryResult<Vec<(String, String)>> {
    ui::table
        .filter(ui::user_id.eq(user))
        .filter(ui::provider.eq_any(["discord", "slack"]))
        .select((ui::provider, ui::login))
        .order(ui::provider)
        .load(conn)
}

/// Unties `user`'s account of chat `provider`; false when there was none.
pub fn unlink(conn: &mut DbConnection, user: i64, provider: &str) -> QueryResult<bool> {
    Ok(diesel::delete(
        ui::table
            .filter(ui::user_id.eq(user))
            .filter(ui::provider.eq(provider))
            .filter(ui::provider.eq_any(["discord", "slack"])),
    )
    .execute(conn)?
        > 0)
}

/// Spends the link for `user`: the chat account is theirs from now on.
pub fn redeem_link(conn: &mut DbConnection, token: &str, user: i64) -> AppResult<(String, String)> {
    write_tx(conn, |conn| {
        let (provider, login, external) = peek_link(conn, token)?;
        let spent = diesel::update(clt::table.find(hash(token)).filter(clt::used_at.is_null()))
            .set(clt::used_at.eq(Some(Utc::now().naive_utc())))
            .execute(conn)?;
        if spent == 0 {
            return Err(AppError::bad_request(
                ErrorCode::Conflict,
                "this link was used already",
            ));
        }
        let current: Option<i64> = ui::table
            .filter(ui::provider.eq(&provider))
            .filter(ui::external_id.eq(&external))
            .select(ui::user_id)
            .first(conn)
            .optional()?;
        match current {
            Some(u) if u == user => {}
            Some(_) => {
                return Err(AppError::conflict(
                    ErrorCode::Conflict,
                    "this chat account is linked to another Guildhall account",
                ))
            }
            None => {
                diesel::insert_into(ui::table)
                    .values((
                        ui::provider.eq(&provider),
                        ui::external_id.eq(&external),
                        ui::user_id.eq(user),
                        ui::login.eq(&login),
                        ui::created_at.eq(Utc::now().naive_utc()),
                    ))
                    .execute(conn)
                    .map_err(|e| match e {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => AppError::conflict(
                            ErrorCode::Conflict,
                            "your account is linked to another account of this chat already",
                        ),
                        other => other.into(),
                    })?;
            }
        }
        Ok((provider, login))
    })
}

/// A question recorded for its answer and buttons.
#[derive(Debug, Clone)]
pub struct Asked {
    /// Its id (the buttons carry it).
    pub id: i64,
    /// The project's name.
    pub project: String,
}

/// Records `question` about `project` (a slug or a name; routing suggests
/// one when none is given). `Err(text)`: what to answer instead.
pub fn ask(
    conn: &mut DbConnection,
    index: &guildhall_index::TicketIndex,
    user: &ChatUser,
    project: Option<&str>,
    question: &str,
) -> AppResult<Result<Asked, String>> {
    let question = question.trim();
    let n = question.chars().count();
    if !(3..=2000).contains(&n) {
        return Ok(Err(
            "Ask a question of 3 to 2000 characters, e.g. `ask tantivy: how do I merge segments?`"
                .into(),
        ));
    }
    let asked_lately: i64 = cq::table
        .filter(cq::provider.eq(user.provider))
        .filter(cq::external_user.eq(&user.external))
        .filter(cq::created_at.gt(Utc::now().naive_utc() - chrono::Duration::hours(1)))
        .count()
        .get_result(conn)?;
    if asked_lately >= QUESTIONS_PER_HOUR {
        return Ok(Err(format!(
            "You have asked {QUESTIONS_PER_HOUR} questions in the last hour; please try again later."
        )));
    }
    let viewer = linked(conn, user)?;
    let found: Option<(i64, String)> = match project {
        Some(p) => {
            let wanted = p.trim().to_lowercase();
            let all: Vec<(i64, String, String)> = projects::table
                .select((projects::id, projects::slug, projects::name))
                .load(conn)?;
            match all
                .into_iter()
                .find(|(_, slug, name)| *slug == wanted || name.to_lowercase() == wanted)
            {
                Some((id, _, name)) => Some((id, name)),
                None => {
                    return Ok(Err(format!(
                        "There is no project called “{p}” on Guildhall."
                    )))
                }
            }
        }
        None => {
            let title: String = question.chars().take(300).collect();
            let routed = crate::domain::routing::route(conn, index, &title, question, viewer)?;
            match routed.first() {
                Some(r) => {
                    let p = crate::domain::projects::by_slug(conn, &r.slug)?;
                    Some((p.id, p.name))
                }
                None => None,
            }
        }
    };
    let Some((project_id, name)) = found else {
        return Ok(Err(
            "Which project is it about? Ask again as `ask project: your question`.".into(),
        ));
    };
    let id: i64 = diesel::insert_into(cq::table)
        .values((
            cq::provider.eq(user.provider),
            cq::external_user.eq(&user.external),
            cq::login.eq(&user.login),
            cq::project_id.eq(project_id),
            cq::question.eq(question),
            cq::created_at.eq(Utc::now().naive_utc()),
        ))
        .returning(cq::id)
        .get_result(conn)?;
    Ok(Ok(Asked { id, project: name }))
}

/// What the answer needs from the database: the question, its project's
/// slug and the grounding. The model is asked afterwards, with no
/// connection held.
pub fn grounding(
    conn: &mut DbConnection,
    index: &guildhall_index::TicketIndex,
    question: i64,
    min_confidence: f64,
) -> AppResult<(String, String, crate::domain::ai::Grounding)> {
    let (text, project, external, provider): (String, i64, String, String) = cq::table
        .find(question)
        .select((
            cq::question,
            cq::project_id,
            cq::external_user,
            cq::provider,
        ))
        .first(conn)?;
    let slug: String = projects::table
        .find(project)
        .select(projects::slug)
        .first(conn)?;
    let viewer: Option<i64> = ui::table
        .filter(ui::provider.eq(provider))
        .filter(ui::external_id.eq(external))
        .select(ui::user_id)
        .first(conn)
        .optional()?;
    let title: String = text.chars().take(300).collect();
    let similar = crate::domain::search::similar_to_question(
        conn,
        index,
        &title,
        "",
        Some(&slug),
        viewer,
        6,
    )?;
    let g = crate::domain::ai::ground(conn, &similar, min_confidence)?;
    Ok((text, slug, g))
}

/// The answer as chat text, with its citations as links.
pub fn answer_text(a: &crate::domain::ai::AiAnswer, project: &str, public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    match &a.answer {
        Some(text) => {
            let mut out = format!("{text}\n\n");
            if !a.citations.is_empty() {
                out.push_str("From solved tickets: ");
                let links: Vec<String> = a
                    .citations
                    .iter()
                    .map(|id| format!("{base}/t/{id}"))
                    .collect();
                out.push_str(&links.join(" · "));
                out.push('\n');
            }
            out.push_str(&format!(
                "Confidence {:.0}% · {project} on Guildhall",
                a.confidence * 100.0
            ));
            out
        }
        None => format!(
            "No solved ticket of {project} answers this yet. Post it as a ticket and the project's helpers will see it, or ask a paid expert for a faster answer."
        ),
    }
}

/// A button under an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// The answer solved it.
    Solved,
    /// Post the question as a ticket.
    Post,
    /// Post it and go to funding.
    Expert,
}

impl Button {
    /// From `solved`, `post`, `expert`.
    pub fn parse(action: &str) -> Option<Button> {
        match action {
            "solved" => Some(Button::Solved),
            "post" => Some(Button::Post),
            "expert" => Some(Button::Expert),
            _ => None,
        }
    }
}

/// What a button press comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressed {
    /// Tell them this.
    Text(String),
    /// They must tie their chat account to an account first: send them a
    /// one-time link ([`link_url`], made by whoever sends it, so the token
    /// is never kept in a job's payload) with [`needs_link_text`].
    NeedsLink,
}

/// The reply to a press that needs a linked account.
pub fn needs_link_text(url: &str) -> String {
    format!(
        "To post a ticket, first tie this chat account to your Guildhall account (the link works once, for 30 minutes): {url}\nThen press the button again."
    )
}

/// Applies a button press by `user` on question `question`; returns what
/// to tell them.
pub fn press(
    conn: &mut DbConnection,
    user: &ChatUser,
    button: Button,
    question: i64,
    public_url: &str,
) -> AppResult<Pressed> {
    let base = public_url.trim_end_matches('/').to_owned();
    let row: Option<(String, String, i64, String, Option<i64>)> = cq::table
        .find(question)
        .select((
            cq::provider,
            cq::external_user,
            cq::project_id,
            cq::question,
            cq::ticket_id,
        ))
        .first(conn)
        .optional()?;
    let Some((provider, external, project, text, ticket)) = row else {
        return Ok(Pressed::Text(
            "That question is no longer here; ask it again.".into(),
        ));
    };
    if provider != user.provider || external != user.external {
        return Ok(Pressed::Text(
            "Only the person who asked can use these buttons.".into(),
        ));
    }
    if button == Button::Solved {
        diesel::update(cq::table.find(question).filter(cq::solved_at.is_null()))
            .set(cq::solved_at.eq(Some(Utc::now().naive_utc())))
            .execute(conn)?;
        return Ok(Pressed::Text("Glad it helped! Nothing was posted.".into()));
    }
    let Some(account) = linked(conn, user)? else {
        return Ok(Pressed::NeedsLink);
    };
    let fund = |id: i64| format!("{base}/t/{id}#fund");
    if let Some(id) = ticket {
        return Ok(Pressed::Text(match button {
            Button::Expert => format!(
                "It is ticket #{id}. Fund it for a paid expert: {}",
                fund(id)
            ),
            _ => format!("It is ticket #{id} already: {base}/t/{id}"),
        }));
    }
    let slug: String = projects::table
        .find(project)
        .select(projects::slug)
        .first(conn)?;
    let mut title: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if title.trim().chars().count() < 3 {
        title = "A question from chat".into();
    }
    let (id, open) = write_tx(conn, |conn| {
        let t = ticket_domain::create(
            conn,
            account,
            &NewTicket {
                project: slug.clone(),
                title: title.clone(),
                body: text.clone(),
                tags: Vec::new(),
                kind: Kind::Question,
                visibility: Visibility::Public,
            },
        )?;
        let accepted = crate::domain::projects::coc_accepted_at(conn, project, account)?.is_some();
        if accepted {
            ticket_domain::submit(conn, t.id, account)?;
        }
        let n = diesel::update(cq::table.find(question).filter(cq::ticket_id.is_null()))
            .set((cq::ticket_id.eq(Some(t.id)), cq::user_id.eq(Some(account))))
            .execute(conn)?;
        if n == 0 {
            // A second press racing the first: roll back this ticket.
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "the question was posted meanwhile",
            ));
        }
        Ok((t.id, accepted))
    })?;
    let url = format!("{base}/t/{id}");
    Ok(Pressed::Text(match (button, open) {
        (Button::Expert, true) => format!(
            "Posted as ticket #{id}. Fund it for a paid expert: {}\nUpdates on it come here.",
            fund(id)
        ),
        (_, true) => format!("Posted as ticket #{id}: {url}\nUpdates on it come here."),
        (_, false) => format!(
            "Saved as draft ticket #{id}: accept the project's code of conduct and submit it at {url}"
        ),
    }))
}

/// Where ticket `id` stands, as `user` may see it.
pub fn status(
    conn: &mut DbConnection,
    user: &ChatUser,
    id: i64,
    public_url: &str,
) -> AppResult<String> {
    let viewer = linked(conn, user)?;
    let t = match ticket_domain::load_visible(conn, id, viewer) {
        Ok((t, _)) => t,
        Err(AppError::NotFound(_)) => return Ok(format!("There is no ticket #{id} you may see.")),
        Err(e) => return Err(e),
    };
    let what = match t.status() {
        Status::Draft => "a draft, not submitted yet",
        Status::Open => "open, waiting for a helper",
        Status::Claimed => "being worked on by a helper",
        Status::Resolved => "resolved, waiting for the asker to accept",
        Status::Closed | Status::AutoClosed => "closed",
        Status::Cancelled => "cancelled",
    };
    Ok(format!(
        "Ticket #{id} “{}” is {what}: {}/t/{id}",
        t.title,
        public_url.trim_end_matches('/')
    ))
}

/// For the notification pipeline's `chat` channel: who hears about each of
/// `tickets` in a chat (the account that posted it there), by ticket.
pub fn chat_recipients(
    conn: &mut DbConnection,
    tickets: &[i64],
) -> QueryResult<std::collections::HashMap<i64, i64>> {
    Ok(cq::table
        .filter(cq::ticket_id.eq_any(tickets))
        .select((cq::ticket_id, cq::user_id))
        .load::<(Option<i64>, Option<i64>)>(conn)?
        .into_iter()
        .filter_map(|(t, u)| Some((t?, u?)))
        .collect())
}

/// Where an update on `ticket` for `user` goes: (provider, chat id).
pub fn origin(
    conn: &mut DbConnection,
    ticket: i64,
    user: i64,
) -> QueryResult<Option<(String, String)>> {
    cq::table
        .filter(cq::ticket_id.eq(ticket))
        .filter(cq::user_id.eq(user))
        .select((cq::provider, cq::external_user))
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_slack_vector_verifies() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/signature-vectors.json"))
                .unwrap();
        let s = &v["slack_request_signature"];
        let secret = s["signing_secret"].as_str().unwrap().as_bytes();
        let ts = s["X-Slack-Request-Timestamp"].as_str().unwrap();
        let body = s["body"].as_str().unwrap().as_bytes();
        let sig = s["X-Slack-Signature"].as_str().unwrap();
        let then: i64 = ts.parse().unwrap();
        assert_eq!(
            verify_slack(secret, Some(sig), Some(ts), body, then + 10),
            Ok(())
        );
        // The same request an hour later is stale; a changed body is forged.
        assert_eq!(
            verify_slack(secret, Some(sig), Some(ts), body, then + 3600),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify_slack(secret, Some(sig), Some(ts), b"token=x", then),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify_slack(secret, None, Some(ts), body, then),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn commands_are_read() {
        assert_eq!(parse_text(""), Command::Help);
        assert_eq!(parse_text("link"), Command::Link);
        assert_eq!(parse_text("status #42"), Command::Status(42));
        assert_eq!(
            parse_text("ask tantivy: how do I merge segments?"),
            Command::Ask {
                project: Some("tantivy".into()),
                question: "how do I merge segments?".into()
            }
        );
        assert_eq!(
            parse_text("why is my index slow"),
            Command::Ask {
                project: None,
                question: "why is my index slow".into()
            }
        );
    }
}
