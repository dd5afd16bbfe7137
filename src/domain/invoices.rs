//! Invoices and credit notes (issue 13 §3).
//!
//! Every charge — a bounty (an upgrade or an accepted bid is one too) or a
//! subscription period — gets an invoice, and every refund a credit note,
//! issued in the same transaction that books the money, exactly once (each
//! document has its own unique `source` key). The seller is the project
//! (its legal entity); the platform collects as its agent. Documents are
//! numbered 1, 2, 3, … per seller **without gaps, even under concurrency**:
//! the number is taken from the seller's `invoice_sequences` row with an
//! upsert that holds the row until the issuing transaction commits, so a
//! rollback leaves no hole and two issuers queue. A document is never
//! changed: when a buyer changes their billing details, each of their
//! invoices is corrected by a credit note and re-issued with the new
//! details.

use crate::db::schema::{billing_details as bd, invoice_sequences as seq, invoices as inv, users};
use crate::db::{write_tx, DbConnection};
use crate::domain::now;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `invoices`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inv)]
pub struct Invoice {
    /// Id.
    pub id: i64,
    /// The seller.
    pub project_id: i64,
    /// Its number in the seller's sequence.
    pub number: i64,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// Who paid.
    pub buyer_id: i64,
    /// The seller's block, JSON [`Party`].
    pub seller: String,
    /// The buyer's block, JSON [`Party`].
    pub buyer: String,
    /// JSON [`Line`]s.
    pub lines: String,
    /// Minor units (a credit note's total is what it gives back).
    pub total: i64,
    /// Currency.
    pub currency: String,
    /// The money it documents.
    pub origin: String,
    /// Its own unique key.
    pub source: String,
    /// A credit note: the invoice it corrects.
    pub corrects_id: Option<i64>,
    /// Issued.
    pub issued_at: NaiveDateTime,
}

impl Invoice {
    /// Its lines.
    pub fn line_items(&self) -> Vec<Line> {
        serde_json::from_str(&self.lines).unwrap_or_default()
    }
    /// The seller's block.
    pub fn seller_party(&self) -> Party {
        serde_json::from_str(&self.seller).unwrap_or_default()
    }
    /// The buyer's block.
    pub fn buyer_party(&self) -> Party {
        serde_json::from_str(&self.buyer).unwrap_or_default()
    }
    /// The number as printed, e.g. `QUILL-000042`.
    pub fn display_number(&self) -> String {
        let prefix: String = self
            .seller_party()
            .reference
            .to_ascii_uppercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        format!("{prefix}-{:06}", self.number)
    }
}

/// One line of a document.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    /// What it is for.
    pub description: String,
    /// Minor units (negative for a deduction, e.g. a service credit).
    pub amount: i64,
}

/// A party as printed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Party {
    /// Company or person.
    pub name: String,
    /// Postal address (lines).
    pub address: String,
    /// VAT id.
    pub vat_id: Option<String>,
    /// Seller: the project's slug (the number's prefix). Buyer: their email.
    pub reference: String,
}

/// A document to issue.
struct NewDocument<'a> {
    project: i64,
    buyer: i64,
    kind: &'static str,
    lines: Vec<Line>,
    total: i64,
    currency: &'a str,
    origin: String,
    source: String,
    corrects: Option<i64>,
}

fn seller_of(conn: &mut DbConnection, project: i64) -> AppResult<Party> {
    let p = crate::domain::projects::by_id(conn, project)?;
    Ok(Party {
        name: p.legal_entity.clone().unwrap_or_else(|| p.name.clone()),
        address: String::new(),
        vat_id: None,
        reference: p.slug,
    })
}

fn buyer_of(conn: &mut DbConnection, user: i64) -> AppResult<Party> {
    let (name, email): (String, String) = users::table
        .find(user)
        .select((users::display_name, users::email))
        .first(conn)?;
    let details: Option<(String, String, Option<String>)> = bd::table
        .find(user)
        .select((bd::name, bd::address, bd::vat_id))
        .first(conn)
        .optional()?;
    Ok(match details {
        Some((n, a, v)) => Party {
            name: n,
            address: a,
            vat_id: v,
            reference: email,
        },
        None => Party {
            name,
            address: String::new(),
            vat_id: None,
            reference: email,
        },
    })
}

