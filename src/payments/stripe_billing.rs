//! Stripe Billing for [`StripeGateway`]: a customer per payer, a product
//! per plan, a recurring price per (amount, term), a coupon per FLOSS
//! discount, and a subscription (`payment_behavior=default_incomplete`:
//! its first invoice's PaymentIntent waits for the payer, and the card that
//! pays it is saved for the renewals) — for a committed term also a
//! subscription schedule made from it, whose one phase is the first term
//! and which then releases it as a plain subscription.
//!
//! Requests are async-stripe's typed parameters; answers are read as plain
//! JSON for the few fields the domain needs, so an answer carrying fields
//! the typed model lacks (or lacking some it expects) still reads.

use super::stripe::{describe_error, idempotent, StripeGateway};
use super::{BillingRequest, BillingStart, Payment, PaymentStatus};
use anyhow::Context as _;
use std::collections::HashMap;
use stripe::StripeRequest as _;
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionPaymentBehavior, CreateSubscriptionPaymentSettings,
    CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod, DiscountsDataParam,
    RetrieveSubscription, UpdateSubscription,
};
use stripe_billing::subscription_schedule::CreateSubscriptionSchedule;
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::CreateCustomer;
use stripe_product::coupon::CreateCoupon;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;
use stripe_shared::CouponDuration;

/// The first invoice's client secret and payments, which the API version
/// async-stripe pins shows only when expanded (an invoice there has no
/// `payment_intent` field).
fn expand_first_payment() -> Vec<String> {
    vec![
        "latest_invoice.confirmation_secret".to_owned(),
        "latest_invoice.payments".to_owned(),
    ]
}

impl StripeGateway {
    /// Sends `request` (with `key` as its idempotency key) and reads the
    /// answer as JSON.
    fn call(
        &self,
        request: RequestBuilder,
        key: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request = request.customize::<miniserde::json::Value>();
        if let Some(key) = key {
            request = request.request_strategy(idempotent(key)?);
        }
        let answer = self
            .run_raw(move |client| async move { request.send(&client).await })
            .map_err(describe_error)?;
        serde_json::from_str(&miniserde::json::to_string(&answer))
            .context("reading Stripe's answer")
    }

    /// Whether `path` names something that exists (a 404 says no).
    fn exists(&self, path: String) -> anyhow::Result<bool> {
        let request =
            RequestBuilder::new(StripeMethod::Get, path).customize::<miniserde::json::Value>();
        match self.run_raw(move |client| async move { request.send(&client).await }) {
            Ok(_) => Ok(true),
            Err(stripe::StripeError::Stripe(_, 404)) => Ok(false),
            Err(e) => Err(describe_error(e)),
        }
    }

    fn customer(&self, req: &BillingRequest) -> anyhow::Result<String> {
        if let Some(c) = &req.customer {
            return Ok(c.clone());
        }
        let create = CreateCustomer::new()
            .email(req.email.clone())
            .metadata(HashMap::from([(
                "guildhall_payer".to_owned(),
                req.payer_key.clone(),
            )]));
        let v = self.call(create.build(), Some(&format!("customer:{}", req.payer_key)))?;
        text(&v, "id")
    }

    fn product(&self, req: &BillingRequest) -> anyhow::Result<()> {
        if self.exists(format!("/products/{}", req.product_id))? {
            return Ok(());
        }
        let create = CreateProduct::new(req.product_name.clone()).id(req.product_id.clone());
        self.call(create.build(), Some(&format!("product:{}", req.product_id)))?;
        Ok(())
    }

    fn price(&self, req: &BillingRequest) -> anyhow::Result<String> {
        let mut recurring = CreatePriceRecurring::new(CreatePriceRecurringInterval::Month);
        recurring.interval_count = Some(u64::try_from(req.term_months.max(1)).unwrap_or(1));
        let create = CreatePrice::new(super::stripe::currency(&req.currency))
            .product(req.product_id.clone())
            .unit_amount(req.amount)
            .recurring(recurring);
        let key = format!(
            "price:{}:{}:{}:{}",
            req.product_id, req.amount, req.term_months, req.currency
        );
        let v = self.call(create.build(), Some(&key))?;
        text(&v, "id")
    }

    fn coupon(&self, pct: i32) -> anyhow::Result<String> {
        let id = format!("guildhall_floss_{pct}");
        if self.exists(format!("/coupons/{id}"))? {
            return Ok(id);
        }
        let create = CreateCoupon::new()
            .id(id.clone())
            .percent_off(f64::from(pct))
            .duration(CouponDuration::Forever);
        self.call(create.build(), Some(&format!("coupon:{id}")))?;
        Ok(id)
    }

