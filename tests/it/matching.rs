//! Matching and the AI lane through HTTP.

use crate::util::{TestApp, User};
use guildhall_jobs::BackgroundJob as _;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What the fake chat-completions server received: Authorization, body.
type Recorded = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// `helper` answers and resolves a new ticket of `requester`; it is accepted.
async fn solved(
    app: &TestApp,
    requester: &User,
    helper: &User,
    project: &str,
    title: &str,
    body: &str,
    answer: &str,
) -> i64 {
    let id = app.open_ticket(requester, project, title, "public").await;
    app.patch(
        &format!("/api/v1/tickets/{id}"),
        json!({"body": body}),
        Some(&requester.access),
    )
    .await;
    app.answered_and_accepted(id, requester, helper, answer)
        .await;
    id
}

struct World {
    requester: User,
    merge_expert: User,
    expert: User,
    outsider: User,
    merge_ticket: i64,
}

async fn world(app: &TestApp) -> World {
    let maintainer = app.user("maint").await;
    let merge_expert = app.user("mergefan").await;
    let facets = app.user("facets").await;
    let expert = app.user("expert").await;
    let outsider = app.user("outsider").await;
    let requester = app.user("req").await;
    app.project(&maintainer, "proj").await;
    app.project(&maintainer, "other").await;
    app.approved_helper(&maintainer, &merge_expert, "proj")
        .await;
    app.approved_helper(&maintainer, &facets, "proj").await;
    app.approved_helper(&maintainer, &outsider, "other").await;
    app.post(
        "/api/v1/projects/proj/helpers/apply",
        json!({"tier": "expert", "bio": "paid", "hourly_rate": 5_000}),
        Some(&expert.access),
    )
    .await
    .expect(201);
    app.post(
        &format!("/api/v1/projects/proj/helpers/{}/approve", expert.id),
        json!({}),
        Some(&maintainer.access),
    )
    .await
    .expect(200);
    let merge_ticket = solved(
        app,
        &requester,
        &merge_expert,
        "proj",
        "Merge policy makes segments explode",
        "After bulk indexing the merge policy leaves hundreds of segments.",
        "Use LogMergePolicy with a higher min_num_segments and call wait_merging_threads after commit.",
    )
    .await;
    solved(
        app,
        &requester,
        &facets,
        "proj",
        "Facet counts are wrong",
        "Facet collector counts deleted documents.",
        "Reload the searcher after deletes so facet counts skip deleted documents.",
    )
    .await;
    solved(
        app,
        &requester,
        &outsider,
        "other",
        "Slow segment merges",
        "Merging segments takes minutes.",
        "Give the merge threads more memory.",
    )
    .await;
    World {
        requester,
        merge_expert,
        expert,
        outsider,
        merge_ticket,
    }
}

fn find<'a>(lane: &'a Value, user: &User) -> Option<&'a Value> {
    lane.as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_id"] == user.id)
}

#[actix_web::test]
async fn matches_rank_helpers_in_lanes_with_reasons_and_an_ai_answer() {
    let app = TestApp::new();
    let w = world(&app).await;
    guildhall::jobs::RecomputeReputation
        .enqueue(&mut app.conn())
        .unwrap();
    app.run_jobs();
    let id = app
        .open_ticket(
            &w.requester,
            "proj",
            "Too many segments after bulk indexing merge",
            "public",
        )
        .await;
    let m = app
        .get(
            &format!("/api/v1/tickets/{id}/matches"),
            Some(&w.requester.access),
        )
        .await
        .expect(200);
    let community = &m.body["community"];
    assert_eq!(community[0]["user_id"], w.merge_expert.id, "{}", m.body);
    let top = &community[0];
    assert!(
        top["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("resolved 1 similar ticket")),
        "{top}"
    );
    assert!(top["score"].as_f64().unwrap() > 0.0 && top["score"].as_f64().unwrap() <= 100.0);
    assert_eq!(top["features"]["expertise"], 1.0);
    let outsider =
        find(community, &w.outsider).expect("the helper proven elsewhere is a candidate");
    assert_eq!(outsider["cross_project"], true);
    assert!(outsider["reasons"][0]
        .as_str()
        .unwrap()
        .contains("proven on similar tickets in other"));
    let expert = find(&m.body["experts"], &w.expert).expect("the expert lane");
    assert_eq!(expert["hourly_rate"], 5_000);
    assert!(
        find(community, &w.requester).is_none(),
        "never the requester"
    );

    let ai = &m.body["ai"];
    assert_eq!(ai["source"], "retrieval", "{ai}");
    assert_eq!(ai["citations"][0], w.merge_ticket);
    assert!(
        ai["answer"].as_str().unwrap().contains("LogMergePolicy"),
        "{ai}"
    );
    assert!(ai["confidence"].as_f64().unwrap() >= 0.5);

    // Nothing similar: the lane says so instead of inventing an answer.
    let odd = app
        .open_ticket(&w.requester, "proj", "Quantum banana recipes", "public")
        .await;
    let m = app
        .get(&format!("/api/v1/tickets/{odd}/matches"), None)
        .await
        .expect(200);
    assert_eq!(m.body["ai"]["answer"], Value::Null);
    assert_eq!(m.body["ai"]["source"], "none");
    assert!(m.body["ai"]["note"].as_str().is_some());

    // Private tickets match only for those who may see them.
    let secret = app
        .open_ticket(&w.requester, "proj", "Private merge question", "private")
        .await;
    app.get(
        &format!("/api/v1/tickets/{secret}/matches"),
        Some(&w.outsider.access),
    )
    .await
    .expect(404);
    app.get(
        &format!("/api/v1/tickets/{secret}/matches"),
        Some(&w.requester.access),
    )
    .await
    .expect(200);
    app.get("/api/v1/tickets/999999/matches", None)
        .await
        .expect(404);
}

/// Starts a fake OpenAI-compatible server on a free loopback port that
/// records what it is sent and answers after `delay`; returns the port.
fn fake_llm(seen: Recorded, delay: std::time::Duration) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(move || {
                let record = seen.clone();
                actix_web::App::new().route(
                    "/v1/chat/completions",
                    actix_web::web::post().to(move |req: actix_web::HttpRequest, body: actix_web::web::Json<Value>| {
                        let record = record.clone();
                        async move {
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            record.lock().unwrap().push((auth, body.into_inner()));
                            actix_web::rt::time::sleep(delay).await;
                            actix_web::HttpResponse::Ok().json(json!({
                                "id": "chatcmpl-1",
                                "object": "chat.completion",
                                "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "Raise min_num_segments in LogMergePolicy [#1]."}}]
                            }))
                        }
                    }),
                )
            })
            .workers(1)
            .bind(("127.0.0.1", port))
            .unwrap()
            .run();
            tx.send(()).unwrap();
            let _ = server.await;
        })
    });
    rx.recv().unwrap();
    port
}