/// The seller's next number, held until the caller's transaction ends.
fn next_number(conn: &mut DbConnection, project: i64) -> QueryResult<i64> {
    crate::per_backend!(conn, |c| diesel::insert_into(seq::table)
        .values((seq::project_id.eq(project), seq::last_number.eq(1_i64)))
        .on_conflict(seq::project_id)
        .do_update()
        .set(seq::last_number.eq(seq::last_number + 1))
        .returning(seq::last_number)
        .get_result::<i64>(c))
}

/// Issues a document once per source; call inside the transaction that
/// moves its money. Returns it (the earlier one for a source seen before).
fn issue(conn: &mut DbConnection, d: NewDocument<'_>) -> AppResult<Invoice> {
    if let Some(found) = inv::table
        .filter(inv::source.eq(&d.source))
        .select(Invoice::as_select())
        .first(conn)
        .optional()?
    {
        return Ok(found);
    }
    // A credit note is the corrected invoice's seller's, whatever the
    // project calls itself now.
    let seller = match d.corrects {
        Some(c) => inv::table
            .find(c)
            .select(inv::seller)
            .first::<String>(conn)
            .ok()
            .and_then(|s| serde_json::from_str::<Party>(&s).ok()),
        None => None,
    };
    let seller = match seller {
        Some(s) => s,
        None => seller_of(conn, d.project)?,
    };
    let buyer = buyer_of(conn, d.buyer)?;
    let number = next_number(conn, d.project)?;
    let id: i64 = diesel::insert_into(inv::table)
        .values((
            inv::project_id.eq(d.project),
            inv::number.eq(number),
            inv::kind.eq(d.kind),
            inv::buyer_id.eq(d.buyer),
            inv::seller.eq(to_json(&seller)),
            inv::buyer.eq(to_json(&buyer)),
            inv::lines.eq(to_json(&d.lines)),
            inv::total.eq(d.total),
            inv::currency.eq(d.currency),
            inv::origin.eq(&d.origin),
            inv::source.eq(&d.source),
            inv::corrects_id.eq(d.corrects),
            inv::issued_at.eq(now()),
        ))
        .returning(inv::id)
        .get_result(conn)?;
    Ok(inv::table
        .find(id)
        .select(Invoice::as_select())
        .first(conn)?)
}

/// JSON text of a document block (plain data: it always serializes).
fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The current invoice of `origin` (the latest re-issue).
fn current_invoice(conn: &mut DbConnection, origin: &str) -> QueryResult<Option<Invoice>> {
    inv::table
        .filter(inv::origin.eq(origin))
        .filter(inv::kind.eq("invoice"))
        .order(inv::id.desc())
        .select(Invoice::as_select())
        .first(conn)
        .optional()
}

/// The invoice of a bounty whose payment was just booked.
pub fn bounty_paid(conn: &mut DbConnection, b: &crate::domain::money::Bounty) -> AppResult<()> {
    let (project, title): (i64, String) = crate::db::schema::tickets::table
        .find(b.ticket_id)
        .select((
            crate::db::schema::tickets::project_id,
            crate::db::schema::tickets::title,
        ))
        .first(conn)?;
    let what = if b.bid_id.is_some() {
        "Accepted offer"
    } else {
        "Bounty"
    };
    issue(
        conn,
        NewDocument {
            project,
            buyer: b.backer_id,
            kind: "invoice",
            lines: vec![Line {
                description: format!("{what} on ticket #{}: {title}", b.ticket_id),
                amount: b.amount,
            }],
            total: b.amount,
            currency: &b.currency,
            origin: format!("bounty:{}", b.id),
            source: format!("bounty:{}", b.id),
            corrects: None,
        },
    )?;
    Ok(())
}

