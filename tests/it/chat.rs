//! Discord and Slack against a local fake of their APIs over real HTTP:
//! signed requests only (forged, stale and replayed ones are 401 and write
//! nothing), a question answered privately from solved tickets with its
//! buttons, a chat account tied to a Guildhall account by a one-time link,
//! the question posted as a ticket, and updates on it sent back by direct
//! message.

use crate::util::{Resp, TestApp};
use actix_web::test::TestRequest;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use ed25519_dalek::Signer;
use guildhall::db::schema::{
    chat_deliveries, chat_link_tokens, chat_questions, tickets, user_identities as ui,
};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};

/// What the fake chat APIs were sent: (method and path, body).
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

struct FakeChat {
    calls: Calls,
    base: String,
    _server: crate::util::Server,
}

async fn record(req: HttpRequest, body: web::Bytes, calls: web::Data<Calls>) -> HttpResponse {
    let path = req.path().to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    calls
        .lock()
        .unwrap()
        .push((format!("{} {path}", req.method()), value.clone()));
    if path == "/users/@me/channels" {
        if auth != "Bot test-bot-token" {
            return HttpResponse::Unauthorized().finish();
        }
        let who = value["recipient_id"].as_str().unwrap_or("");
        return HttpResponse::Ok().json(json!({"id": format!("dm-{who}"), "type": 1}));
    }
    if path == "/channels/dm-u-nodm/messages" {
        // Discord: "Cannot send messages to this user".
        return HttpResponse::Forbidden().json(json!({"code": 50007}));
    }
    if path == "/chat.postMessage" {
        if auth != "Bearer xoxb-test" {
            return HttpResponse::Ok().json(json!({"ok": false, "error": "invalid_auth"}));
        }
        return HttpResponse::Ok().json(json!({"ok": true, "ts": "1.2"}));
    }
    HttpResponse::Ok().json(json!({"id": "1"}))
}

