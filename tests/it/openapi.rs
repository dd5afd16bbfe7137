//! The OpenAPI document as clients and schemathesis read it: every `$ref`
//! resolves, every error is `application/problem+json`, parameters sit where
//! the server reads them, and the constraints the server enforces are stated.

use crate::util::TestApp;
use serde_json::Value;

async fn document() -> Value {
    TestApp::new()
        .get("/api/v1/openapi.json", None)
        .await
        .expect(200)
        .body
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(method, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn collect_refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "$ref" {
                    out.push((at.to_owned(), child.as_str().unwrap_or("").to_owned()));
                } else {
                    collect_refs(child, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Follows a local JSON pointer (`#/components/schemas/Name`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

#[actix_web::test]
async fn every_ref_resolves() {
    let doc = document().await;
    let mut refs = Vec::new();
    collect_refs(&doc, "#", &mut refs);
    assert!(refs.len() > 50, "the document uses references");
    let dangling: Vec<_> = refs
        .iter()
        .filter(|(_, r)| resolve(&doc, r).is_none())
        .map(|(at, r)| format!("{r} (at {at})"))
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:#?}");
    // The two that used to dangle, from query parameters.
    for name in ["Status", "HelperStatus"] {
        assert!(
            doc["components"]["schemas"][name]["enum"].is_array(),
            "{name} is registered"
        );
    }
}

#[actix_web::test]
async fn every_error_response_is_problem_json() {
    let doc = document().await;
    let mut wrong = Vec::new();
    let mut errors = 0;
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            errors += 1;
            let content = response["content"].as_object();
            let types: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
            let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
            if types != ["application/problem+json"] || schema != "#/components/schemas/Problem" {
                wrong.push(format!("{method} {path} {status}: {types:?} {schema}"));
            }
        }
    }
    assert!(errors > 100, "errors are documented ({errors})");
    assert!(wrong.is_empty(), "not problem+json: {wrong:#?}");
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from(field)),
            "Problem.{field} is required"
        );
    }
}

#[actix_web::test]
async fn errors_from_extractors_are_documented_where_they_can_happen() {
    let doc = document().await;
    for (method, path, op) in operations(&doc) {
        let documented = |status: &str| op["responses"].get(status).is_some();
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let has_in = |place: &str| params.iter().any(|p| p["in"] == place);
        let bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if bearer {
            assert!(documented("401"), "{method} {path}: 401");
        }
        if op["requestBody"]["content"]
            .get("application/json")
            .is_some()
        {
            for status in ["400", "413", "415", "422"] {
                assert!(documented(status), "{method} {path}: {status}");
            }
        }
        if has_in("path") {
            assert!(documented("404"), "{method} {path}: 404");
        }
        if has_in("query") {
            assert!(documented("400"), "{method} {path}: 400");
        }
        if !["/metrics", "/api/v1/openapi.json"].contains(&path.as_str()) {
            assert!(documented("503"), "{method} {path}: 503");
        }
    }
}

#[actix_web::test]
async fn parameters_are_where_the_server_reads_them() {
    let doc = document().await;
    for (method, path, op) in operations(&doc) {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for p in &params {
            let name = p["name"].as_str().unwrap();
            let templated = path.contains(&format!("{{{name}}}"));
            match p["in"].as_str().unwrap() {
                "path" => {
                    assert!(templated, "{method} {path}: `{name}` is not in the path");
                    assert_eq!(p["required"], true, "{method} {path}: `{name}`");
                }
                "query" => {
                    assert!(!templated, "{method} {path}: `{name}` is in the path");
                    assert_ne!(p["required"], true, "{method} {path}: `{name}` is optional");
                }
                _ => {}
            }
        }
    }
    let list = &doc["paths"]["/api/v1/tickets"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(limit["in"], "query");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 100);
}

/// The schema of `name`'s property `field`.
fn property<'a>(doc: &'a Value, name: &str, field: &str) -> &'a Value {
    let p = &doc["components"]["schemas"][name]["properties"][field];
    assert!(p.is_object(), "{name}.{field} exists");
    p
}

