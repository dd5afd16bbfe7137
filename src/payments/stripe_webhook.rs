//! Stripe webhooks: signature verification and exactly-once application.
//!
//! `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`. The signed
//! payload is `"{t}.{raw body}"`, HMAC-SHA256 with the endpoint's secret;
//! any matching `v1` passes (Stripe sends several while secrets roll); `v0`
//! is ignored; the timestamp must be within the tolerance (300 s) of now.

use super::PaymentEvent;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A verified Stripe event, parsed into the domain's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// Stripe's event id (`evt_…`), unique per event.
    pub id: String,
    /// Stripe's event type, e.g. `charge.refunded`.
    pub kind: String,
    /// What it means for us.
    pub event: PaymentEvent,
}

/// Why an event body could not be parsed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("the event is not JSON")]
    NotJson,
    /// A field the event type needs is missing or has the wrong type.
    #[error("the event has no {0}")]
    Missing(&'static str),
}

/// Parses a Stripe event body (already verified) into a [`StripeEvent`].
pub fn parse_event(body: &[u8]) -> Result<StripeEvent, ParseError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    let id = v["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or(ParseError::Missing("id"))?
        .to_owned();
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    let object = &v["data"]["object"];
    let text = |field: &'static str| -> Result<String, ParseError> {
        object[field]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or(ParseError::Missing(field))
    };
    let amount = |field: &'static str| -> Result<i64, ParseError> {
        object[field]
            .as_i64()
            .filter(|a| *a >= 0)
            .ok_or(ParseError::Missing(field))
    };
    let event = match kind.as_str() {
        "payment_intent.succeeded" => PaymentEvent::Succeeded {
            payment_id: text("id")?,
        },
        // A canceled PaymentIntent will never be paid: as a failure.
        "payment_intent.payment_failed" | "payment_intent.canceled" => PaymentEvent::Failed {
            payment_id: text("id")?,
        },
        // The charge's `amount_refunded` is cumulative over its refunds.
        "charge.refunded" => PaymentEvent::Refunded {
            payment_id: text("payment_intent")?,
            total_refunded: amount("amount_refunded")?,
            refund_id: object["refunds"]["data"][0]["id"]
                .as_str()
                .map(str::to_owned),
        },
        "charge.dispute.created" => PaymentEvent::DisputeOpened {
            payment_id: text("payment_intent")?,
            amount: amount("amount")?,
        },
        // `won`, `lost`, or `warning_closed` (an inquiry that ended without
        // a chargeback: the money stays, as when won).
        "charge.dispute.closed" => PaymentEvent::DisputeClosed {
            payment_id: text("payment_intent")?,
            amount: amount("amount")?,
            won: text("status")? != "lost",
        },
        "account.updated" => PaymentEvent::PayoutAccountUpdated {
            account_id: text("id")?,
            ready: object["payouts_enabled"].as_bool() == Some(true)
                && object["capabilities"]["transfers"].as_str() == Some("active"),
        },
        "invoice.paid" => match invoice_subscription(object) {
            Some(subscription_id) => PaymentEvent::InvoicePaid {
                invoice_id: text("id")?,
                subscription_id,
                our_id: our_subscription(object),
                payment_id: id_or_object(&object["payment_intent"]).or_else(|| {
                    id_or_object(&object["payments"]["data"][0]["payment"]["payment_intent"])
                }),
                amount_paid: amount("amount_paid")?,
                credit_lines: credit_lines(object),
            },
            // A one-off invoice: not ours.
            None => PaymentEvent::Ignored,
        },
        "invoice.payment_failed" => match invoice_subscription(object) {
            Some(subscription_id) => PaymentEvent::InvoicePaymentFailed {
                invoice_id: text("id")?,
                subscription_id,
                our_id: our_subscription(object),
            },
            None => PaymentEvent::Ignored,
        },
        "customer.subscription.updated" => PaymentEvent::SubscriptionUpdated {
            subscription_id: text("id")?,
            cancel_at_period_end: object["cancel_at_period_end"].as_bool() == Some(true),
        },
        "customer.subscription.deleted" => PaymentEvent::SubscriptionEnded {
            subscription_id: text("id")?,
        },
        // localstripe's and Stripe's older name for invoice.paid, which is
        // sent beside it.
        "invoice.payment_succeeded"
        | "invoice.created"
        | "invoice.finalized"
        | "customer.subscription.created" => PaymentEvent::Acknowledged,
        k if k.starts_with("transfer.") => PaymentEvent::Acknowledged,
        _ => PaymentEvent::Ignored,
    };
    Ok(StripeEvent { id, kind, event })
}