    pub(super) fn start_billing(&self, req: &BillingRequest) -> anyhow::Result<BillingStart> {
        anyhow::ensure!(req.amount > 0, "amount must be positive");
        let customer = self.customer(req)?;
        self.product(req)?;
        let price = self.price(req)?;
        let coupon = match req.discount_pct {
            0 => None,
            pct => Some(self.coupon(pct)?),
        };
        let metadata: HashMap<String, String> = req.metadata.iter().cloned().collect();
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price);
        item.quantity = Some(1);
        let mut settings = CreateSubscriptionPaymentSettings::new();
        // The card that pays the first invoice pays the renewals.
        settings.save_default_payment_method =
            Some(CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod::OnSubscription);
        let mut create = CreateSubscription::new()
            .customer(customer.clone())
            .items(vec![item])
            .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
            .payment_settings(settings)
            .metadata(metadata)
            .expand(expand_first_payment());
        if let Some(c) = &coupon {
            create = create.discounts(vec![DiscountsDataParam {
                coupon: Some(c.clone()),
                discount: None,
                promotion_code: None,
            }]);
        }
        let subscription = self.call(create.build(), Some(&req.idempotency_key))?;
        let started = billing_start(&subscription, customer)?;
        if req.schedule {
            // The committed term: a schedule made from the subscription,
            // whose one phase is its first term and which then releases it
            // to go on as a plain subscription.
            let schedule =
                CreateSubscriptionSchedule::new().from_subscription(started.subscription.clone());
            self.call(
                schedule.build(),
                Some(&format!("{}:schedule", req.idempotency_key)),
            )?;
        }
        Ok(started)
    }

    pub(super) fn resume_billing(&self, subscription: &str) -> anyhow::Result<BillingStart> {
        let retrieve = RetrieveSubscription::new(subscription).expand(expand_first_payment());
        let v = self.call(retrieve.build(), None)?;
        let customer = text(&v, "customer")?;
        billing_start(&v, customer)
    }

    pub(super) fn invoice_payment_of(&self, invoice: &str) -> anyhow::Result<Option<String>> {
        #[derive(serde::Serialize)]
        struct Expand {
            expand: [&'static str; 1],
        }
        let request =
            RequestBuilder::new(StripeMethod::Get, format!("/invoices/{invoice}")).query(&Expand {
                expand: ["payments"],
            });
        let v = self.call(request, None)?;
        Ok(paid_payment(&v["payments"]))
    }

    pub(super) fn set_discount(&self, subscription: &str, pct: Option<i32>) -> anyhow::Result<()> {
        let request = match pct {
            Some(pct) => {
                let coupon = self.coupon(pct)?;
                UpdateSubscription::new(subscription)
                    .discounts(vec![DiscountsDataParam {
                        coupon: Some(coupon),
                        discount: None,
                        promotion_code: None,
                    }])
                    .build()
            }
            None => {
                // An empty `discounts` takes them all off.
                #[derive(serde::Serialize)]
                struct Clear {
                    discounts: &'static str,
                }
                RequestBuilder::new(StripeMethod::Post, format!("/subscriptions/{subscription}"))
                    .form(&Clear { discounts: "" })
            }
        };
        self.call(request, None)?;
        Ok(())
    }

    pub(super) fn credit_next_invoice(
        &self,
        customer: &str,
        subscription: &str,
        amount: i64,
        currency: &str,
        key: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(amount > 0, "amount must be positive");
        #[derive(serde::Serialize)]
        struct Meta {
            guildhall_service_credit: &'static str,
        }
        #[derive(serde::Serialize)]
        struct Item<'a> {
            customer: &'a str,
            subscription: &'a str,
            amount: i64,
            currency: String,
            description: &'static str,
            metadata: Meta,
        }
        let request = RequestBuilder::new(StripeMethod::Post, "/invoiceitems").form(&Item {
            customer,
            subscription,
            amount: -amount,
            currency: currency.to_ascii_lowercase(),
            description: "Service credit: a guaranteed response time was missed",
            // Marks its line on the invoice, which says what was taken off.
            metadata: Meta {
                guildhall_service_credit: "1",
            },
        });
        self.call(request, Some(key))?;
        Ok(())
    }

    pub(super) fn end_billing(
        &self,
        subscription: &str,
        at_period_end: bool,
    ) -> anyhow::Result<()> {
        let request = if at_period_end {
            UpdateSubscription::new(subscription)
                .cancel_at_period_end(true)
                .build()
        } else {
            CancelSubscription::new(subscription).build()
        };
        match self.call(request, None) {
            Ok(_) => Ok(()),
            // Ended at Stripe already (e.g. its own retries gave up).
            Err(e) if e.to_string().contains("canceled") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A subscription's first invoice as the payer's payment.
fn billing_start(
    subscription: &serde_json::Value,
    customer: String,
) -> anyhow::Result<BillingStart> {
    let invoice = &subscription["latest_invoice"];
    let secret = invoice["confirmation_secret"]["client_secret"]
        .as_str()
        .map(str::to_owned);
    let payment = invoice["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            // The client secret of a PaymentIntent starts with its id.
            secret
                .as_deref()
                .and_then(|s| s.split_once("_secret_"))
                .map(|(id, _)| id.to_owned())
        })
        .context("Stripe's answer names no payment of the first invoice")?;
    let status = match invoice["status"].as_str() {
        Some("paid") => PaymentStatus::Succeeded,
        Some("void" | "uncollectible") => PaymentStatus::Failed,
        _ => PaymentStatus::RequiresAction,
    };
    Ok(BillingStart {
        customer,
        subscription: text(subscription, "id")?,
        invoice: text(invoice, "id")?,
        amount_due: invoice["amount_due"]
            .as_i64()
            .context("Stripe's answer has no amount_due")?,
        payment: Payment {
            id: payment,
            status,
            client_secret: secret,
        },
    })
}

/// The PaymentIntent that paid an invoice, from its expanded `payments`.
fn paid_payment(payments: &serde_json::Value) -> Option<String> {
    payments["data"].as_array()?.iter().find_map(|p| {
        (p["status"].as_str() == Some("paid"))
            .then(|| p["payment"]["payment_intent"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// A non-empty string field of a Stripe object.
fn text(v: &serde_json::Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .with_context(|| format!("Stripe's answer has no {field}"))
}