#[actix_web::test]
async fn enforced_constraints_are_stated() {
    let doc = document().await;
    let c = |name: &str, field: &str, key: &str| property(&doc, name, field)[key].clone();
    for (name, field, key, value) in [
        ("RegisterBody", "password", "minLength", 12),
        ("RegisterBody", "password", "maxLength", 1024),
        ("RegisterBody", "display_name", "minLength", 1),
        ("RegisterBody", "display_name", "maxLength", 100),
        ("CreateProjectBody", "slug", "minLength", 2),
        ("CreateProjectBody", "slug", "maxLength", 64),
        ("CreateProjectBody", "commission_bps", "maximum", 3000),
        ("PatchProjectBody", "acceptance_days", "minimum", 1),
        ("PatchProjectBody", "acceptance_days", "maximum", 60),
        ("PatchProjectBody", "auto_close_days", "maximum", 365),
        ("PatchProjectBody", "free_share_pct", "maximum", 100),
        ("CreateTicketBody", "title", "minLength", 3),
        ("CreateTicketBody", "title", "maxLength", 200),
        ("CreateTicketBody", "body", "maxLength", 50_000),
        ("RatingBody", "stars", "minimum", 1),
        ("RatingBody", "stars", "maximum", 5),
        ("ReasonBody", "reason", "maxLength", 500),
        ("TemplateBody", "name", "minLength", 1),
        ("BountyBody", "amount", "minimum", 100),
        ("BountyBody", "amount", "maximum", 10_000_000),
        ("BountyBody", "expires_in_days", "maximum", 365),
        ("BidBody", "eta_hours", "maximum", 8760),
        ("RouteBody", "title", "maxLength", 300),
    ] {
        assert_eq!(c(name, field, key), value, "{name}.{field} {key}");
    }
    assert_eq!(
        property(&doc, "CreateTicketBody", "tags")["maxItems"],
        10,
        "at most 10 tags"
    );
    assert_eq!(
        property(&doc, "CreateTicketBody", "tags")["items"]["maxLength"],
        40
    );
    assert_eq!(
        doc["components"]["schemas"]["PatchTicketBody"]["additionalProperties"], false,
        "unknown fields are refused"
    );

    // An expert must state an hourly rate; a community helper need not.
    let apply = &doc["components"]["schemas"]["ApplyBody"]["oneOf"];
    let variant = |tier: &str| {
        apply
            .as_array()
            .expect("ApplyBody is oneOf")
            .iter()
            .find(|v| v["properties"]["tier"]["enum"][0] == tier)
            .unwrap_or_else(|| panic!("{tier} variant"))
            .clone()
    };
    let expert = variant("expert");
    assert!(expert["required"]
        .as_array()
        .unwrap()
        .contains(&Value::from("hourly_rate")));
    assert_eq!(expert["properties"]["hourly_rate"]["minimum"], 1);
    assert_eq!(expert["properties"]["hourly_rate"]["maximum"], 100_000_000);
    let community = variant("community");
    assert!(!community["required"]
        .as_array()
        .unwrap()
        .contains(&Value::from("hourly_rate")));

    // Response enums: a ticket's status is one of the lifecycle's.
    let status = &property(&doc, "TicketView", "status")["$ref"];
    assert_eq!(status, "#/components/schemas/Status");
    let statuses = resolve(&doc, status.as_str().unwrap()).unwrap()["enum"].clone();
    assert!(statuses
        .as_array()
        .unwrap()
        .contains(&Value::from("auto_closed")));
}

#[actix_web::test]
async fn a_statement_documents_both_formats() {
    let doc = document().await;
    let ok = &doc["paths"]["/api/v1/projects/{slug}/statement"]["get"]["responses"]["200"];
    assert!(ok["content"]["application/json"].is_object());
    assert!(ok["content"]["text/csv"].is_object());
}