/// The credit note of `amount` refunded of a bounty, bringing its refunded
/// total to `refunded_total`.
pub fn bounty_refunded(
    conn: &mut DbConnection,
    b: &crate::domain::money::Bounty,
    amount: i64,
    refunded_total: i64,
) -> AppResult<()> {
    let origin = format!("bounty:{}", b.id);
    let project: i64 = crate::db::schema::tickets::table
        .find(b.ticket_id)
        .select(crate::db::schema::tickets::project_id)
        .first(conn)?;
    // Money paid before invoices were issued has none to refer to.
    let original = current_invoice(conn, &origin)?;
    let on = original
        .as_ref()
        .map(|o| format!("invoice {}", o.display_number()))
        .unwrap_or_else(|| format!("bounty {}", b.id));
    issue(
        conn,
        NewDocument {
            project,
            buyer: b.backer_id,
            kind: "credit_note",
            lines: vec![Line {
                description: format!("Refund on {on} (ticket #{})", b.ticket_id),
                amount,
            }],
            total: amount,
            currency: &b.currency,
            source: format!("{origin}:refund:{refunded_total}"),
            origin,
            corrects: original.map(|o| o.id),
        },
    )?;
    Ok(())
}

/// The invoice of a subscription period just paid.
pub fn period_paid(conn: &mut DbConnection, period_id: i64) -> AppResult<()> {
    use crate::db::schema::{plans, subscription_periods as sp, subscriptions as s};
    type Row = (
        i64,
        i64,
        i32,
        NaiveDateTime,
        NaiveDateTime,
        i64,
        i64,
        String,
        String,
    );
    let (project, buyer, number, from, to, amount, credit, currency, plan): Row = sp::table
        .inner_join(s::table.on(s::id.eq(sp::subscription_id)))
        .inner_join(plans::table.on(plans::id.eq(s::plan_id)))
        .filter(sp::id.eq(period_id))
        .select((
            s::project_id,
            s::subscriber_id,
            sp::number,
            sp::starts_at,
            sp::ends_at,
            sp::amount,
            sp::credit_applied,
            s::currency,
            plans::name,
        ))
        .first(conn)?;
    let mut lines = vec![Line {
        description: format!(
            "{plan}, period {number}: {} to {}",
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        ),
        amount: amount + credit,
    }];
    if credit > 0 {
        lines.push(Line {
            description: "Service credit for missed response times".into(),
            amount: -credit,
        });
    }
    let origin = format!("subscription_period:{period_id}");
    issue(
        conn,
        NewDocument {
            project,
            buyer,
            kind: "invoice",
            lines,
            total: amount,
            currency: &currency,
            source: origin.clone(),
            origin,
            corrects: None,
        },
    )?;
    Ok(())
}

/// The credit note of a subscription period returned in full.
pub fn period_refunded(conn: &mut DbConnection, period_id: i64) -> AppResult<()> {
    let origin = format!("subscription_period:{period_id}");
    let Some(original) = current_invoice(conn, &origin)? else {
        return Err(AppError::internal(anyhow::anyhow!(
            "period {period_id} is refunded but was never invoiced"
        )));
    };
    issue(
        conn,
        NewDocument {
            project: original.project_id,
            buyer: original.buyer_id,
            kind: "credit_note",
            lines: vec![Line {
                description: format!(
                    "Refund of invoice {}: the subscription had ended",
                    original.display_number()
                ),
                amount: original.total,
            }],
            total: original.total,
            currency: &original.currency.clone(),
            source: format!("{origin}:refund"),
            origin,
            corrects: Some(original.id),
        },
    )?;
    Ok(())
}

/// Billing details as typed.
#[derive(Debug, Clone, Default)]
pub struct Billing {
    /// Company or person name, 1–200 characters.
    pub name: String,
    /// Postal address, up to 1000 characters.
    pub address: String,
    /// VAT id: 4–20 letters and digits (spaces ignored), or none.
    pub vat_id: Option<String>,
}

/// The user's billing details, if set.
pub fn billing_of(conn: &mut DbConnection, user: i64) -> QueryResult<Option<Billing>> {
    Ok(bd::table
        .find(user)
        .select((bd::name, bd::address, bd::vat_id))
        .first::<(String, String, Option<String>)>(conn)
        .optional()?
        .map(|(name, address, vat_id)| Billing {
            name,
            address,
            vat_id,
        }))
}

