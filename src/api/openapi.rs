//! Finishing touches on the generated OpenAPI document: every error response
//! is `application/problem+json` with the [`Problem`](crate::error::Problem)
//! schema, and the errors that come from the extractors rather than from a
//! handler (a malformed body, a bad query string, an id that is not a
//! number, a missing or invalid token, a database that does not answer) are
//! documented on every operation where they can happen.

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Ref, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::Modify;

/// The media type of every error response (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Operations that never touch the database, so never answer 503.
const NO_DATABASE: &[&str] = &["/metrics", "/api/v1/openapi.json"];

/// Rewrites error responses to problem+json and adds the extractor errors.
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, doc: &mut OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for op in operations(item) {
                add_extractor_errors(path, op);
                for (status, response) in op.responses.responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (is_error(status), response) {
                        problem_body(status, response);
                    }
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn is_error(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

fn problem_body(status: &str, response: &mut Response) {
    response.content.clear();
    response.content.insert(
        PROBLEM_JSON.to_owned(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
    if status == "429" || status == "503" {
        let mut header = Header::new(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        );
        header.description = Some("seconds to wait before retrying".into());
        response.headers.insert("Retry-After".to_owned(), header);
    }
}

/// Adds `status` with `description` unless the handler documented it.
fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(Response::new(description)));
}

fn add_extractor_errors(path: &str, op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |kind: ParameterIn| {
        params
            .iter()
            .any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&kind))
    };
    let (in_path, in_query) = (has(ParameterIn::Path), has(ParameterIn::Query));
    let paged = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query) && p.name == "limit");
    let idempotent = params.iter().any(|p| p.name == "Idempotency-Key");
    let bearer = op
        .security
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .is_some_and(|v| v.to_string().contains("\"bearer\""));
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));

    if json_body {
        add(op, "400", "the body is not valid JSON");
        add(op, "413", "the body is larger than the configured limit");
        add(op, "415", "the body is not `application/json`");
        add(
            op,
            "422",
            "fields are missing or invalid; `errors` names them",
        );
    }
    if bearer {
        add(
            op,
            "401",
            "missing, malformed or expired access token (`WWW-Authenticate: Bearer`)",
        );
    }
    if in_path {
        add(op, "404", "no such object, or not visible to the caller");
    }
    if in_query {
        add(op, "400", "the query string or the cursor is invalid");
    }
    if paged {
        add(op, "422", "`limit` is outside 1–100");
    }
    if idempotent {
        add(
            op,
            "400",
            "the Idempotency-Key header is not 1–255 visible characters",
        );
        add(
            op,
            "409",
            "a request with this Idempotency-Key is still running",
        );
        add(
            op,
            "422",
            "this Idempotency-Key was used with a different request (`idempotency_mismatch`)",
        );
    }
    if !NO_DATABASE.contains(&path) {
        add(
            op,
            "503",
            "the database does not answer in time; retry after Retry-After seconds",
        );
    }
}

/// Strings of `min_len`–`max_len` characters that are not blank (the server
/// trims before counting) or, with `no_spaces`, contain no whitespace at all.
fn strings(min_len: usize, max_len: usize, no_spaces: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min_len))
        .max_length(Some(max_len))
        .pattern(Some(if no_spaces { r"^\S+$" } else { r"\S" }))
}

fn list(description: &str, max_items: usize, item: ObjectBuilder, nullable: bool) -> ArrayBuilder {
    let array = ArrayBuilder::new()
        .description(Some(description))
        .items(item)
        .max_items(Some(max_items));
    if nullable {
        array.schema_type(
            [Type::Array, Type::Null]
                .into_iter()
                .collect::<SchemaType>(),
        )
    } else {
        array
    }
}

/// A project's topics: at most 20, each 1–50 characters.
pub fn topics() -> ArrayBuilder {
    list(
        "At most 20 topics of 1–50 characters.",
        20,
        strings(1, 50, false),
        false,
    )
}

/// [`topics`] in a PATCH body, where `null` leaves them as they are.
pub fn topics_patch() -> ArrayBuilder {
    list(
        "Replaces the topics: at most 20 of 1–50 characters.",
        20,
        strings(1, 50, false),
        true,
    )
}

/// A ticket's tags: at most 10, each 1–40 characters without spaces.
pub fn tags() -> ArrayBuilder {
    list(
        "At most 10 tags of 1–40 characters without spaces.",
        10,
        strings(1, 40, true),
        false,
    )
}

/// [`tags`] in a PATCH body, where `null` leaves them as they are.
pub fn tags_patch() -> ArrayBuilder {
    list(
        "Replaces the tags: at most 10 of 1–40 characters without spaces.",
        10,
        strings(1, 40, true),
        true,
    )
}

/// A helper's skills: at most 30, each 1–50 characters.
pub fn skills() -> ArrayBuilder {
    list(
        "At most 30 skills of 1–50 characters.",
        30,
        strings(1, 50, false),
        false,
    )
}
