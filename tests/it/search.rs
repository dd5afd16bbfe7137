use crate::util::TestApp;
use serde_json::json;
use std::path::PathBuf;

fn se_dir(site: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stackexchange")
        .join(site)
}

/// The committed subset of the Stack Exchange dumps (tests/fixtures/NOTICE.md).
const SITES: [&str; 3] = [
    "beer.stackexchange.com",
    "french.meta.stackexchange.com",
    "genai.stackexchange.com",
];

#[actix_web::test]
async fn search_filters_facets_pages_and_similar() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let helper = app.user("helper").await;
    let requester = app.user("req").await;
    app.project(&owner, "tokio").await;
    app.project(&owner, "serde").await;
    app.approved_helper(&owner, &helper, "tokio").await;
    let a = app
        .open_ticket(
            &requester,
            "tokio",
            "Runtime panics when spawning blocking tasks",
            "public",
        )
        .await;
    let b = app
        .open_ticket(
            &requester,
            "tokio",
            "Blocking tasks starve the runtime",
            "public",
        )
        .await;
    let c = app
        .open_ticket(
            &requester,
            "serde",
            "Deserialize enum with internal tag",
            "public",
        )
        .await;
    // Resolve `b` so it can be offered as similar.
    app.post(
        &format!("/api/v1/tickets/{b}/claim"),
        json!({}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    let m = app
        .post(
            &format!("/api/v1/tickets/{b}/messages"),
            json!({"body": "Move the CPU-heavy work onto a rayon threadpool."}),
            Some(&helper.access),
        )
        .await
        .expect(201);
    app.post(
        &format!("/api/v1/tickets/{b}/resolve"),
        json!({"message_id": m.body["id"]}),
        Some(&helper.access),
    )
    .await
    .expect(200);
    app.run_jobs();

    let r = app
        .get("/api/v1/search/tickets?q=runtime%20panics", None)
        .await
        .expect(200)
        .body;
    assert_eq!(r["items"][0]["ticket"]["id"], a, "title match ranks first");
    assert!(r["items"][0]["highlights"]["title"]
        .as_str()
        .unwrap()
        .contains("<b>"));
    let r = app
        .get(
            "/api/v1/search/tickets?q=blocking&project=tokio&status=resolved",
            None,
        )
        .await
        .expect(200)
        .body;
    let ids: Vec<i64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ticket"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [b]);
    // The accepted answer is searchable.
    let r = app
        .get("/api/v1/search/tickets?q=rayon", None)
        .await
        .expect(200)
        .body;
    assert_eq!(r["items"][0]["ticket"]["id"], b);
    // Facets over all matches.
    let r = app
        .get("/api/v1/search/tickets?q=", None)
        .await
        .expect(200)
        .body;
    assert_eq!(r["total"], 3);
    let projects: Vec<(String, u64)> = r["facets"]["project"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_owned(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        projects.contains(&("tokio".into(), 2)) && projects.contains(&("serde".into(), 1)),
        "{projects:?}"
    );
    // Without facets: same items, no counts.
    let fast = app
        .get("/api/v1/search/tickets?q=&facets=false", None)
        .await
        .expect(200)
        .body;
    assert_eq!(fast["items"].as_array().unwrap().len(), 3);
    assert_eq!(fast["facets"]["project"], json!([]));
    // Cursor pagination.
    let p1 = app
        .get("/api/v1/search/tickets?q=&limit=2", None)
        .await
        .expect(200)
        .body;
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let p2 = app
        .get(
            &format!("/api/v1/search/tickets?q=&limit=2&cursor={cursor}"),
            None,
        )
        .await
        .expect(200)
        .body;
    let mut all: Vec<i64> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2["items"].as_array().unwrap())
        .map(|h| h["ticket"]["id"].as_i64().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, {
        let mut v = vec![a, b, c];
        v.sort();
        v
    });
    assert!(p2["next_cursor"].is_null());
    app.get("/api/v1/search/tickets?q=x&cursor=bogus", None)
        .await
        .expect(400);
    // Hostile queries are not errors.
    for q in ["%22unbalanced", "title%3A", "(((", "AND%20OR", "*"] {
        app.get(&format!("/api/v1/search/tickets?q={q}"), None)
            .await
            .expect(200);
    }
    // Similar: resolved tickets about the same subject, never itself.
    let r = app
        .get(&format!("/api/v1/tickets/{a}/similar"), None)
        .await
        .expect(200)
        .body;
    let ids: Vec<i64> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ticket"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [b]);
    app.get("/api/v1/tickets/999999/similar", None)
        .await
        .expect(404);
}

#[actix_web::test]
async fn committed_stack_exchange_sites_import_idempotently_and_are_searchable() {
    let app = TestApp::new();
    for site in SITES {
        let slug = site.replace('.', "-");
        let report =
            guildhall::import::import_stackexchange(&app.pool, &se_dir(site), &slug, |_, _| {})
                .unwrap();
        assert!(report.questions > 100, "{site}: {report:?}");
        assert_eq!(
            report.tickets_created, report.questions,
            "{site}: every question becomes a ticket"
        );
        assert!(report.messages_created > 0);
        let again =
            guildhall::import::import_stackexchange(&app.pool, &se_dir(site), &slug, |_, _| {})
                .unwrap();
        assert_eq!(
            (
                again.tickets_created,
                again.messages_created,
                again.users_created
            ),
            (0, 0, 0),
            "{site}: a second run adds nothing"
        );
    }
    app.run_jobs();
    let mut conn = app.conn();
    use diesel::prelude::*;
    use guildhall::db::schema::{tickets, users};
    let resolved: Vec<(i64, String, String, Option<i64>)> = tickets::table
        .filter(tickets::resolved_by.is_not_null())
        .select((
            tickets::id,
            tickets::title,
            tickets::status,
            tickets::resolved_by,
        ))
        .order(tickets::id)
        .load(&mut *conn)
        .unwrap();
    assert!(resolved.len() > 300, "accepted answers become resolutions");
    assert!(resolved.iter().all(|r| r.2 == "closed"));
    let resolver = resolved[0].3.unwrap();
    let can_login: bool = users::table
        .find(resolver)
        .select(users::can_login)
        .first(&mut *conn)
        .unwrap();
    assert!(!can_login, "imported users cannot log in");
    drop(conn);
    // A known question's title finds it in the top 3, for a sample from every site.
    let mut checked = 0;
    for (id, title, _, _) in resolved.iter().step_by(37) {
        let q: String = title
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let encoded: String = q.split_whitespace().collect::<Vec<_>>().join("%20");
        let r = app
            .get(&format!("/api/v1/search/tickets?q={encoded}&limit=3"), None)
            .await
            .expect(200)
            .body;
        let top: Vec<i64> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["ticket"]["id"].as_i64().unwrap())
            .collect();
        assert!(top.contains(id), "{title:?} not in the top 3: {top:?}");
        checked += 1;
    }
    assert!(checked >= 10);
}

#[test]
fn import_and_reindex_commands() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUILDHALL_")) {
            c.env_remove(k);
        }
        let out = c
            .args(args)
            .env("GUILDHALL_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let genai = se_dir("genai.stackexchange.com");
    let out = run(&[
        "import",
        "stackexchange",
        genai.to_str().unwrap(),
        "--project",
        "genai",
    ]);
    assert!(out.contains("181 questions"), "{out}");
    let out = run(&[
        "import",
        "stackexchange",
        genai.to_str().unwrap(),
        "--project",
        "genai",
    ]);
    assert!(
        out.contains("0 tickets, 0 messages, 0 users created"),
        "{out}"
    );
    let out = run(&["reindex"]);
    assert!(
        out.contains("reindexed 181 tickets; the index holds 181 documents"),
        "{out}"
    );
}
