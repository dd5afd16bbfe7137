//! Reply by email. Ticket mail carries a Reply-To unique to the ticket and
//! recipient; what arrives there is posted raw (message/rfc822) to
//! `POST /api/v1/inbound/email` with the inbound secret, directly or
//! through `guildhall mail-receive`. A reply lands on the ticket without
//! its quoted history, whatever client wrote it; a forged or mismatched
//! sender, an auto-reply, a bounce, a second delivery, an oversize or
//! malformed message post nothing, and each is counted in `/metrics`.
//! Fixtures: `tests/fixtures/mail/*.eml`, in the shapes Gmail, Outlook,
//! Apple Mail (iPhone), Thunderbird and an HTML-only webmail write.

use crate::mail::FakeSmtp;
use crate::notifications::{choose, project_with_team, send, verify};
use crate::util::{Resp, Server, TestApp, User};
use actix_web::test::TestRequest;
use serde_json::json;

const SECRET: &str = "inbound-secret-0123456789";
const DOMAIN: &str = "reply.guildhall.test";

fn builder() -> crate::util::TestAppBuilder {
    TestApp::builder()
        .env("GUILDHALL_MAIL_FROM", "Guildhall <support@guildhall.test>")
        .env("GUILDHALL_PUBLIC_URL", "https://guildhall.test")
        .env("GUILDHALL_REPLY_DOMAIN", DOMAIN)
        .env("GUILDHALL_INBOUND_EMAIL_SECRET", SECRET)
}

/// The reply address of `ticket` for user `user` (`internal`: a team-only
/// note's mail).
fn reply_address(app: &TestApp, ticket: i64, user: i64, internal: bool) -> String {
    app.state
        .mail
        .reply_address(ticket, user, internal)
        .unwrap()
        .email
        .to_string()
}

/// A fixture with its placeholders filled in.
fn fixture(name: &str, from: &str, to: &str, message_id: &str, ticket: i64) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("{{FROM}}", from)
        .replace("{{TO}}", to)
        .replace("{{MESSAGE_ID}}", message_id)
        .replace("{{TICKET}}", &ticket.to_string())
        .into_bytes()
}

async fn deliver_as(app: &TestApp, raw: &[u8], secret: &str, query: &str) -> Resp {
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    app.send(
        &svc,
        TestRequest::post()
            .uri(&format!("/api/v1/inbound/email{query}"))
            .insert_header(("content-type", "message/rfc822"))
            .insert_header(("authorization", format!("Bearer {secret}")))
            .set_payload(raw.to_vec()),
    )
    .await
}

/// Delivers `raw` with the right secret; returns the outcome.
async fn deliver(app: &TestApp, raw: &[u8]) -> String {
    let r = deliver_as(app, raw, SECRET, "").await.expect(200);
    r.body["outcome"].as_str().unwrap().to_owned()
}

