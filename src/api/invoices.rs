//! Invoices, credit notes and billing details (`domain::invoices`).

use super::views::{utc, Money};
use crate::auth::AuthUser;
use crate::domain::invoices::{self, Billing, Invoice};
use crate::domain::{decode_cursor, encode_cursor, page_limit};
use crate::error::{AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A party as printed on a document.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    /// Company or person.
    pub name: String,
    /// Postal address.
    pub address: String,
    /// VAT id.
    pub vat_id: Option<String>,
}

/// One line of a document.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    /// What it is for.
    pub description: String,
    /// Its amount (negative for a deduction).
    pub amount: Money,
}

/// An invoice or credit note.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    /// Id.
    pub id: i64,
    /// The number as printed, e.g. `QUILL-000042`.
    pub number: String,
    /// Its place in the seller's sequence (1, 2, 3, … without gaps).
    pub sequence: i64,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// The seller: the project's legal entity (the platform collects as its agent).
    pub seller: PartyView,
    /// The buyer, with the billing details they gave.
    pub buyer: PartyView,
    /// Lines.
    pub lines: Vec<LineView>,
    /// Total (a credit note: what it gives back).
    pub total: Money,
    /// Issued.
    pub issued_at: DateTime<Utc>,
    /// A credit note: the invoice it corrects.
    pub corrects_id: Option<i64>,
}

/// The view of a document.
pub fn invoice_view(d: &Invoice) -> InvoiceView {
    let party = |p: invoices::Party| PartyView {
        name: p.name,
        address: p.address,
        vat_id: p.vat_id,
    };
    InvoiceView {
        id: d.id,
        number: d.display_number(),
        sequence: d.number,
        kind: d.kind.clone(),
        seller: party(d.seller_party()),
        buyer: party(d.buyer_party()),
        lines: d
            .line_items()
            .into_iter()
            .map(|l| LineView {
                description: l.description,
                amount: Money {
                    amount: l.amount,
                    currency: d.currency.clone(),
                },
            })
            .collect(),
        total: Money {
            amount: d.total,
            currency: d.currency.clone(),
        },
        issued_at: utc(d.issued_at),
        corrects_id: d.corrects_id,
    }
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// A page of documents.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    /// Newest first.
    pub items: Vec<InvoiceView>,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The caller's invoices and credit notes, newest first.
#[utoipa::path(get, path = "/api/v1/me/invoices", tag = "plans", security(("bearer" = [])),
    params(InvoiceQuery),
    responses((status = 200, body = InvoicePage), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn mine(
    state: web::Data<AppState>,
    user: AuthUser,
    q: web::Query<InvoiceQuery>,
) -> AppResult<web::Json<InvoicePage>> {
    let limit = page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    state
        .db(move |conn| {
            let mut rows = invoices::of_buyer(conn, user.id, before, limit + 1)?;
            let next = (rows.len() as i64 > limit).then(|| {
                rows.truncate(limit as usize);
                rows.last().map(|r| encode_cursor(r.id))
            });
            Ok(web::Json(InvoicePage {
                items: rows.iter().map(invoice_view).collect(),
                next_cursor: next.flatten(),
            }))
        })
        .await
}

/// One invoice or credit note: its buyer's, or read by the seller's
/// maintainers; 404 for anyone else.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "invoice id")),
    responses((status = 200, body = InvoiceView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<InvoiceView>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            Ok(web::Json(invoice_view(&invoices::visible(
                conn, id, user.id,
            )?)))
        })
        .await
}

/// The document as a PDF.
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pdf", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "invoice id")),
    responses((status = 200, description = "the document", content_type = "application/pdf", body = String),
              (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn pdf(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let d = state
        .db(move |conn| invoices::visible(conn, id, user.id))
        .await?;
    Ok(pdf_response(&d))
}

/// A document as a PDF download.
pub fn pdf_response(d: &Invoice) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{}.pdf\"", d.display_number()),
        ))
        .insert_header(("cache-control", "private, no-store"))
        .body(invoices::pdf(d))
}

/// Billing details printed on invoices.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingBody {
    /// Company (or person) name, 1–200 characters.
    pub name: String,
    /// Postal address, up to 1000 characters.
    #[serde(default)]
    pub address: String,
    /// VAT id: 4–20 letters and digits.
    pub vat_id: Option<String>,
}

/// The caller's billing details (null fields until set).
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingView {
    /// Company or person; null until set.
    pub name: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// VAT id.
    pub vat_id: Option<String>,
    /// Invoices re-issued under the new details (on PUT).
    pub reissued: usize,
}

/// The caller's billing details.
#[utoipa::path(get, path = "/api/v1/me/billing", tag = "plans", security(("bearer" = [])),
    responses((status = 200, body = BillingView), (status = 401, body = Problem)))]
pub async fn get_billing(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<BillingView>> {
    state
        .db(move |conn| {
            let b = invoices::billing_of(conn, user.id)?;
            Ok(web::Json(BillingView {
                name: b.as_ref().map(|b| b.name.clone()),
                address: b.as_ref().map(|b| b.address.clone()),
                vat_id: b.and_then(|b| b.vat_id),
                reissued: 0,
            }))
        })
        .await
}

/// Set the billing details; each current invoice is cancelled by a credit
/// note and re-issued under them.
#[utoipa::path(put, path = "/api/v1/me/billing", tag = "plans", security(("bearer" = [])),
    request_body = BillingBody,
    responses((status = 200, body = BillingView), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn put_billing(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<BillingBody>,
) -> AppResult<web::Json<BillingView>> {
    let b = body.into_inner();
    state
        .db(move |conn| {
            let reissued = invoices::set_billing(
                conn,
                user.id,
                &Billing {
                    name: b.name,
                    address: b.address,
                    vat_id: b.vat_id,
                },
            )?;
            let b = invoices::billing_of(conn, user.id)?;
            tracing::info!(user_id = user.id, reissued, "billing details set");
            Ok(web::Json(BillingView {
                name: b.as_ref().map(|b| b.name.clone()),
                address: b.as_ref().map(|b| b.address.clone()),
                vat_id: b.and_then(|b| b.vat_id),
                reissued,
            }))
        })
        .await
}
