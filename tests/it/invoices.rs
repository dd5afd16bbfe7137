//! Invoices and credit notes (issue 13 §3): issued with the money, numbered
//! per seller without gaps under concurrency, re-issued when billing
//! details change, readable by the buyer and the seller's maintainers, as
//! JSON, a page and a PDF.

use crate::util::TestApp;
use guildhall::payments::Sandbox;
use serde_json::{json, Value};

#[track_caller]
fn assert_ledger_clean(app: &TestApp) {
    assert_eq!(
        guildhall::ledger::check(&mut app.conn()).unwrap(),
        Vec::<String>::new()
    );
}

fn numbers(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["number"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["total"]["amount"]
            )
        })
        .collect()
}

#[actix_web::test]
async fn charges_and_refunds_are_invoiced_and_billing_changes_reissue() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    let other = app.user("other").await;
    app.project(&owner, "quill").await;
    app.patch(
        "/api/v1/projects/quill",
        json!({"legal_entity": "Quill Maintainers e.V."}),
        Some(&owner.access),
    )
    .await
    .expect(200);
    let plan = app
        .post(
            "/api/v1/projects/quill/plans",
            json!({"kind": "monthly", "name": "Team", "price": {"amount": 4900, "currency": "usd"}}),
            Some(&owner.access),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/projects/quill/subscriptions",
        json!({"plan_id": plan, "context": "professional"}),
        Some(&biz.access),
    )
    .await
    .expect(201);
    let t = app
        .open_ticket(&biz, "quill", "Crash on start", "public")
        .await;
    app.post(
        &format!("/api/v1/tickets/{t}/bounties"),
        json!({"amount": 3000, "currency": "usd"}),
        Some(&biz.access),
    )
    .await
    .expect(201);
    // Cancelling refunds the bounty: a credit note.
    app.post(
        &format!("/api/v1/tickets/{t}/cancel"),
        json!({}),
        Some(&biz.access),
    )
    .await
    .expect(200);
    let mine = app
        .get("/api/v1/me/invoices", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(
        numbers(&mine.body),
        [
            "QUILL-000003 credit_note 3000",
            "QUILL-000002 invoice 3000",
            "QUILL-000001 invoice 4900"
        ]
    );
    let first = &mine.body["items"][2];
    assert_eq!(first["seller"]["name"], "Quill Maintainers e.V.");
    assert_eq!(first["buyer"]["name"], "biz");
    assert!(first["lines"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Team, period 1"));
    let note = &mine.body["items"][0];
    assert_eq!(note["corrects_id"], mine.body["items"][1]["id"]);
    assert_ledger_clean(&app);

    // The buyer and the seller's maintainers read it; nobody else.
    let id = first["id"].as_i64().unwrap();
    app.get(&format!("/api/v1/invoices/{id}"), Some(&owner.access))
        .await
        .expect(200);
    app.get(&format!("/api/v1/invoices/{id}"), Some(&other.access))
        .await
        .expect(404);
    app.get(&format!("/api/v1/invoices/{id}/pdf"), Some(&other.access))
        .await
        .expect(404);
    app.get(&format!("/api/v1/invoices/{id}"), None)
        .await
        .expect(401);
    let pdf = app
        .get(&format!("/api/v1/invoices/{id}/pdf"), Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(
        pdf.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert!(
        pdf.text.starts_with("%PDF-"),
        "{}",
        &pdf.text[..20.min(pdf.text.len())]
    );
    assert!(pdf.text.contains("QUILL-000001") && pdf.text.contains("Quill Maintainers e.V."));
    assert!(pdf.text.trim_end().ends_with("%%EOF"));

    // Billing details: checked, then every current invoice is re-issued.
    let r = app
        .put_json(
            "/api/v1/me/billing",
            json!({"name": "", "address": "x", "vat_id": "12"}),
            Some(&biz.access),
        )
        .await
        .expect(422);
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "vat_id"]);
    let b = app
        .put_json(
            "/api/v1/me/billing",
            json!({"name": "Biz GmbH", "address": "Hauptstr. 1\n10115 Berlin", "vat_id": "de 123 456 789"}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    // The refunded bounty's invoice is settled by its credit note: only
    // the subscription's is re-issued.
    assert_eq!(b.body["reissued"], 1);
    assert_eq!(b.body["vat_id"], "DE123456789");
    let mine = app
        .get("/api/v1/me/invoices?limit=4", Some(&biz.access))
        .await
        .expect(200);
    assert_eq!(
        numbers(&mine.body),
        [
            "QUILL-000005 invoice 4900",
            "QUILL-000004 credit_note 4900",
            "QUILL-000003 credit_note 3000",
            "QUILL-000002 invoice 3000"
        ]
    );
    assert_eq!(mine.body["items"][0]["buyer"]["vat_id"], "DE123456789");
    // The cancelling credit note is the original seller's.
    assert_eq!(
        mine.body["items"][1]["seller"]["name"],
        "Quill Maintainers e.V."
    );
    let rest = app
        .get(
            &format!(
                "/api/v1/me/invoices?limit=4&cursor={}",
                mine.body["next_cursor"].as_str().unwrap()
            ),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    // The same details again change nothing; new ones re-issue the current
    // invoice once more, never the cancelled.
    let b = app
        .put_json(
            "/api/v1/me/billing",
            json!({"name": "Biz GmbH", "address": "Hauptstr. 1\n10115 Berlin", "vat_id": "DE123456789"}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(b.body["reissued"], 0);
    let b = app
        .put_json(
            "/api/v1/me/billing",
            json!({"name": "Biz GmbH", "address": "Hauptstr. 2\n10115 Berlin"}),
            Some(&biz.access),
        )
        .await
        .expect(200);
    assert_eq!(b.body["reissued"], 1);
    assert_ledger_clean(&app);

    // The pages: the list with the billing form, a document, its PDF.
    let svc = actix_web::test::init_service(guildhall::app::build(app.state.clone())).await;
    let mut w = crate::web::signed_in(&app, svc, &biz.email).await;
    let page = w.get("/me/invoices").await.expect(200);
    assert!(page.text.contains("QUILL-000001") && page.text.contains("Biz GmbH"));
    let doc = w.get(&format!("/invoices/{id}")).await.expect(200);
    assert!(
        doc.text.contains("Invoice QUILL-000001") && doc.text.contains("Quill Maintainers e.V.")
    );
    let pdf = w.get(&format!("/invoices/{id}/pdf")).await.expect(200);
    assert!(pdf.text.starts_with("%PDF-"));
}

#[actix_web::test]
async fn numbers_have_no_gaps_under_concurrency() {
    let app = TestApp::new();
    let owner = app.user("owner").await;
    let biz = app.user("biz").await;
    app.project(&owner, "quill").await;
    let mut tickets = Vec::new();
    for i in 0..8 {
        tickets.push(
            app.open_ticket(&biz, "quill", &format!("question {i}"), "public")
                .await,
        );
    }
    let handles: Vec<_> = tickets
        .iter()
        .map(|&t| {
            let pool = app.pool.clone();
            let user = biz.id;
            std::thread::spawn(move || {
                // One of them is refused at once (an amount out of range):
                // it takes no number.
                let amount = if t % 3 == 0 { 50 } else { 1000 };
                guildhall::domain::money::fund_bounty(
                    &pool, &Sandbox, t, user, amount, "usd", None, None,
                )
                .is_ok()
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|o| *o)
        .count();
    let page = app
        .get("/api/v1/me/invoices?limit=100", Some(&biz.access))
        .await
        .expect(200);
    let mut seqs: Vec<i64> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sequence"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=ok as i64).collect::<Vec<_>>());
    assert_ledger_clean(&app);
}
