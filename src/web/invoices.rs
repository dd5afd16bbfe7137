//! Invoices in the web app: the buyer's documents with their billing
//! details (`/me/invoices`), each document as a printable page and a PDF.

use super::pages::{redirect, when, Page};
use super::session::{self, Session};
use super::{money, render, Layout, WebError};
use crate::domain::invoices::{self, Billing, Invoice};
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

/// A document as the list shows it: (id, number, kind, issued, total).
type Row = (i64, String, &'static str, String, String);

fn row(d: &Invoice) -> Row {
    (
        d.id,
        d.display_number(),
        if d.kind == "credit_note" {
            "Credit note"
        } else {
            "Invoice"
        },
        when(d.issued_at),
        money(d.total, &d.currency),
    )
}

#[derive(Template)]
#[template(path = "invoices.html", config = "src/web/askama.toml")]
struct InvoicesPage {
    l: Layout,
    rows: Vec<Row>,
    /// The billing form as shown (saved values, or what was typed).
    name: String,
    address: String,
    vat_id: String,
    notice: String,
    errors: Vec<String>,
}

async fn invoices_page(
    state: &AppState,
    req: &HttpRequest,
    typed: Option<BillingForm>,
    notice: String,
    errors: Vec<String>,
    status: StatusCode,
) -> Page {
    let l = Layout::of(state, req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me/invoices"));
    };
    let (rows, saved) = state
        .db(move |conn| {
            let docs = invoices::of_buyer(conn, user, None, 200)?;
            Ok((
                docs.iter().map(row).collect::<Vec<_>>(),
                invoices::billing_of(conn, user)?,
            ))
        })
        .await?;
    let (name, address, vat_id) = match (typed, saved) {
        (Some(f), _) => (f.name, f.address, f.vat_id),
        (None, Some(b)) => (b.name, b.address, b.vat_id.unwrap_or_default()),
        (None, None) => Default::default(),
    };
    render(
        status,
        &InvoicesPage {
            l,
            rows,
            name,
            address,
            vat_id,
            notice,
            errors,
        },
    )
}

/// `GET /me/invoices`.
pub async fn mine(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let notice = match q.notice.as_str() {
        "saved" => "Billing details saved; your invoices were re-issued with them.",
        _ => "",
    }
    .to_owned();
    invoices_page(&state, &req, None, notice, Vec::new(), StatusCode::OK).await
}

/// The billing form.
#[derive(Debug, Clone, Deserialize)]
pub struct BillingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    vat_id: String,
}

/// `POST /me/billing`.
pub async fn save_billing(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<BillingForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/invoices"));
    };
    let f = form.clone();
    let done = state
        .db(move |conn| {
            invoices::set_billing(
                conn,
                user,
                &Billing {
                    name: f.name,
                    address: f.address,
                    vat_id: Some(f.vat_id).filter(|v| !v.trim().is_empty()),
                },
            )
        })
        .await;
    match done {
        Ok(_) => Ok(redirect("/me/invoices?notice=saved")),
        Err(AppError::Validation(errors)) => {
            let errors = errors.into_iter().map(|e| e.message).collect();
            invoices_page(
                &state,
                &req,
                Some(form),
                String::new(),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(WebError(e)),
    }
}

#[derive(Template)]
#[template(path = "invoice.html", config = "src/web/askama.toml")]
struct InvoicePage {
    l: Layout,
    id: i64,
    title: &'static str,
    number: String,
    issued: String,
    seller: invoices::Party,
    buyer: invoices::Party,
    /// (description, amount).
    lines: Vec<(String, String)>,
    total: String,
    corrects: Option<i64>,
}

async fn visible(
    state: &AppState,
    req: &HttpRequest,
    id: i64,
) -> Result<Option<Invoice>, WebError> {
    let Some(user) = Session::of(req).user_id else {
        return Ok(None);
    };
    Ok(Some(
        state
            .db(move |conn| invoices::visible(conn, id, user))
            .await?,
    ))
}

/// `GET /invoices/{id}`: the document, printable.
pub async fn show(state: web::Data<AppState>, req: HttpRequest, id: web::Path<i64>) -> Page {
    let id = id.into_inner();
    let Some(d) = visible(&state, &req, id).await? else {
        return Ok(redirect(&format!("/login?next=/invoices/{id}")));
    };
    let l = Layout::of(&state, &req).await?;
    let page = InvoicePage {
        l,
        id: d.id,
        title: if d.kind == "credit_note" {
            "Credit note"
        } else {
            "Invoice"
        },
        number: d.display_number(),
        issued: when(d.issued_at),
        seller: d.seller_party(),
        buyer: d.buyer_party(),
        lines: d
            .line_items()
            .into_iter()
            .map(|l| (l.description, money(l.amount, &d.currency)))
            .collect(),
        total: money(d.total, &d.currency),
        corrects: d.corrects_id,
    };
    render(StatusCode::OK, &page)
}

/// `GET /invoices/{id}/pdf`.
pub async fn pdf(state: web::Data<AppState>, req: HttpRequest, id: web::Path<i64>) -> Page {
    let id = id.into_inner();
    let Some(d) = visible(&state, &req, id).await? else {
        return Ok(redirect(&format!("/login?next=/invoices/{id}")));
    };
    Ok(crate::api::invoices::pdf_response(&d))
}