#[actix_web::test]
async fn the_ai_lane_sends_the_retrieved_context_to_a_chat_completions_endpoint() {
    // A fake OpenAI-compatible server that records what it was sent.
    let seen: Recorded = Arc::default();
    let port = fake_llm(seen.clone(), std::time::Duration::ZERO);
    let app = TestApp::builder()
        .env(
            "GUILDHALL_AI_API_BASE",
            &format!("http://127.0.0.1:{port}/v1"),
        )
        .env("GUILDHALL_AI_MODEL", "local-test-model")
        .env("GUILDHALL_AI_API_KEY", "sk-local-secret")
        .build();
    let w = world(&app).await;
    app.run_jobs();
    let id = app
        .open_ticket(
            &w.requester,
            "proj",
            "Too many segments after bulk indexing merge",
            "public",
        )
        .await;
    let m = app
        .get(&format!("/api/v1/tickets/{id}/matches"), None)
        .await
        .expect(200);
    let ai = &m.body["ai"];
    assert_eq!(ai["source"], "llm", "{ai}");
    assert_eq!(
        ai["answer"],
        "Raise min_num_segments in LogMergePolicy [#1]."
    );
    assert_eq!(ai["citations"][0], w.merge_ticket);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (auth, request) = &seen[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-local-secret"));
    assert_eq!(request["model"], "local-test-model");
    let prompt = request["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("LogMergePolicy"),
        "the accepted answer is in the context: {prompt}"
    );
    assert!(
        prompt.contains("Too many segments after bulk indexing merge"),
        "and the question"
    );
    assert!(
        !guildhall_test_logs_contain("sk-local-secret"),
        "the key is never logged"
    );
}

/// A slow language model holds no database connection: with a pool of two
/// and a model that takes 3 s, eight concurrent match requests are all
/// answered and `/healthz` stays 200 meanwhile.
#[actix_web::test]
async fn a_slow_language_model_never_holds_a_database_connection() {
    let seen: Recorded = Arc::default();
    let port = fake_llm(seen.clone(), std::time::Duration::from_secs(3));
    let app = TestApp::builder()
        .env(
            "GUILDHALL_AI_API_BASE",
            &format!("http://127.0.0.1:{port}/v1"),
        )
        .env("GUILDHALL_DB_POOL_SIZE", "2")
        .env("GUILDHALL_DB_POOL_TIMEOUT_MS", "1500")
        .build();
    let w = world(&app).await;
    app.run_jobs();
    let id = app
        .open_ticket(
            &w.requester,
            "proj",
            "Too many segments after bulk indexing merge",
            "public",
        )
        .await;
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let matches = (0..8).map(|_| {
        app.send(
            &svc,
            actix_web::test::TestRequest::get().uri(&format!("/api/v1/tickets/{id}/matches")),
        )
    });
    let health = async {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(1500)).await;
        app.send(&svc, actix_web::test::TestRequest::get().uri("/healthz"))
            .await
    };
    let (answers, health) =
        futures_util::future::join(futures_util::future::join_all(matches), health).await;
    assert_eq!(health.status.as_u16(), 200, "{}", health.text);
    assert_eq!(
        seen.lock().unwrap().len(),
        8,
        "every request asked the model"
    );
    for a in answers {
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        assert_eq!(a.body["ai"]["source"], "llm", "{}", a.body["ai"]);
    }
}

fn guildhall_test_logs_contain(s: &str) -> bool {
    crate::util::captured_logs().contains(s)
}

#[actix_web::test]
async fn route_ranks_projects_for_a_question_that_names_none() {
    let app = TestApp::new();
    world(&app).await;
    app.run_jobs();
    let top = |body: Value| {
        let app = &app;
        async move {
            let r = app.post("/api/v1/route", body, None).await.expect(200);
            r.body["projects"].clone()
        }
    };
    let p = top(json!({"title": "Facet counts include deleted documents"})).await;
    assert_eq!(p[0]["slug"], "proj", "{p}");
    assert!(p[0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("similar solved ticket"));
    let p =
        top(json!({"title": "Slow merges", "body": "Should the merge threads get more memory?"}))
            .await;
    assert_eq!(p[0]["slug"], "other", "{p}");
    assert!(p[0]["score"].as_f64().unwrap() <= 1.0);
    let p = top(json!({"title": "Quantum banana recipes"})).await;
    assert_eq!(p, json!([]), "no evidence, no guess");
    app.post("/api/v1/route", json!({"title": "  "}), None)
        .await
        .expect(422);
    app.post("/api/v1/route", json!({"body": "no title"}), None)
        .await
        .expect(422);
}