/// Sets the user's billing details (422 naming each bad field) and
/// re-issues each of their current invoices under them: a credit note
/// cancels it and a new invoice, with the next numbers, replaces it.
/// Returns how many were re-issued.
pub fn set_billing(conn: &mut DbConnection, user: i64, b: &Billing) -> AppResult<usize> {
    let mut errors = Vec::new();
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let address = b.address.trim();
    if address.chars().count() > 1000
        || address
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        errors.push(FieldError::new(
            "address",
            "must be at most 1000 characters",
        ));
    }
    let vat = b
        .vat_id
        .as_deref()
        .map(|v| v.replace([' ', '.', '-'], "").to_ascii_uppercase())
        .filter(|v| !v.is_empty());
    if vat.as_deref().is_some_and(|v| {
        !(4..=20).contains(&v.len()) || !v.bytes().all(|c| c.is_ascii_alphanumeric())
    }) {
        errors.push(FieldError::new(
            "vat_id",
            "must be 4 to 20 letters and digits, e.g. DE123456789",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let address = address.replace("\r\n", "\n");
    // The same details again change nothing (and re-issue nothing).
    if let Some(old) = billing_of(conn, user)? {
        if old.name == name && old.address == address && old.vat_id == vat {
            return Ok(0);
        }
    }
    write_tx(conn, |conn| {
        crate::per_backend!(conn, |c| diesel::insert_into(bd::table)
            .values((
                bd::user_id.eq(user),
                bd::name.eq(name),
                bd::address.eq(&address),
                bd::vat_id.eq(vat.as_deref()),
                bd::updated_at.eq(now()),
            ))
            .on_conflict(bd::user_id)
            .do_update()
            .set((
                bd::name.eq(name),
                bd::address.eq(&address),
                bd::vat_id.eq(vat.as_deref()),
                bd::updated_at.eq(now()),
            ))
            .execute(c))?;
        // The buyer's current invoices: not yet corrected by a re-issue.
        // In seller order, so two re-issues never wait on each other's
        // sequence rows in opposite orders.
        let current: Vec<Invoice> = inv::table
            .filter(inv::buyer_id.eq(user))
            .filter(inv::kind.eq("invoice"))
            .order((inv::project_id, inv::id))
            .select(Invoice::as_select())
            .load(conn)?;
        let mut n = 0;
        for old in current {
            let replaced: i64 = inv::table
                .filter(inv::source.eq(format!("reissue:{}:credit", old.id)))
                .count()
                .get_result(conn)?;
            if replaced > 0 {
                continue;
            }
            // Refunded in full: nothing is left to re-issue.
            let refunded: i64 = inv::table
                .filter(inv::corrects_id.eq(old.id))
                .filter(inv::kind.eq("credit_note"))
                .select(inv::total)
                .load::<i64>(conn)?
                .into_iter()
                .sum();
            if refunded >= old.total {
                continue;
            }
            issue(
                conn,
                NewDocument {
                    project: old.project_id,
                    buyer: user,
                    kind: "credit_note",
                    lines: vec![Line {
                        description: format!(
                            "Cancels invoice {}: re-issued with new billing details",
                            old.display_number()
                        ),
                        amount: old.total,
                    }],
                    total: old.total,
                    currency: &old.currency,
                    origin: old.origin.clone(),
                    source: format!("reissue:{}:credit", old.id),
                    corrects: Some(old.id),
                },
            )?;
            issue(
                conn,
                NewDocument {
                    project: old.project_id,
                    buyer: user,
                    kind: "invoice",
                    lines: old.line_items(),
                    total: old.total,
                    currency: &old.currency,
                    origin: old.origin.clone(),
                    source: format!("reissue:{}", old.id),
                    corrects: None,
                },
            )?;
            n += 1;
        }
        Ok(n)
    })
}

/// A document the user may read: its buyer's, or one its seller's
/// maintainers read. 404 otherwise.
pub fn visible(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Invoice> {
    let found = inv::table
        .find(id)
        .select(Invoice::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("invoice"))?;
    if found.buyer_id == user
        || crate::domain::projects::is_maintainer(conn, found.project_id, user)?
    {
        Ok(found)
    } else {
        Err(AppError::not_found("invoice"))
    }
}

/// The buyer's documents, newest first, `limit` before id `before`.
pub fn of_buyer(
    conn: &mut DbConnection,
    user: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Invoice>> {
    let mut q = inv::table
        .filter(inv::buyer_id.eq(user))
        .order(inv::id.desc())
        .limit(limit)
        .select(Invoice::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(inv::id.lt(b));
    }
    q.load(conn)
}

/// A document as a one-page PDF (A4, the standard Helvetica; text outside
/// Windows-1252 is shown as `?`).
pub fn pdf(d: &Invoice) -> Vec<u8> {
    use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
    let (catalog, tree, page, font, bold, content) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
    );
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    p.parent(tree);
    p.contents(content);
    {
        let mut res = p.resources();
        let mut fonts = res.fonts();
        fonts.pair(Name(b"F1"), font);
        fonts.pair(Name(b"F2"), bold);
    }
    p.finish();
    for (r, base) in [(font, &b"Helvetica"[..]), (bold, &b"Helvetica-Bold"[..])] {
        pdf.type1_font(r)
            .base_font(Name(base))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let money = |a: i64| crate::web::money(a, &d.currency);
    let seller = d.seller_party();
    let buyer = d.buyer_party();
    let title = if d.kind == "credit_note" {
        "Credit note"
    } else {
        "Invoice"
    };
    let mut c = Content::new();
    let mut y = 790.0;
    let text = |c: &mut Content, bold: bool, size: f32, x: f32, y: f32, s: &str| {
        c.begin_text();
        c.set_font(Name(if bold { b"F2" } else { b"F1" }), size);
        c.next_line(x, y);
        c.show(Str(&win_ansi(s)));
        c.end_text();
    };
    text(
        &mut c,
        true,
        20.0,
        50.0,
        y,
        &format!("{title} {}", d.display_number()),
    );
    y -= 22.0;
    text(
        &mut c,
        false,
        10.0,
        50.0,
        y,
        &format!("Issued {}", d.issued_at.format("%Y-%m-%d")),
    );
    y -= 30.0;
    text(&mut c, true, 11.0, 50.0, y, "Seller");
    text(&mut c, true, 11.0, 320.0, y, "Buyer");
    y -= 15.0;
    let left = [
        seller.name.clone(),
        "Payment collected by Guildhall as the seller's agent".to_owned(),
    ];
    let mut right = vec![buyer.name.clone()];
    right.extend(buyer.address.lines().map(str::to_owned));
    if let Some(v) = &buyer.vat_id {
        right.push(format!("VAT id {v}"));
    }
    right.push(buyer.reference.clone());
    let rows = left.len().max(right.len());
    for i in 0..rows {
        if let Some(l) = left.get(i) {
            text(&mut c, false, 10.0, 50.0, y, l);
        }
        if let Some(r) = right.get(i) {
            text(&mut c, false, 10.0, 320.0, y, r);
        }
        y -= 13.0;
    }
    y -= 20.0;
    text(&mut c, true, 11.0, 50.0, y, "Description");
    text(&mut c, true, 11.0, 450.0, y, "Amount");
    y -= 16.0;
    for line in d.line_items() {
        let desc: String = line.description.chars().take(80).collect();
        text(&mut c, false, 10.0, 50.0, y, &desc);
        text(&mut c, false, 10.0, 450.0, y, &money(line.amount));
        y -= 14.0;
        if y < 80.0 {
            break;
        }
    }
    y -= 10.0;
    let total_label = if d.kind == "credit_note" {
        "Total credited"
    } else {
        "Total"
    };
    text(&mut c, true, 11.0, 50.0, y, total_label);
    text(&mut c, true, 11.0, 450.0, y, &money(d.total));
    pdf.stream(content, &c.finish());
    pdf.finish()
}

/// `s` in Windows-1252 (the PDF's WinAnsiEncoding); other characters
/// become `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| match ch {
            ' '..='~' => ch as u8,
            '\u{a0}'..='\u{ff}' => ch as u32 as u8,
            '€' => 0x80,
            '–' => 0x96,
            '—' => 0x97,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '…' => 0x85,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_latin_text() {
        assert_eq!(win_ansi("Café – 5 €"), b"Caf\xe9 \x96 5 \x80".to_vec());
        assert_eq!(win_ansi("日本\n"), b"???".to_vec());
    }
}