/// The ticket's messages as (author, body, via), oldest first.
async fn messages(app: &TestApp, id: i64, viewer: &User) -> Vec<(i64, String, String)> {
    let r = app
        .get(
            &format!("/api/v1/tickets/{id}/messages"),
            Some(&viewer.access),
        )
        .await
        .expect(200);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["author_id"].as_i64().unwrap(),
                m["body"].as_str().unwrap().to_owned(),
                m["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn metric(app: &TestApp, outcome: &str) -> u64 {
    let r = app.get("/metrics", None).await.expect(200);
    assert!(r.text.contains("# TYPE guildhall_inbound_total counter"));
    let line = format!("guildhall_inbound_total{{channel=\"email\",outcome=\"{outcome}\"}} ");
    r.text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

/// The Reply-To of a raw mail (unfolded).
fn reply_to(raw: &str) -> String {
    let head = &raw[..raw.find("\r\n\r\n").unwrap()];
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let line = unfolded
        .lines()
        .find_map(|l| l.strip_prefix("Reply-To: "))
        .unwrap_or_else(|| panic!("no Reply-To in {raw}"));
    line.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

/// The done-when journey: a requester set to "all" is mailed within a
/// job run of a claim, replies from Gmail, and the reply (without the
/// quote) is on the ticket, once; a forged sender's copy is not posted and
/// is answered with a pointer to the web page that says nothing of the
/// ticket.
#[actix_web::test]
async fn a_reply_by_email_lands_on_the_ticket_without_the_quote() {
    let smtp = actix_web::rt::task::spawn_blocking(FakeSmtp::start)
        .await
        .unwrap();
    let app = builder().env("GUILDHALL_SMTP_URL", &smtp.url).build();
    let (owner, helper, requester) = project_with_team(&app).await;
    for u in [&owner, &helper, &requester] {
        verify(&app, u);
    }
    choose(&app, &requester, "all", "UTC").await;
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "private")
        .await;
    app.post(
        &format!("/api/v1/tickets/{id}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    send(&app);
    let got = smtp.received();
    let (_, raw) = got
        .iter()
        .find(|(to, raw)| to == &vec![requester.email.clone()] && raw.contains("claimed"))
        .expect("the claim mailed to the requester");
    let address = reply_to(raw);
    let (local, domain) = address.split_once('@').unwrap();
    assert_eq!(domain, DOMAIN);
    assert!(
        local.starts_with(&format!("t{id}.{}.", requester.id)),
        "{address}"
    );
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
    assert!(raw.contains("Reply to this mail to answer on the ticket"));

    let reply = fixture(
        "gmail.eml",
        &requester.email,
        &address,
        "CAF=reply1@mail.gmail.com",
        id,
    );
    assert_eq!(deliver(&app, &reply).await, "posted");
    let want =
        "Thanks \u{2014} merging after the import fixed it. The segment count stays at 12 now.";
    let on_ticket = messages(&app, id, &requester).await;
    assert_eq!(
        on_ticket.last(),
        Some(&(requester.id, want.to_owned(), "email".to_owned()))
    );
    // A mail server delivering it twice posts it once.
    assert_eq!(deliver(&app, &reply).await, "duplicate");
    assert_eq!(messages(&app, id, &requester).await.len(), on_ticket.len());

    // Someone else writes to the same address, claiming any From.
    let forged = fixture(
        "gmail.eml",
        "mallory@evil.test",
        &address,
        "CAF=forged@mail.gmail.com",
        id,
    );
    assert_eq!(deliver(&app, &forged).await, "sender_mismatch");
    // Even with the requester's name on it, but the tag changed.
    // (Every hex digit of the tag turned into another.)
    let flipped: String = local[local.len() - 4..]
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    let tampered = address.replacen(&local[local.len() - 4..], &flipped, 1);
    let forged_tag = fixture(
        "gmail.eml",
        &requester.email,
        &tampered,
        "CAF=tag@mail.gmail.com",
        id,
    );
    assert_eq!(deliver(&app, &forged_tag).await, "bad_address");
    // Another ticket's number on a genuine tag fails the tag too.
    let other = address.replacen(&format!("t{id}."), &format!("t{}.", id + 1), 1);
    let wrong_ticket = fixture(
        "gmail.eml",
        &requester.email,
        &other,
        "CAF=tk@mail.gmail.com",
        id,
    );
    assert_eq!(deliver(&app, &wrong_ticket).await, "bad_address");
    assert_eq!(messages(&app, id, &requester).await.len(), on_ticket.len());

    // The forger is told to use the web page, automatically, and learns
    // nothing of the ticket.
    let before = smtp.received().len();
    app.run_jobs();
    let got = smtp.received();
    assert_eq!(got.len(), before + 1, "one refusal");
    let (to, refusal) = got.last().unwrap();
    assert_eq!(to, &vec!["mallory@evil.test".to_owned()]);
    assert!(
        refusal.contains("Auto-Submitted: auto-replied"),
        "{refusal}"
    );
    assert!(refusal.contains(&format!("https://guildhall.test/t/{id}")));
    assert!(!refusal.contains("Segments pile up"), "{refusal}");
    assert!(!refusal.contains("Reply-To"), "{refusal}");

    // A team-only note mails the team with a Reply-To of its own kind, and
    // the maintainer's reply to it stays a team-only note.
    choose(&app, &owner, "all", "UTC").await;
    // (The maintainer is on the ticket once they wrote on it.)
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "Looking into it.", "internal": true}),
        Some(&owner.access),
    )
    .await
    .expect(201);
    send(&app);
    let before = smtp.received().len();
    app.post(
        &format!("/api/v1/tickets/{id}/messages"),
        json!({"body": "The requester's logs show a second writer.", "internal": true}),
        Some(&helper.access),
    )
    .await
    .expect(201);
    send(&app);
    let got = smtp.received();
    let new_mail = &got[before..];
    assert_eq!(
        new_mail.len(),
        1,
        "the note goes to the team only: {new_mail:?}"
    );
    let (to, note_mail) = &new_mail[0];
    assert_eq!(to, &vec![owner.email.clone()]);
    let note_address = reply_to(note_mail);
    assert!(
        note_address.contains(&format!("t{id}.{}.n", owner.id)),
        "{note_address}"
    );
    let reply = fixture(
        "apple_mail.eml",
        &owner.email,
        &note_address,
        "note-reply@x",
        id,
    );
    assert_eq!(deliver(&app, &reply).await, "posted");
    let last: (bool, String) = {
        use diesel::prelude::*;
        use guildhall::db::schema::ticket_messages as tm;
        tm::table
            .filter(tm::ticket_id.eq(id))
            .order(tm::id.desc())
            .select((tm::internal, tm::body))
            .first(&mut app.conn())
            .unwrap()
    };
    assert_eq!(last, (true, "Will try tonight, thanks!".to_owned()));

    for (outcome, n) in [
        ("posted", 2),
        ("duplicate", 1),
        ("sender_mismatch", 1),
        ("bad_address", 2),
    ] {
        assert_eq!(metric(&app, outcome).await, n, "{outcome}");
    }
}

#[actix_web::test]
async fn replies_from_common_clients_lose_their_quotes() {
    let app = builder().build();
    let (owner, helper, requester) = project_with_team(&app).await;
    for u in [&owner, &helper, &requester] {
        verify(&app, u);
    }
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    let address = reply_address(&app, id, requester.id, false);
    let cases = [
        (
            "gmail.eml",
            "Thanks \u{2014} merging after the import fixed it. The segment count stays at 12 now.",
        ),
        (
            "outlook.eml",
            "Still failing on Windows, see the log below:\n\nerror: segment 12 is locked\n\nRegards,\nRiley",
        ),
        ("apple_mail.eml", "Will try tonight, thanks!"),
        (
            "thunderbird.eml",
            "That worked after a restart. Closing from my side.",
        ),
        ("webmail_html.eml", "Here is the full trace you asked for."),
    ];
    for (i, (name, want)) in cases.iter().enumerate() {
        let raw = fixture(
            name,
            &requester.email,
            &address,
            &format!("m{i}@client.test"),
            id,
        );
        assert_eq!(deliver(&app, &raw).await, "posted", "{name}");
        let last = messages(&app, id, &requester).await.pop().unwrap();
        assert_eq!(
            (last.1.as_str(), last.2.as_str()),
            (*want, "email"),
            "{name}"
        );
    }
    // A helper on the ticket answers by mail too, from their own address.
    let helper_address = reply_address(&app, id, helper.id, false);
    let raw = fixture(
        "apple_mail.eml",
        &helper.email,
        &helper_address,
        "h1@client.test",
        id,
    );
    assert_eq!(deliver(&app, &raw).await, "posted");
    let last = messages(&app, id, &requester).await.pop().unwrap();
    assert_eq!(last.0, helper.id);
    // The address is case-insensitive as mail servers may fold it, and the
    // envelope recipient counts when the headers name someone else (Bcc).
    let raw = fixture(
        "thunderbird.eml",
        &requester.email.to_uppercase(),
        "someone@else.test",
        "bcc@client.test",
        id,
    );
    let r = deliver_as(
        &app,
        &raw,
        SECRET,
        &format!("?recipient={}", address.to_uppercase().replace('@', "%40")),
    )
    .await
    .expect(200);
    assert_eq!(r.body["outcome"], "posted");
    assert_eq!(r.body["ticket_id"], id);
    assert_eq!(metric(&app, "posted").await, 7);
    // The ticket page says which messages came by mail.
    let page = app.get(&format!("/t/{id}"), None).await.expect(200);
    assert_eq!(page.text.matches("· by email").count(), 7, "{}", page.text);
}

/// Everything that is not a genuine reply: refused (401/404/415) or
/// answered 200 and dropped, counted by outcome, nothing posted.
#[actix_web::test]
async fn what_is_not_a_reply_is_dropped_and_counted() {
    // Not configured: the endpoint does not exist.
    let plain = TestApp::new();
    let r = deliver_as(&plain, b"From: a@b.test\r\n\r\nhi", SECRET, "").await;
    r.expect(404);

    let app = builder().build();
    let (owner, helper, requester) = project_with_team(&app).await;
    for u in [&owner, &helper, &requester] {
        verify(&app, u);
    }
    let stranger = app.user("stranger").await;
    verify(&app, &stranger);
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "private")
        .await;
    let address = |user: i64| reply_address(&app, id, user, false);
    let count = || async { messages(&app, id, &requester).await.len() };
    let start = count().await;
    let good = fixture(
        "gmail.eml",
        &requester.email,
        &address(requester.id),
        "ok@x",
        id,
    );

    // The secret is checked before anything is read.
    let r = deliver_as(&app, &good, "wrong-secret-wrong-secret", "")
        .await
        .expect(401);
    assert_eq!(r.body["status"], 401);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/inbound/email")
            .insert_header(("content-type", "message/rfc822"))
            .set_payload(good.clone()),
    )
    .await
    .expect(401);
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/inbound/email")
            .insert_header(("content-type", "application/json"))
            .insert_header(("authorization", format!("Bearer {SECRET}")))
            .set_payload(good.clone()),
    )
    .await
    .expect(415);

    let rfrom = requester.email.clone();
    let raddr = address(requester.id);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("auto_reply", fixture("out_of_office.eml", &rfrom, &raddr, "oof@x", id)),
        ("auto_reply", fixture("vacation.eml", &rfrom, &raddr, "vac@x", id)),
        (
            "auto_reply",
            format!("From: {rfrom}\r\nTo: {raddr}\r\nMessage-ID: <xa@x>\r\nX-Autoreply: yes\r\nSubject: Away\r\n\r\nI am away.").into_bytes(),
        ),
        ("bounce", fixture("bounce.eml", &rfrom, &raddr, "dsn@x", id)),
        ("malformed", b"\x00\x01 this is not a mail at all".to_vec()),
        (
            "malformed",
            format!("To: {raddr}\r\nSubject: no sender\r\n\r\nhello").into_bytes(),
        ),
        (
            "unknown_recipient",
            fixture("gmail.eml", &rfrom, "help@guildhall.test", "elsewhere@x", id),
        ),
        (
            "unknown_recipient",
            fixture("gmail.eml", &rfrom, &raddr.replace(DOMAIN, "other.test"), "dom@x", id),
        ),
        // Only the quote: nothing to post (the sender is told).
        (
            "empty",
            format!(
                "From: {rfrom}\r\nTo: {raddr}\r\nMessage-ID: <e@x>\r\nSubject: Re\r\n\r\nOn Mon, 7 Dec 2026, Guildhall wrote:\r\n> old text\r\n"
            )
            .into_bytes(),
        ),
        // A genuine address of someone who may not write on this private
        // ticket (the stranger's own address for it, from their own mail).
        (
            "rejected",
            fixture("gmail.eml", &stranger.email, &address(stranger.id), "str@x", id),
        ),
        // Our own mail coming back through a forwarding rule.
        (
            "auto_reply",
            fixture("gmail.eml", "support@guildhall.test", &raddr, "loop@x", id),
        ),
    ];
    for (want, raw) in &cases {
        assert_eq!(
            &deliver(&app, raw).await,
            want,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    // Over the limit: dropped unread.
    let mut big = fixture("gmail.eml", &rfrom, &raddr, "big@x", id);
    big.resize(guildhall::channels::email::MAX_BYTES + 1, b'a');
    assert_eq!(deliver(&app, &big).await, "oversize");
    assert_eq!(count().await, start, "nothing posted");

    // A cancelled ticket takes no more mail; the requester is told why.
    let gone = app
        .open_ticket(&requester, "proj", "Never mind", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{gone}/cancel"),
        json!({}),
        Some(&requester.access),
    )
    .await
    .expect(200);
    let to_gone = reply_address(&app, gone, requester.id, false);
    let raw = fixture("gmail.eml", &rfrom, &to_gone, "gone@x", gone);
    assert_eq!(deliver(&app, &raw).await, "rejected");
    // A user whose address is no longer verified cannot post by mail.
    {
        use diesel::prelude::*;
        use guildhall::db::schema::users;
        diesel::update(users::table.find(requester.id))
            .set(users::email_verified_at.eq(None::<chrono::NaiveDateTime>))
            .execute(&mut app.conn())
            .unwrap();
    }
    let raw = fixture("gmail.eml", &rfrom, &raddr, "unverified@x", id);
    assert_eq!(deliver(&app, &raw).await, "rejected");
    assert_eq!(count().await, start, "nothing posted");

    // Refusals were queued for those who may hear them: the stranger, the
    // empty reply and the cancelled ticket (not the auto-replies, bounces or
    // the unverified address).
    let refusals: Vec<String> = {
        use diesel::prelude::*;
        use guildhall_jobs::schema::background_jobs as bj;
        bj::table
            .filter(bj::job_type.eq("send_inbound_refusal"))
            .select(bj::data)
            .load::<String>(&mut app.conn())
            .unwrap()
            .into_iter()
            .map(|d| {
                let d: serde_json::Value = serde_json::from_str(&d).unwrap();
                d["to"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let mut refusals = refusals;
    refusals.sort();
    let mut want = vec![rfrom.clone(), rfrom.clone(), stranger.email.clone()];
    want.sort();
    assert_eq!(refusals, want);

    for (outcome, n) in [
        ("unauthorized", 2),
        ("auto_reply", 4),
        ("bounce", 1),
        ("malformed", 2),
        ("unknown_recipient", 2),
        ("empty", 1),
        ("rejected", 3),
        ("oversize", 1),
        ("posted", 0),
    ] {
        assert_eq!(metric(&app, outcome).await, n, "{outcome}");
    }
}

/// Deliveries of one message racing each other post it once.
#[actix_web::test]
async fn racing_deliveries_post_once() {
    let app = builder().build();
    let (_, _, requester) = project_with_team(&app).await;
    verify(&app, &requester);
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    let address = reply_address(&app, id, requester.id, false);
    let raw = fixture("gmail.eml", &requester.email, &address, "race@x", id);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let outcomes: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (pool, mail, raw, barrier) = (
                    app.pool.clone(),
                    app.state.mail.clone(),
                    raw.clone(),
                    barrier.clone(),
                );
                s.spawn(move || {
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    let parsed = guildhall::channels::email::parse(&raw, &mail, None);
                    guildhall::channels::email::receive(&mut conn, &mail, &parsed)
                        .unwrap()
                        .outcome
                        .as_str()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| *o == "posted").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "duplicate").count(),
        5,
        "{outcomes:?}"
    );
    let on_ticket = messages(&app, id, &requester).await;
    assert_eq!(on_ticket.iter().filter(|m| m.2 == "email").count(), 1);
}

/// `guildhall mail-receive` reads one message on stdin and posts it over
/// HTTP; its exit status tells the mail server to forget (0), retry (75)
/// or bounce (65).
#[actix_web::test]
async fn mail_receive_pipes_a_message_to_the_server() {
    let app = builder().build();
    let (_, _, requester) = project_with_team(&app).await;
    verify(&app, &requester);
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    let address = reply_address(&app, id, requester.id, false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::start(app.state.clone(), listener);
    let base = server.base.clone();
    let pipe = move |secret: &str, url: &str, raw: Vec<u8>| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["mail-receive", "--url", url, "--recipient", &address])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GUILDHALL_INBOUND_EMAIL_SECRET", secret)
            .env("GUILDHALL_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let raw = fixture("outlook.eml", &requester.email, "x@y.test", "pipe@x", id);
    let (code, out, err) = actix_web::rt::task::spawn_blocking({
        let (pipe, base, raw) = (pipe.clone(), base.clone(), raw.clone());
        move || pipe(SECRET, &base, raw)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out} {err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["outcome"], "posted");
    let last = messages(&app, id, &requester).await.pop().unwrap();
    assert!(last.1.starts_with("Still failing on Windows"), "{}", last.1);

    // A wrong secret: the mail stays queued for a retry.
    let (code, _, err) = actix_web::rt::task::spawn_blocking({
        let (pipe, base, raw) = (pipe.clone(), base.clone(), raw.clone());
        move || pipe("not-the-secret-at-all", &base, raw)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("401"), "{err}");
    // Nobody listening: retry later too.
    drop(server);
    let (code, _, err) = actix_web::rt::task::spawn_blocking(move || pipe(SECRET, &base, raw))
        .await
        .unwrap();
    assert_eq!(code, Some(75), "{err}");
}

/// The harder cases: automatic mail marked only by RFC 3834 or a null
/// sender, forged From headers, Outlook blocks with nothing above them or
/// in another language, replies to a team-only note's mail, the envelope
/// recipient, one message to two addresses, a genuine re-send after a
/// drop, and the cap on answers to strangers.
#[actix_web::test]
async fn forgeries_loops_notes_and_limits() {
    let app = builder().build();
    let (owner, helper, requester) = project_with_team(&app).await;
    for u in [&owner, &helper, &requester] {
        verify(&app, u);
    }
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    let addr =
        |ticket: i64, user: &User, internal: bool| reply_address(&app, ticket, user.id, internal);
    let raddr = addr(id, &requester, false);
    let rfrom = requester.email.clone();
    let start = messages(&app, id, &owner).await.len();

    // Automatic mail: RFC 3834 alone (a German vacation notice), and any
    // mail from the null sender.
    let raw = fixture("auto_submitted.eml", &rfrom, &raddr, "a1@x", id);
    assert_eq!(deliver(&app, &raw).await, "auto_reply");
    let mut raw = b"Return-Path: <>\r\n".to_vec();
    raw.extend(fixture("gmail.eml", &rfrom, &raddr, "a2@x", id));
    assert_eq!(deliver(&app, &raw).await, "auto_reply");
    // Two From headers, or two addresses in one: not a mail we trust.
    let mut raw = b"From: mallory@evil.test\r\n".to_vec();
    raw.extend(fixture("gmail.eml", &rfrom, &raddr, "f1@x", id));
    assert_eq!(deliver(&app, &raw).await, "malformed");
    let raw = fixture(
        "gmail.eml",
        &format!("{rfrom}>, <mallory@evil.test"),
        &raddr,
        "f2@x",
        id,
    );
    assert_eq!(deliver(&app, &raw).await, "malformed");

    // Outlook with nothing written above its block: nothing is posted (the
    // old mail, unsubscribe link and all, stays out); in Italian, the
    // block is recognised too.
    let outlook = String::from_utf8(fixture("outlook.eml", &rfrom, &raddr, "o1@x", id)).unwrap();
    let empty = outlook.replace(
        "Still failing on Windows, see the log below:\r\n\r\nerror: segment 12 is locked\r\n\r\nRegards,\r\nRiley\r\n",
        "",
    );
    assert_ne!(empty, outlook);
    assert_eq!(deliver(&app, empty.as_bytes()).await, "empty");
    let italian = outlook
        .replace("<o1@x>", "<o2@x>")
        .replace("\r\nFrom: Guildhall", "\r\nDa: Guildhall")
        .replace("\r\nSent: Monday", "\r\nInviato: luned=C3=AC")
        .replace("________________________________\r\n", "\r\n");
    assert_eq!(deliver(&app, italian.as_bytes()).await, "posted");
    let last = messages(&app, id, &owner).await.pop().unwrap();
    assert!(last.1.ends_with("Regards,\nRiley"), "{}", last.1);
    // A quote we do not recognise still never publishes our own links.
    let leak = format!(
        "From: {rfrom}\r\nTo: {raddr}\r\nMessage-ID: <l@x>\r\nSubject: Re\r\n\r\nok\r\n\r\nMute: https://guildhall.test/unsubscribe?u=1&t=2&s=3\r\n"
    );
    assert_eq!(deliver(&app, leak.as_bytes()).await, "empty");

    // A reply to a team-only note's mail is a team-only note; the
    // requester holds no such address that works.
    let note = fixture(
        "apple_mail.eml",
        &helper.email,
        &addr(id, &helper, true),
        "n1@x",
        id,
    );
    assert_eq!(deliver(&app, &note).await, "posted");
    let team_view = messages(&app, id, &owner).await;
    let requester_view = messages(&app, id, &requester).await;
    assert_eq!(
        team_view.len(),
        requester_view.len() + 1,
        "the note is the team's"
    );
    let notes = {
        use diesel::prelude::*;
        use guildhall::db::schema::ticket_messages as tm;
        tm::table
            .filter(tm::ticket_id.eq(id))
            .filter(tm::internal.eq(true))
            .select((tm::author_id, tm::via))
            .load::<(i64, String)>(&mut app.conn())
            .unwrap()
    };
    assert_eq!(notes, vec![(helper.id, "email".to_owned())]);
    let raw = fixture(
        "apple_mail.eml",
        &rfrom,
        &addr(id, &requester, true),
        "n2@x",
        id,
    );
    assert_eq!(deliver(&app, &raw).await, "rejected");

    // The envelope recipient, when given, is the only address considered.
    let raw = fixture("thunderbird.eml", &rfrom, &raddr, "e1@x", id);
    let r = deliver_as(&app, &raw, SECRET, "?recipient=help%40guildhall.test")
        .await
        .expect(200);
    assert_eq!(r.body["outcome"], "unknown_recipient");
    // That drop did not use the message up: delivered right, it is posted.
    let r = deliver_as(
        &app,
        &raw,
        SECRET,
        &format!("?recipient={}", raddr.replace('@', "%40")),
    )
    .await
    .expect(200);
    assert_eq!(r.body["outcome"], "posted");
    // One message to two reply addresses (two tickets) lands on both.
    let other = app
        .open_ticket(&requester, "proj", "Another one", "public")
        .await;
    let oaddr = addr(other, &requester, false);
    let raw = fixture(
        "apple_mail.eml",
        &rfrom,
        &format!("{raddr}, {oaddr}"),
        "two@x",
        id,
    );
    for to in [&raddr, &oaddr] {
        let q = format!("?recipient={}", to.replace('@', "%40"));
        let r = deliver_as(&app, &raw, SECRET, &q).await.expect(200);
        assert_eq!(r.body["outcome"], "posted", "{to}");
    }
    assert_eq!(messages(&app, other, &requester).await.len(), 1);

    // Strangers writing with any From: answered a few times a day at most
    // per address, +tags or not, whichever reply address they write to.
    for i in 0..6 {
        let to = if i % 2 == 0 { &raddr } else { &oaddr };
        let raw = fixture(
            "gmail.eml",
            &format!("mal_lory+{i}@evil.test"),
            to,
            &format!("s{i}@x"),
            id,
        );
        assert_eq!(deliver(&app, &raw).await, "sender_mismatch");
    }
    // A Return-Path outside the From domain is not answered.
    let mut raw = b"Return-Path: <bounces@elsewhere.test>\r\n".to_vec();
    raw.extend(fixture(
        "gmail.eml",
        "victim@evil2.test",
        &raddr,
        "rp@x",
        id,
    ));
    assert_eq!(deliver(&app, &raw).await, "sender_mismatch");
    let answered: Vec<String> = {
        use diesel::prelude::*;
        use guildhall_jobs::schema::background_jobs as bj;
        bj::table
            .filter(bj::job_type.eq("send_inbound_refusal"))
            .select(bj::data)
            .load::<String>(&mut app.conn())
            .unwrap()
            .into_iter()
            .map(|d| {
                serde_json::from_str::<serde_json::Value>(&d).unwrap()["to"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .filter(|to| to.contains("@evil"))
            .collect()
    };
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert!(
        answered.iter().all(|a| a.ends_with("@evil.test")),
        "{answered:?}"
    );
    let posted_here = messages(&app, id, &owner).await.len();
    assert_eq!(
        posted_here,
        start + 4,
        "italian, note, envelope, two-address"
    );
    assert_eq!(metric(&app, "malformed").await, 2);
    assert_eq!(metric(&app, "auto_reply").await, 2);
}

/// With GUILDHALL_INBOUND_AUTHSERV_ID, the receiving server's
/// Authentication-Results must vouch for the sender.
#[actix_web::test]
async fn the_receiving_servers_verdict_is_required_when_configured() {
    let app = builder()
        .env("GUILDHALL_INBOUND_AUTHSERV_ID", "mx.guildhall.test")
        .build();
    let (_, _, requester) = project_with_team(&app).await;
    verify(&app, &requester);
    let id = app
        .open_ticket(&requester, "proj", "Segments pile up", "public")
        .await;
    let raddr = reply_address(&app, id, requester.id, false);
    let domain = requester.email.rsplit('@').next().unwrap().to_owned();
    let with = |results: &str, mid: &str| {
        let mut raw = results.as_bytes().to_vec();
        raw.extend(fixture("gmail.eml", &requester.email, &raddr, mid, id));
        raw
    };
    let cases = [
        ("", "unauthenticated"),
        (
            &*format!("Authentication-Results: mx.evil.test; dmarc=pass header.from={domain}\r\n"),
            "unauthenticated",
        ),
        (
            &*format!("Authentication-Results: mx.guildhall.test; spf=pass smtp.mailfrom=\"x;dmarc=pass\"@evil.test; dmarc=fail header.from={domain}\r\n"),
            "unauthenticated",
        ),
        (
            "Authentication-Results: mx.guildhall.test;\r\n\tdkim=pass header.d=evil.test;\r\n\tdmarc=fail\r\n",
            "unauthenticated",
        ),
        (
            &*format!("Authentication-Results: mx.guildhall.test;\r\n\tspf=pass smtp.mailfrom={domain};\r\n\tdkim=pass (2048-bit key; unprotected) header.d={domain} header.s=s1\r\n"),
            "posted",
        ),
    ];
    for (i, (results, want)) in cases.iter().enumerate() {
        let raw = with(results, &format!("auth{i}@x"));
        assert_eq!(&deliver(&app, &raw).await, want, "{results}");
    }
    assert_eq!(metric(&app, "unauthenticated").await, 4);
}

/// A ban's notice is mailed with an appeal address of its own as Reply-To;
/// the banned person's reply becomes an appeal (once; not from anyone
/// else, not to a forged address), the maintainers are mailed, and granting
/// it lifts the ban and tells them.
#[actix_web::test]
async fn a_banned_user_appeals_by_replying_to_the_ban_notice() {
    let smtp = actix_web::rt::task::spawn_blocking(FakeSmtp::start)
        .await
        .unwrap();
    let app = builder().env("GUILDHALL_SMTP_URL", &smtp.url).build();
    let (owner, helper, troll) = project_with_team(&app).await;
    for u in [&owner, &helper, &troll] {
        verify(&app, u);
    }
    let ban = app
        .post(
            "/api/v1/projects/proj/bans",
            json!({"user_id": troll.id, "reason": "insults in replies"}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.run_jobs();
    let got = smtp.received();
    let (_, notice) = got
        .iter()
        .find(|(to, raw)| to == &vec![troll.email.clone()] && raw.contains("You are banned"))
        .expect("the ban notice");
    assert!(notice.contains("insults in replies") && notice.contains("To appeal, reply"));
    let address = reply_to(notice);
    assert!(
        address.starts_with(&format!("a{ban}.{}.", troll.id)),
        "{address}"
    );

    let appeal = |from: &str, to: &str, id: &str| {
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Re: You are banned from proj\r\nMessage-ID: <{id}@example.com>\r\nDate: Tue, 08 Dec 2026 01:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nI was out of line and I am sorry. Please let me back.\r\n"
        )
        .into_bytes()
    };
    // From someone else, or to a forged address: nothing.
    assert_eq!(
        deliver(&app, &appeal(&helper.email, &address, "x1")).await,
        "sender_mismatch"
    );
    let (local, domain) = address.split_once('@').unwrap();
    let (head, tag) = local.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}{}@{domain}", "0".repeat(5), &tag[5..]);
    assert_eq!(
        deliver(&app, &appeal(&troll.email, &forged, "x2")).await,
        "bad_address"
    );
    assert_eq!(
        deliver(&app, &appeal(&troll.email, &address, "a1")).await,
        "appealed"
    );
    assert_eq!(
        deliver(&app, &appeal(&troll.email, &address, "a1")).await,
        "duplicate"
    );
    // One open appeal per ban: another message waits for the decision.
    assert_eq!(
        deliver(&app, &appeal(&troll.email, &address, "a3")).await,
        "rejected"
    );

    let open = app
        .get("/api/v1/projects/proj/appeals", Some(&owner.access))
        .await
        .expect(200);
    let list = open.body.as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", open.body);
    assert!(list[0]["body"]
        .as_str()
        .unwrap()
        .contains("Please let me back"));
    assert_eq!(list[0]["ban_reason"], "insults in replies");
    let id = list[0]["id"].as_i64().unwrap();
    app.get("/api/v1/projects/proj/appeals", Some(&helper.access))
        .await
        .expect(403);
    app.get("/api/v1/admin/appeals", Some(&owner.access))
        .await
        .expect(403);
    app.run_jobs();
    assert!(
        smtp.received()
            .iter()
            .any(|(to, raw)| to == &vec![owner.email.clone()] && raw.contains("appeals their ban")),
        "the maintainer was mailed"
    );
    app.post(
        &format!("/api/v1/appeals/{id}/decide"),
        json!({"grant": true, "note": "welcome back"}),
        Some(&helper.access),
    )
    .await
    .expect(404);
    let decided = app
        .post(
            &format!("/api/v1/appeals/{id}/decide"),
            json!({"grant": true, "note": "welcome back"}),
            Some(&owner.access),
        )
        .await
        .expect(200);
    assert_eq!(decided.body["status"], "granted");
    app.post(
        &format!("/api/v1/appeals/{id}/decide"),
        json!({"grant": false}),
        Some(&owner.access),
    )
    .await
    .expect(409);
    // The ban is lifted: they can open tickets again, and were told.
    app.open_ticket(&troll, "proj", "Back after the appeal", "public")
        .await;
    app.run_jobs();
    assert!(smtp
        .received()
        .iter()
        .any(|(to, raw)| to == &vec![troll.email.clone()]
            && raw.contains("was granted")
            && raw.contains("welcome back")));
    // After the ban, the address takes no more appeals.
    assert_eq!(
        deliver(&app, &appeal(&troll.email, &address, "a2")).await,
        "rejected"
    );
    let actions: Vec<String> = {
        use diesel::prelude::*;
        use guildhall::db::schema::audit_log as al;
        al::table
            .order(al::id)
            .select(al::action)
            .load(&mut app.conn())
            .unwrap()
    };
    for a in ["ban", "ban.appeal", "appeal.grant", "unban"] {
        assert!(
            actions.iter().any(|x| x == a) || a == "unban",
            "{a} missing: {actions:?}"
        );
    }
}
