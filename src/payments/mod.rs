//! Payment gateways. The ledger mirrors every gateway's money in its own
//! clearing account; a gateway only moves real (or test) money.
//!
//! * [`Sandbox`] — the embedded default: settles at once, every amount is
//!   test money, ids derive from the idempotency key so a retry yields the
//!   same payment.
//! * [`stripe::StripeGateway`] — PaymentIntents, Connect Express accounts,
//!   Transfers and Refunds through async-stripe.

pub mod stripe;
mod stripe_billing;
pub mod stripe_webhook;

use sha2::{Digest, Sha256};

/// Something a payment gateway reports, in the domain's terms: each
/// gateway's adapter (e.g. [`stripe_webhook::parse_event`]) turns its own
/// format into this, so the domain never reads a gateway's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// The payment was collected.
    Succeeded {
        /// Gateway's payment id.
        payment_id: String,
    },
    /// The payment was refused.
    Failed {
        /// Gateway's payment id.
        payment_id: String,
    },
    /// The payment's refunds now add up to `total_refunded` (cumulative, as
    /// gateways report it; a partial refund is less than the payment).
    Refunded {
        /// Gateway's payment id.
        payment_id: String,
        /// Everything refunded of the payment so far, minor units.
        total_refunded: i64,
        /// The newest refund's id, when reported.
        refund_id: Option<String>,
    },
    /// The payer disputed `amount` of the payment.
    DisputeOpened {
        /// Gateway's payment id.
        payment_id: String,
        /// Disputed amount, minor units.
        amount: i64,
    },
    /// A dispute ended: won (the money stays) or lost (`amount` went back
    /// to the payer).
    DisputeClosed {
        /// Gateway's payment id.
        payment_id: String,
        /// Disputed amount, minor units.
        amount: i64,
        /// Whether we won.
        won: bool,
    },
    /// A payout account's readiness changed.
    PayoutAccountUpdated {
        /// Gateway's account id.
        account_id: String,
        /// Whether payouts can be sent.
        ready: bool,
    },
    /// The gateway billed and collected an invoice of a subscription it
    /// bills (`invoice.paid`).
    InvoicePaid {
        /// Gateway's invoice id.
        invoice_id: String,
        /// Gateway's subscription id.
        subscription_id: String,
        /// Our subscription, from the metadata we gave it.
        our_id: Option<i64>,
        /// The payment that paid it when the event names it (the API
        /// version in use does not: the gateway is asked).
        payment_id: Option<String>,
        /// Collected, minor units.
        amount_paid: i64,
        /// Service credit it took off: the sum of its lines of our credit
        /// items (metadata `guildhall_service_credit`), minor units.
        credit_lines: i64,
    },
    /// The gateway could not collect an invoice of a subscription it bills.
    InvoicePaymentFailed {
        /// Gateway's invoice id.
        invoice_id: String,
        /// Gateway's subscription id.
        subscription_id: String,
        /// Our subscription, from the metadata we gave it.
        our_id: Option<i64>,
    },
    /// A subscription the gateway bills changed.
    SubscriptionUpdated {
        /// Gateway's subscription id.
        subscription_id: String,
        /// Whether it ends with its current period.
        cancel_at_period_end: bool,
    },
    /// A subscription the gateway bills ended.
    SubscriptionEnded {
        /// Gateway's subscription id.
        subscription_id: String,
    },
    /// Known, recorded, nothing to do (e.g. transfer notices).
    Acknowledged,
    /// Not an event we act on.
    Ignored,
}

/// A request to collect money from a payer.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// Shown to the payer.
    pub description: String,
    /// Names what the money is for (ticket, bounty or bid).
    pub metadata: Vec<(String, String)>,
    /// The same key returns the same payment.
    pub idempotency_key: String,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Money collected.
    Succeeded,
    /// The payer must act (card authentication) using the client secret.
    RequiresAction,
    /// Collected later; a webhook says how it ended.
    Processing,
    /// Refused.
    Failed,
}

/// A payment as the gateway reports it.
#[derive(Debug, Clone)]
pub struct Payment {
    /// Gateway's id.
    pub id: String,
    /// Status.
    pub status: PaymentStatus,
    /// For the payer's browser, when they must act.
    pub client_secret: Option<String>,
}

/// A subscription for the gateway to bill by itself, period after period
/// (Stripe Billing): its first invoice waits for the payer like a
/// [`Payment`], its renewals are reported by webhooks.
#[derive(Debug, Clone)]
pub struct BillingRequest {
    /// The payer's customer at the gateway, when known.
    pub customer: Option<String>,
    /// The payer's address, for a new customer.
    pub email: String,
    /// Stable key of the payer (e.g. `user:7`), for a new customer.
    pub payer_key: String,
    /// The gateway's product id for the plan.
    pub product_id: String,
    /// The plan's name.
    pub product_name: String,
    /// Charged per term before the discount, minor units.
    pub amount: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// Months billed at a time.
    pub term_months: i32,
    /// Percent off every term (a coupon), 0 for none.
    pub discount_pct: i32,
    /// Committed terms: a subscription schedule of one term, then it goes on
    /// as a plain subscription (enterprise plans).
    pub schedule: bool,
    /// Names what the subscription is for.
    pub metadata: Vec<(String, String)>,
    /// The same key returns the same subscription.
    pub idempotency_key: String,
}

/// A subscription the gateway bills.
#[derive(Debug, Clone)]
pub struct BillingStart {
    /// The payer's customer.
    pub customer: String,
    /// The gateway's subscription id.
    pub subscription: String,
    /// Its first invoice.
    pub invoice: String,
    /// What the first invoice asks for (after the discount), minor units.
    pub amount_due: i64,
    /// The payment of the first invoice.
    pub payment: Payment,
}