/// An id that Stripe sends either as a string or as the expanded object.
fn id_or_object(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .or_else(|| v["id"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The subscription an invoice bills: `subscription` (older API versions)
/// or `parent.subscription_details.subscription` (newer ones).
fn invoice_subscription(invoice: &serde_json::Value) -> Option<String> {
    id_or_object(&invoice["subscription"])
        .or_else(|| id_or_object(&invoice["parent"]["subscription_details"]["subscription"]))
}

/// The service credit an invoice took off: its lines of our credit items.
fn credit_lines(invoice: &serde_json::Value) -> i64 {
    invoice["lines"]["data"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter(|l| l["metadata"]["guildhall_service_credit"].as_str().is_some())
                .filter_map(|l| l["amount"].as_i64())
                .filter(|a| *a < 0)
                .map(|a| -a)
                .sum()
        })
        .unwrap_or(0)
}

/// Our subscription id, from the metadata the subscription was given
/// (copied onto its invoices' `parent.subscription_details.metadata`).
fn our_subscription(invoice: &serde_json::Value) -> Option<i64> {
    invoice["parent"]["subscription_details"]["metadata"]["subscription_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// Why a delivery was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    Missing,
    /// No `t=` or no `v1=` in it.
    #[error("malformed Stripe-Signature header")]
    Malformed,
    /// Outside the tolerance.
    #[error("timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches.
    #[error("no matching v1 signature")]
    Mismatch,
}

/// Default tolerance, seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// The `v1` signature of `body` at `timestamp` with `secret`, as hex.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a delivery: header, timestamp tolerance, any `v1` matching
/// (compared in constant time).
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_owned()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    for candidate in candidates {
        let Ok(bytes) = hex::decode(&candidate) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return Err(SignatureError::Mismatch);
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_refunds_disputes_and_refuses_what_lacks_a_field() {
        let refund = br#"{"id":"evt_1","type":"charge.refunded","data":{"object":{"payment_intent":"pi_1","amount_refunded":100,"refunds":{"data":[{"id":"re_1"}]}}}}"#;
        assert_eq!(
            parse_event(refund).unwrap().event,
            PaymentEvent::Refunded {
                payment_id: "pi_1".into(),
                total_refunded: 100,
                refund_id: Some("re_1".into())
            }
        );
        let lost = br#"{"id":"evt_2","type":"charge.dispute.closed","data":{"object":{"payment_intent":"pi_1","amount":700,"status":"lost"}}}"#;
        assert_eq!(
            parse_event(lost).unwrap().event,
            PaymentEvent::DisputeClosed {
                payment_id: "pi_1".into(),
                amount: 700,
                won: false
            }
        );
        let no_amount = br#"{"id":"evt_3","type":"charge.refunded","data":{"object":{"payment_intent":"pi_1"}}}"#;
        assert_eq!(
            parse_event(no_amount),
            Err(ParseError::Missing("amount_refunded"))
        );
        assert_eq!(parse_event(b"{"), Err(ParseError::NotJson));
        assert_eq!(
            parse_event(br#"{"type":"x"}"#),
            Err(ParseError::Missing("id"))
        );
        let paid = br#"{"id":"evt_5","type":"invoice.paid","data":{"object":{"id":"in_1","parent":{"subscription_details":{"subscription":"sub_1"}},"payment_intent":{"id":"pi_9"},"amount_paid":4900}}}"#;
        assert_eq!(
            parse_event(paid).unwrap().event,
            PaymentEvent::InvoicePaid {
                invoice_id: "in_1".into(),
                subscription_id: "sub_1".into(),
                our_id: None,
                payment_id: Some("pi_9".into()),
                amount_paid: 4900,
                credit_lines: 0
            }
        );
        let one_off = br#"{"id":"evt_6","type":"invoice.paid","data":{"object":{"id":"in_2","amount_paid":100}}}"#;
        assert_eq!(parse_event(one_off).unwrap().event, PaymentEvent::Ignored);
        let other = br#"{"id":"evt_4","type":"customer.created","data":{"object":{}}}"#;
        assert_eq!(parse_event(other).unwrap().event, PaymentEvent::Ignored);
    }

    #[test]
    fn accepts_any_matching_v1_and_rejects_the_rest() {
        let secret = b"whsec_test";
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(secret, 1_700_000_000, body);
        let ok = format!("t=1700000000,v1={},v1={good},v0=deadbeef", "0".repeat(64));
        assert_eq!(verify(secret, Some(&ok), body, 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify(secret, Some(&ok), body, 1_700_000_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(secret, Some(&ok), b"{}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&ok), body, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, None, body, 1_700_000_000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(secret, Some("v1=abc"), body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
        let v0_only = format!("t=1700000000,v0={good}");
        assert_eq!(
            verify(secret, Some(&v0_only), body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
    }
}