impl FakeChat {
    fn start() -> FakeChat {
        let calls: Calls = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = calls.clone();
        let server = crate::util::Server::start_with(listener, move || {
            actix_web::App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(record))
        });
        FakeChat {
            calls,
            base,
            _server: server,
        }
    }

    fn calls(&self, prefix: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A project with a solved ticket about segment merging, so the AI lane
/// has something to quote; the requester "ada" has an account.
async fn world(app: &TestApp) -> (crate::util::User, crate::util::User) {
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let ada = app.user("ada").await;
    app.project(&owner, "proj").await;
    app.approved_helper(&owner, &helper, "proj").await;
    let solved = app
        .open_ticket(
            &owner,
            "proj",
            "Too many segments after bulk indexing merge",
            "public",
        )
        .await;
    app.answered_and_accepted(
        solved,
        &owner,
        &helper,
        "Set a LogMergePolicy with a higher merge factor and commit less often.",
    )
    .await;
    app.run_jobs();
    (ada, helper)
}

async fn metric(app: &TestApp, channel: &str, outcome: &str) -> u64 {
    let r = app.get("/metrics", None).await.expect(200);
    let line = format!("guildhall_inbound_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} ");
    r.text
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

macro_rules! count {
    ($app:expr, $table:ident) => {
        $table::table
            .count()
            .get_result::<i64>(&mut $app.conn())
            .unwrap()
    };
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------- Discord

struct Discord {
    key: ed25519_dalek::SigningKey,
}

impl Discord {
    fn new() -> Discord {
        Discord {
            key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        }
    }

    fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    async fn send(
        &self,
        app: &TestApp,
        body: &Value,
        ts: i64,
        key: Option<&ed25519_dalek::SigningKey>,
    ) -> Resp {
        let raw = serde_json::to_vec(body).unwrap();
        let mut signed = ts.to_string().into_bytes();
        signed.extend_from_slice(&raw);
        let sig = key.unwrap_or(&self.key).sign(&signed);
        let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
        let req = TestRequest::post()
            .uri("/api/v1/webhooks/discord")
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-signature-ed25519", hex::encode(sig.to_bytes())))
            .insert_header(("x-signature-timestamp", ts.to_string()))
            .set_payload(raw);
        app.send(&svc, req).await
    }
}

fn command(id: &str, user: &str, name: &str, options: Value) -> Value {
    json!({"id": id, "application_id": "1234", "type": 2, "token": format!("tok-{id}"),
           "channel_id": "c1", "member": {"user": {"id": user, "username": format!("{user}-name")}},
           "data": {"name": name, "options": options}})
}

fn press(id: &str, user: &str, custom_id: &str) -> Value {
    json!({"id": id, "application_id": "1234", "type": 3, "token": format!("tok-{id}"),
           "channel_id": "c1", "user": {"id": user, "username": format!("{user}-name")},
           "data": {"custom_id": custom_id, "component_type": 2}})
}

#[actix_web::test]
async fn a_discord_question_gets_an_answer_and_becomes_a_ticket() {
    let fake = actix_web::rt::task::spawn_blocking(FakeChat::start)
        .await
        .unwrap();
    let d = Discord::new();
    let app = TestApp::builder()
        .env("GUILDHALL_DISCORD_PUBLIC_KEY", &d.public_hex())
        .env("GUILDHALL_DISCORD_APP_ID", "1234")
        .env("GUILDHALL_DISCORD_BOT_TOKEN", "test-bot-token")
        .env("GUILDHALL_DISCORD_API_BASE", &fake.base)
        .build();
    let (ada, helper) = world(&app).await;

    // PING → PONG.
    let r = d
        .send(&app, &json!({"id": "p", "type": 1}), now(), None)
        .await
        .expect(200);
    assert_eq!(r.body, json!({"type": 1}));

    // Forged, stale and unsigned requests: 401, nothing written.
    let ask = command(
        "i1",
        "u1",
        "ask",
        json!([{"name": "question", "type": 3, "value": "too many segments after a bulk merge"},
               {"name": "project", "type": 3, "value": "proj"}]),
    );
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    d.send(&app, &ask, now(), Some(&other)).await.expect(401);
    d.send(&app, &ask, now() - 600, None).await.expect(401);
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/webhooks/discord")
            .insert_header(("content-type", "application/json"))
            .set_payload(serde_json::to_vec(&ask).unwrap()),
    )
    .await
    .expect(401);
    assert_eq!(count!(app, chat_deliveries), 0);
    assert_eq!(count!(app, chat_questions), 0);
    assert_eq!(metric(&app, "discord", "bad_signature").await, 2);
    assert_eq!(metric(&app, "discord", "stale").await, 1);

    // The question: deferred privately at once, answered by a job through
    // the interaction's webhook, with the three buttons.
    let r = d.send(&app, &ask, now(), None).await.expect(200);
    assert_eq!(r.body, json!({"type": 5, "data": {"flags": 64}}));
    // A replay of the very same signed request: refused, nothing more.
    d.send(&app, &ask, now(), None).await.expect(401);
    assert_eq!(count!(app, chat_questions), 1);
    assert_eq!(metric(&app, "discord", "replayed").await, 1);
    app.run_jobs();
    let answers = fake.calls("PATCH /webhooks/1234/tok-i1/messages/@original");
    assert_eq!(answers.len(), 1, "{:?}", fake.calls.lock().unwrap());
    let answer = &answers[0];
    assert!(
        answer["content"]
            .as_str()
            .unwrap()
            .contains("LogMergePolicy"),
        "{answer}"
    );
    assert_eq!(answer["flags"], 64);
    let buttons: Vec<String> = answer["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap().to_owned())
        .collect();
    let q: i64 = chat_questions::table
        .select(chat_questions::id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(
        buttons,
        [
            format!("gh:solved:{q}"),
            format!("gh:post:{q}"),
            format!("gh:expert:{q}")
        ]
    );

    // Someone else pressing the asker's button changes nothing.
    let r = d
        .send(&app, &press("i2", "u2", &buttons[1]), now(), None)
        .await
        .expect(200);
    assert!(r.body["data"]["content"]
        .as_str()
        .unwrap()
        .contains("Only the person who asked"));
    // The asker is not linked yet: a one-time link.
    let r = d
        .send(&app, &press("i3", "u1", &buttons[2]), now(), None)
        .await
        .expect(200);
    let text = r.body["data"]["content"].as_str().unwrap().to_owned();
    assert_eq!(r.body["data"]["flags"], 64);
    let at = text.find("/chat/link?token=").expect("a link");
    let path: String = text[at..].split_whitespace().next().unwrap().to_owned();
    assert_eq!(count!(app, tickets), 1, "nothing posted yet");

    // Ada opens it signed in and confirms: the Discord account is hers.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut b = crate::web::signed_in(&app, svc, &ada.email).await;
    let page = b.get(&path).await.expect(200);
    assert!(page.text.contains("u1-name"), "{}", page.text);
    assert!(
        page.text.contains("<code>u1</code>"),
        "the chat id is shown"
    );
    assert!(page.text.contains("Never confirm a link someone sent you"));
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let csrf = crate::web::csrf(&page);
    b.post(
        "/chat/link",
        &[("csrf", csrf.as_str()), ("token", token.as_str())],
    )
    .await
    .expect(200);
    let linked: i64 = ui::table
        .filter(ui::provider.eq("discord"))
        .filter(ui::external_id.eq("u1"))
        .select(ui::user_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(linked, ada.id);
    // The link works once.
    b.post(
        "/chat/link",
        &[("csrf", csrf.as_str()), ("token", token.as_str())],
    )
    .await
    .expect(400);

    // Ask a paid expert: the ticket is posted (Ada accepted the project's
    // code of conduct before) and the funding page is where to go.
    app.post(
        "/api/v1/projects/proj/coc/accept",
        json!({}),
        Some(&ada.access),
    )
    .await
    .expect(200);
    let r = d
        .send(&app, &press("i4", "u1", &buttons[2]), now(), None)
        .await
        .expect(200);
    let text = r.body["data"]["content"].as_str().unwrap();
    let ticket: i64 = chat_questions::table
        .select(chat_questions::ticket_id)
        .first::<Option<i64>>(&mut app.conn())
        .unwrap()
        .expect("posted");
    assert!(text.contains(&format!("/t/{ticket}#fund")), "{text}");
    let (status, requester): (String, i64) = tickets::table
        .find(ticket)
        .select((tickets::status, tickets::requester_id))
        .first(&mut app.conn())
        .unwrap();
    assert_eq!((status.as_str(), requester), ("open", ada.id));
    // Pressed again: the same ticket, not a second.
    let r = d
        .send(&app, &press("i5", "u1", &buttons[1]), now(), None)
        .await
        .expect(200);
    assert!(r.body["data"]["content"]
        .as_str()
        .unwrap()
        .contains("already"));
    assert_eq!(count!(app, tickets), 2);

    // Status.
    let r = d
        .send(
            &app,
            &command(
                "i6",
                "u1",
                "status",
                json!([{"name": "ticket", "type": 4, "value": ticket}]),
            ),
            now(),
            None,
        )
        .await
        .expect(200);
    assert!(
        r.body["data"]["content"]
            .as_str()
            .unwrap()
            .contains("open, waiting"),
        "{}",
        r.body
    );

    // An update on the ticket goes back to Ada by direct message.
    app.run_jobs();
    fake.calls.lock().unwrap().clear();
    app.post(
        &format!("/api/v1/tickets/{ticket}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    guildhall_jobs::BackgroundJob::enqueue(&guildhall::jobs::SendNotifications, &mut app.conn())
        .unwrap();
    app.run_jobs();
    assert_eq!(
        fake.calls("POST /users/@me/channels"),
        [json!({"recipient_id": "u1"})]
    );
    let dms = fake.calls("POST /channels/dm-u1/messages");
    assert_eq!(dms.len(), 1, "{:?}", fake.calls.lock().unwrap());
    assert!(
        dms[0]["content"]
            .as_str()
            .unwrap()
            .contains(&format!("Ticket #{ticket}")),
        "{}",
        dms[0]
    );

    // Ada unties the Discord account from her page.
    let me = b.get("/me").await.expect(200);
    assert!(me.text.contains("Unlink discord"), "{}", me.text);
    let csrf = crate::web::csrf(&me);
    b.post(
        "/me/chat/unlink",
        &[("csrf", csrf.as_str()), ("provider", "discord")],
    )
    .await
    .expect(303);
    let left: i64 = ui::table
        .filter(ui::provider.eq("discord"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(left, 0);
}

// ------------------------------------------------------------------ Slack

const SLACK_SECRET: &str = "slack-test-signing-secret";

async fn slack(app: &TestApp, path: &str, body: &str, ts: i64, secret: &str, retry: bool) -> Resp {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut req = TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("x-slack-signature", sig))
        .insert_header(("x-slack-request-timestamp", ts.to_string()));
    if retry {
        req = req.insert_header(("x-slack-retry-num", "1"));
    }
    app.send(&svc, req.set_payload(body.to_owned())).await
}

fn slash(base: &str, text: &str, trigger: &str, response: &str) -> String {
    serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("user_id", "U1"),
        ("user_name", "bob"),
        ("command", "/guildhall"),
        ("text", text),
        ("channel_id", "C1"),
        ("response_url", &format!("{base}/{response}")),
        ("trigger_id", trigger),
    ])
    .unwrap()
}

/// Bob presses `action` under question `q`; the reply goes to
/// `/response/{n}` (trigger `t{n}`), sent by the job that is then run.
async fn press_slack(app: &TestApp, base: &str, action: &str, q: &str, n: u32) {
    let payload = json!({"type": "block_actions", "user": {"id": "U1", "username": "bob", "team_id": "T1"},
        "team": {"id": "T1"}, "trigger_id": format!("t{n}"), "response_url": format!("{base}/response/{n}"),
        "actions": [{"action_id": format!("gh:{action}"), "value": q}]});
    let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    slack(
        app,
        "/api/v1/webhooks/slack/interactions",
        &form,
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(200);
    app.run_jobs();
}

#[actix_web::test]
async fn a_slack_question_gets_an_answer_and_its_buttons_work() {
    let fake = actix_web::rt::task::spawn_blocking(FakeChat::start)
        .await
        .unwrap();
    let app = TestApp::builder()
        .env("GUILDHALL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        .env("GUILDHALL_SLACK_BOT_TOKEN", "xoxb-test")
        .env("GUILDHALL_SLACK_API_BASE", &fake.base)
        .build();
    world(&app).await;
    let commands = "/api/v1/webhooks/slack/commands";
    let ask = slash(
        &fake.base,
        "ask proj: too many segments after a bulk merge",
        "t1",
        "response/1",
    );

    // Forged and stale: 401, nothing written.
    slack(&app, commands, &ask, now(), "wrong-secret", false)
        .await
        .expect(401);
    slack(&app, commands, &ask, now() - 301, SLACK_SECRET, false)
        .await
        .expect(401);
    assert_eq!(count!(app, chat_questions), 0);

    // Acknowledged at once, privately; the answer follows on response_url.
    let r = slack(&app, commands, &ask, now(), SLACK_SECRET, false)
        .await
        .expect(200);
    assert_eq!(r.body["response_type"], "ephemeral");
    assert!(
        r.body["text"]
            .as_str()
            .unwrap()
            .contains("Looking through proj"),
        "{}",
        r.body
    );
    // Replayed: 401. Slack's own retry: acknowledged and ignored.
    slack(&app, commands, &ask, now(), SLACK_SECRET, false)
        .await
        .expect(401);
    let again = slash(
        &fake.base,
        "ask proj: too many segments after a bulk merge",
        "t1b",
        "response/1",
    );
    let r = slack(&app, commands, &again, now(), SLACK_SECRET, true)
        .await
        .expect(200);
    assert_eq!(r.text, "");
    assert_eq!(count!(app, chat_questions), 1);
    assert_eq!(metric(&app, "slack", "retry_ignored").await, 1);
    assert_eq!(metric(&app, "slack", "replayed").await, 1);
    app.run_jobs();
    let answers = fake.calls("POST /response/1");
    assert_eq!(answers.len(), 1, "{:?}", fake.calls.lock().unwrap());
    assert_eq!(answers[0]["response_type"], "ephemeral");
    assert!(answers[0]["text"]
        .as_str()
        .unwrap()
        .contains("LogMergePolicy"));
    let actions = &answers[0]["blocks"][1]["elements"];
    let q = actions[0]["value"].as_str().unwrap().to_owned();
    assert_eq!(actions[0]["action_id"], "gh:solved");
    assert_eq!(actions[1]["action_id"], "gh:post");
    assert_eq!(actions[2]["action_id"], "gh:expert");

    // Solved: acknowledged, the outcome through response_url.
    press_slack(&app, &fake.base, "solved", &q, 2).await;
    let replies = fake.calls("POST /response/2");
    assert!(
        replies[0]["text"]
            .as_str()
            .unwrap()
            .contains("Glad it helped"),
        "{replies:?}"
    );
    let solved: Option<chrono::NaiveDateTime> = chat_questions::table
        .select(chat_questions::solved_at)
        .first(&mut app.conn())
        .unwrap();
    assert!(solved.is_some());

    // Post as ticket, not linked: the link comes back.
    press_slack(&app, &fake.base, "post", &q, 3).await;
    let replies = fake.calls("POST /response/3");
    assert!(
        replies[0]["text"]
            .as_str()
            .unwrap()
            .contains("/chat/link?token="),
        "{replies:?}"
    );

    // Status and link commands answer at once; a response_url that is not
    // Slack's is refused.
    let r = slack(
        &app,
        commands,
        &slash(&fake.base, "status 1", "t4", "response/4"),
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(200);
    assert!(
        r.body["text"].as_str().unwrap().starts_with("Ticket #1"),
        "{}",
        r.body
    );
    let r = slack(
        &app,
        commands,
        &slash(&fake.base, "link", "t5", "response/5"),
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(200);
    assert!(r.body["text"]
        .as_str()
        .unwrap()
        .contains("/chat/link?token="));
    let evil = slash("https://evil.example", "help", "t6", "x");
    slack(&app, commands, &evil, now(), SLACK_SECRET, false)
        .await
        .expect(400);
}

/// Bad input on both: a body over the limit is 413 unread, a signed body
/// that is not an interaction 400; nothing written, each counted.
#[actix_web::test]
async fn oversize_and_malformed_chat_requests_are_refused() {
    let d = Discord::new();
    let app = TestApp::builder()
        .env("GUILDHALL_DISCORD_PUBLIC_KEY", &d.public_hex())
        .env("GUILDHALL_DISCORD_APP_ID", "1234")
        .env("GUILDHALL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        .build();
    let huge = json!({"id": "x", "type": 2, "pad": "a".repeat(300 * 1024)});
    d.send(&app, &huge, now(), None).await.expect(413);
    assert_eq!(metric(&app, "discord", "oversize").await, 1);
    // Signed, but no user: 400.
    d.send(
        &app,
        &json!({"id": "x1", "type": 2, "data": {"name": "ask"}}),
        now(),
        None,
    )
    .await
    .expect(400);
    // Signed, but not JSON.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let ts = now();
    let mut signed = ts.to_string().into_bytes();
    signed.extend_from_slice(b"not json");
    let sig = d.key.sign(&signed);
    app.send(
        &svc,
        TestRequest::post()
            .uri("/api/v1/webhooks/discord")
            .insert_header(("x-signature-ed25519", hex::encode(sig.to_bytes())))
            .insert_header(("x-signature-timestamp", ts.to_string()))
            .set_payload("not json"),
    )
    .await
    .expect(400);
    assert_eq!(metric(&app, "discord", "malformed").await, 2);
    // Slack: a signed command without its user or response_url.
    slack(
        &app,
        "/api/v1/webhooks/slack/commands",
        "team_id=T1&text=help&trigger_id=t9",
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(400);
    slack(
        &app,
        "/api/v1/webhooks/slack/interactions",
        "payload=%7Bnot-json",
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(400);
    assert_eq!(metric(&app, "slack", "malformed").await, 2);
    assert_eq!(count!(app, chat_questions), 0);
    assert_eq!(count!(app, chat_link_tokens), 0);
    assert_eq!(count!(app, chat_deliveries), 0, "not even a replay record");
}

/// One chat user cannot flood: 30 questions an hour, and only their
/// newest three link tokens stay good.
#[actix_web::test]
async fn a_chat_user_cannot_flood() {
    let app = TestApp::builder()
        .env("GUILDHALL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        .env("GUILDHALL_SLACK_API_BASE", "http://127.0.0.1:9")
        .build();
    let owner = app.user("owner").await;
    app.project(&owner, "proj").await;
    let base = "http://127.0.0.1:9";
    for i in 0..guildhall::channels::chat::QUESTIONS_PER_HOUR {
        let r = slack(
            &app,
            "/api/v1/webhooks/slack/commands",
            &slash(
                base,
                &format!("ask proj: question number {i}"),
                &format!("q{i}"),
                "r",
            ),
            now(),
            SLACK_SECRET,
            false,
        )
        .await
        .expect(200);
        assert!(
            r.body["text"].as_str().unwrap().starts_with("Looking"),
            "{}",
            r.body
        );
    }
    let r = slack(
        &app,
        "/api/v1/webhooks/slack/commands",
        &slash(base, "ask proj: one more question", "q-last", "r"),
        now(),
        SLACK_SECRET,
        false,
    )
    .await
    .expect(200);
    assert!(
        r.body["text"].as_str().unwrap().contains("try again later"),
        "{}",
        r.body
    );
    assert_eq!(count!(app, chat_questions), 30);
    for i in 0..5 {
        slack(
            &app,
            "/api/v1/webhooks/slack/commands",
            &slash(base, "link", &format!("l{i}"), "r"),
            now(),
            SLACK_SECRET,
            false,
        )
        .await
        .expect(200);
    }
    assert_eq!(count!(app, chat_link_tokens), 3);
}

#[actix_web::test]
async fn chat_endpoints_answer_404_until_configured() {
    let app = TestApp::new();
    for path in [
        "/api/v1/webhooks/discord",
        "/api/v1/webhooks/slack/commands",
        "/api/v1/webhooks/slack/interactions",
    ] {
        app.post(path, json!({}), None).await.expect(404);
    }
}

/// A direct message the provider refuses for good (Discord 403: direct
/// messages off; Slack `channel_not_found`) is a refusal, not an error to
/// retry for ever; without a bot token nothing is sent.
#[actix_web::test]
async fn refused_direct_messages_are_not_retried() {
    use guildhall::integrations::chat::{Chat, Delivery};
    let fake = actix_web::rt::task::spawn_blocking(FakeChat::start)
        .await
        .unwrap();
    let d = Discord::new();
    let app = TestApp::builder()
        .env("GUILDHALL_DISCORD_PUBLIC_KEY", &d.public_hex())
        .env("GUILDHALL_DISCORD_APP_ID", "1234")
        .env("GUILDHALL_DISCORD_BOT_TOKEN", "test-bot-token")
        .env("GUILDHALL_DISCORD_API_BASE", &fake.base)
        .env("GUILDHALL_SLACK_SIGNING_SECRET", SLACK_SECRET)
        .env("GUILDHALL_SLACK_BOT_TOKEN", "xoxb-wrong")
        .env("GUILDHALL_SLACK_API_BASE", &fake.base)
        .build();
    let chat = Chat::from_config(&app.state.config);
    let outcomes = actix_web::rt::task::spawn_blocking(move || {
        (
            chat.direct_message("discord", "u1", "hello").unwrap(),
            chat.direct_message("discord", "u-nodm", "hello").unwrap(),
            chat.direct_message("slack", "U1", "hello").unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(outcomes.0, Delivery::Sent);
    assert!(
        matches!(outcomes.1, Delivery::Refused(_)),
        "{:?}",
        outcomes.1
    );
    assert!(
        matches!(outcomes.2, Delivery::Refused(_)),
        "{:?}",
        outcomes.2
    );
    let bare = Chat::from_config(&TestApp::new().state.config);
    let none = actix_web::rt::task::spawn_blocking(move || {
        bare.direct_message("slack", "U1", "x").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(none, Delivery::NotConfigured);
}