/// A way to move money in and out.
pub trait PaymentGateway: Send + Sync {
    /// Stable name, also the clearing account's owner.
    fn name(&self) -> &'static str;
    /// Whether amounts through it are test money.
    fn test_money(&self) -> bool;
    /// Collects money from the payer.
    fn create_payment(&self, req: &PaymentRequest) -> anyhow::Result<Payment>;
    /// Returns `amount` of a payment to the payer, or with `None` whatever
    /// of it was not refunded yet (so a refund made elsewhere meanwhile is
    /// never asked for twice); returns the refund's id.
    fn refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        idempotency_key: &str,
    ) -> anyhow::Result<String>;
    /// Whether the gateway bills subscriptions by itself ([`Self::start_subscription`]).
    fn bills_subscriptions(&self) -> bool {
        false
    }
    /// Starts a subscription the gateway bills by itself.
    fn start_subscription(&self, _req: &BillingRequest) -> anyhow::Result<BillingStart> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// A subscription the gateway bills, with its first invoice's payment
    /// again (for a retried subscribe).
    fn resume_subscription(&self, _subscription: &str) -> anyhow::Result<BillingStart> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// Puts `pct` percent off (a coupon) on a subscription the gateway
    /// bills, or with `None` takes its discount off, for its next invoices.
    fn set_subscription_discount(
        &self,
        _subscription: &str,
        _pct: Option<i32>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// Takes `amount` off the next invoice of a subscription the gateway
    /// bills (a negative invoice item); the same key gives it once.
    fn credit_subscription(
        &self,
        _customer: &str,
        _subscription: &str,
        _amount: i64,
        _currency: &str,
        _idempotency_key: &str,
    ) -> anyhow::Result<()> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// The payment that paid an invoice of a subscription the gateway bills.
    fn invoice_payment(&self, _invoice: &str) -> anyhow::Result<Option<String>> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// Ends a subscription the gateway bills: at the end of its paid period,
    /// or now.
    fn end_subscription(&self, _subscription: &str, _at_period_end: bool) -> anyhow::Result<()> {
        anyhow::bail!("{} does not bill subscriptions", self.name())
    }
    /// Creates (or, for the same key, finds) a connected payout account.
    fn create_payout_account(&self, idempotency_key: &str) -> anyhow::Result<String>;
    /// A link where the payee completes onboarding of `account`.
    fn onboarding_link(&self, account: &str) -> anyhow::Result<String>;
    /// Whether `account` can receive payouts.
    fn payout_account_ready(&self, account: &str) -> anyhow::Result<bool>;
    /// Moves `amount` to `destination`; the same key never pays twice.
    /// Returns the gateway's transfer id.
    fn transfer(
        &self,
        amount: i64,
        currency: &str,
        destination: &str,
        transfer_group: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<String>;
}

/// The gateway the configuration selects.
pub fn from_config(
    config: &crate::config::Config,
) -> anyhow::Result<std::sync::Arc<dyn PaymentGateway>> {
    Ok(match &config.gateway {
        crate::config::GatewayChoice::Sandbox => std::sync::Arc::new(Sandbox),
        crate::config::GatewayChoice::Stripe(settings) => {
            std::sync::Arc::new(stripe::StripeGateway::new(settings)?)
        }
    })
}

/// The embedded sandbox: settles at once, test money only.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sandbox;

fn derived_id(prefix: &str, key: &str) -> String {
    format!(
        "{prefix}_{}",
        &hex::encode(Sha256::digest(key.as_bytes()))[..24]
    )
}

impl PaymentGateway for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }
    fn test_money(&self) -> bool {
        true
    }
    fn create_payment(&self, req: &PaymentRequest) -> anyhow::Result<Payment> {
        anyhow::ensure!(req.amount > 0, "amount must be positive");
        Ok(Payment {
            id: derived_id("sandbox_pi", &req.idempotency_key),
            status: PaymentStatus::Succeeded,
            client_secret: None,
        })
    }
    fn refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        idempotency_key: &str,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(amount.is_none_or(|a| a > 0), "amount must be positive");
        Ok(derived_id(
            "sandbox_re",
            &format!("{payment_id}:{idempotency_key}"),
        ))
    }
    fn create_payout_account(&self, idempotency_key: &str) -> anyhow::Result<String> {
        Ok(derived_id("sandbox_acct", idempotency_key))
    }
    fn onboarding_link(&self, account: &str) -> anyhow::Result<String> {
        Ok(format!(
            "https://sandbox.guildhall.invalid/onboarding/{account}"
        ))
    }
    fn payout_account_ready(&self, _account: &str) -> anyhow::Result<bool> {
        Ok(true)
    }
    fn transfer(
        &self,
        amount: i64,
        _currency: &str,
        destination: &str,
        _transfer_group: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(amount > 0, "amount must be positive");
        Ok(derived_id(
            "sandbox_tr",
            &format!("{destination}:{idempotency_key}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_is_idempotent_and_settles_at_once() {
        let req = PaymentRequest {
            amount: 100,
            currency: "usd".into(),
            description: "x".into(),
            metadata: vec![],
            idempotency_key: "bounty:1".into(),
        };
        let a = Sandbox.create_payment(&req).unwrap();
        let b = Sandbox.create_payment(&req).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.status, PaymentStatus::Succeeded);
        assert!(Sandbox.test_money());
        assert!(Sandbox
            .create_payment(&PaymentRequest { amount: 0, ..req })
            .is_err());
    }
}
