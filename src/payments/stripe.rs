//! The Stripe gateway, through async-stripe.
//!
//! * **Funding**: a PaymentIntent per bounty or accepted bid, its metadata
//!   naming the ticket and the bounty or bid. It is created unconfirmed; the
//!   payer confirms it in the browser with the returned client secret, and
//!   the `payment_intent.succeeded` webhook books the money into escrow.
//! * **Payout accounts**: Connect Express accounts (transfers capability)
//!   and account-onboarding links; `account.updated` webhooks and
//!   [`PaymentGateway::payout_account_ready`] say when one can be paid.
//! * **Payouts**: Transfers with `transfer_group` set by the caller.
//! * **Refunds**: against the PaymentIntent.
//! * **Subscriptions**: Stripe Billing (customers, products, prices,
//!   coupons, subscriptions and schedules), in `stripe_billing.rs`.
//!
//! Every mutating call carries the caller's idempotency key, so a retried
//! call after a crash or a lost response returns the first result instead of
//! moving money twice. The [`PaymentGateway`] trait is synchronous (it runs
//! on blocking threads, never on the HTTP workers); each call runs on the
//! gateway's own small Tokio runtime and the caller waits for its answer.

use super::{Payment, PaymentGateway, PaymentRequest, PaymentStatus};
use anyhow::Context as _;
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr as _;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest as _};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesTransfers,
    CreateAccountType, RetrieveAccount,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::CreateTransfer;
use stripe_core::payment_intent::CreatePaymentIntent;
use stripe_core::refund::CreateRefund;
use stripe_shared::{AccountCapabilitiesStatus, PaymentIntentStatus};
use stripe_types::Currency;

pub use crate::config::StripeSettings;

/// Stripe behind [`PaymentGateway`].
pub struct StripeGateway {
    client: stripe::Client,
    runtime: Option<tokio::runtime::Runtime>,
    public_url: String,
    test_money: bool,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("public_url", &self.public_url)
            .field("test_money", &self.test_money)
            .finish_non_exhaustive()
    }
}

impl Drop for StripeGateway {
    fn drop(&mut self) {
        // Never blocks, so the gateway may be dropped anywhere (even on an
        // async worker at shutdown).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A Stripe error as one line, without anything secret.
pub(super) fn describe_error(e: StripeError) -> anyhow::Error {
    match e {
        StripeError::Stripe(err, status) => anyhow::anyhow!(
            "stripe answered {status}: {} ({})",
            err.message.as_deref().unwrap_or("no message"),
            err.code
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| "no code".to_owned())
        ),
        other => anyhow::anyhow!("stripe: {other}"),
    }
}

pub(super) fn idempotent(key: &str) -> anyhow::Result<RequestStrategy> {
    Ok(RequestStrategy::Idempotent(
        IdempotencyKey::new(key).map_err(|e| anyhow::anyhow!("idempotency key {key:?}: {e}"))?,
    ))
}

pub(super) fn currency(code: &str) -> Currency {
    // Infallible: an unknown code becomes `Currency::Unknown` and Stripe
    // rejects it with a clear message.
    match Currency::from_str(&code.to_ascii_lowercase()) {
        Ok(c) => c,
        Err(never) => match never {},
    }
}

impl StripeGateway {
    /// A gateway for these settings. Builds no connection yet.
    pub fn new(settings: &StripeSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.secret_key.starts_with("sk_") || settings.secret_key.starts_with("rk_"),
            "the Stripe secret key must start with sk_ or rk_"
        );
        let mut base = settings.api_base.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stripe")
            .enable_all()
            .build()
            .context("start the Stripe runtime")?;
        // The client must be built inside the runtime that drives it.
        let client = {
            let _guard = runtime.enter();
            stripe::ClientBuilder::new(settings.secret_key.clone())
                .url(base)
                .timeout(settings.timeout)
                .build()
                .map_err(describe_error)?
        };
        Ok(StripeGateway {
            client,
            runtime: Some(runtime),
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            test_money: settings.secret_key.contains("_test_"),
        })
    }

    /// Runs one Stripe call on the gateway's runtime and waits for it. Safe
    /// from any thread (it never calls `block_on`).
    fn run<T, F>(&self, call: impl FnOnce(stripe::Client) -> F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StripeError>> + Send + 'static,
    {
        self.run_raw(call).map_err(describe_error)
    }

    /// [`Self::run`] with Stripe's own error.
    pub(super) fn run_raw<T, F>(
        &self,
        call: impl FnOnce(stripe::Client) -> F,
    ) -> Result<T, StripeError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StripeError>> + Send + 'static,
    {
        let stopped = || StripeError::ClientError("the Stripe runtime stopped".into());
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = call(self.client.clone());
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| stopped())?
    }
}

impl PaymentGateway for StripeGateway {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn test_money(&self) -> bool {
        self.test_money
    }

    fn create_payment(&self, req: &PaymentRequest) -> anyhow::Result<Payment> {
        anyhow::ensure!(req.amount > 0, "amount must be positive");
        let metadata: HashMap<String, String> = req.metadata.iter().cloned().collect();
        let request = CreatePaymentIntent::new(req.amount, currency(&req.currency))
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&req.idempotency_key)?);
        let pi = self.run(move |client| async move { request.send(&client).await })?;
        let status = match pi.status {
            PaymentIntentStatus::Succeeded => PaymentStatus::Succeeded,
            PaymentIntentStatus::Processing | PaymentIntentStatus::RequiresCapture => {
                PaymentStatus::Processing
            }
            PaymentIntentStatus::Canceled => PaymentStatus::Failed,
            _ => PaymentStatus::RequiresAction,
        };
        Ok(Payment {
            id: pi.id.as_str().to_owned(),
            status,
            client_secret: pi.client_secret,
        })
    }

    fn refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        idempotency_key: &str,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(amount.is_none_or(|a| a > 0), "amount must be positive");
        let mut request = CreateRefund::new().payment_intent(payment_id);
        if let Some(amount) = amount {
            request = request.amount(amount);
        }
        let request = request
            .customize()
            .request_strategy(idempotent(idempotency_key)?);
        let refund = self.run(move |client| async move { request.send(&client).await })?;
        Ok(refund.id.as_str().to_owned())
    }

    fn bills_subscriptions(&self) -> bool {
        true
    }

    fn start_subscription(
        &self,
        req: &super::BillingRequest,
    ) -> anyhow::Result<super::BillingStart> {
        self.start_billing(req)
    }

    fn end_subscription(&self, subscription: &str, at_period_end: bool) -> anyhow::Result<()> {
        self.end_billing(subscription, at_period_end)
    }

    fn resume_subscription(&self, subscription: &str) -> anyhow::Result<super::BillingStart> {
        self.resume_billing(subscription)
    }

    fn invoice_payment(&self, invoice: &str) -> anyhow::Result<Option<String>> {
        self.invoice_payment_of(invoice)
    }

    fn set_subscription_discount(
        &self,
        subscription: &str,
        pct: Option<i32>,
    ) -> anyhow::Result<()> {
        self.set_discount(subscription, pct)
    }

    fn credit_subscription(
        &self,
        customer: &str,
        subscription: &str,
        amount: i64,
        currency: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<()> {
        self.credit_next_invoice(customer, subscription, amount, currency, idempotency_key)
    }

    fn create_payout_account(&self, idempotency_key: &str) -> anyhow::Result<String> {
        let mut capabilities = CreateAccountCapabilities::new();
        capabilities.transfers = Some(CreateAccountCapabilitiesTransfers {
            requested: Some(true),
        });
        let request = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .capabilities(capabilities)
            .metadata(HashMap::from([(
                "guildhall_payee".to_owned(),
                idempotency_key.to_owned(),
            )]))
            .customize()
            .request_strategy(idempotent(idempotency_key)?);
        let account = self.run(move |client| async move { request.send(&client).await })?;
        Ok(account.id.as_str().to_owned())
    }

    fn onboarding_link(&self, account: &str) -> anyhow::Result<String> {
        let request = CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(format!("{}/payouts/refresh", self.public_url))
            .return_url(format!("{}/payouts/return", self.public_url));
        let link = self.run(move |client| async move { request.send(&client).await })?;
        Ok(link.url)
    }

    fn payout_account_ready(&self, account: &str) -> anyhow::Result<bool> {
        let request = RetrieveAccount::new(stripe::AccountId::from(account.to_owned()));
        let account = self.run(move |client| async move { request.send(&client).await })?;
        let transfers_active = account
            .capabilities
            .and_then(|c| c.transfers)
            .is_some_and(|s| s == AccountCapabilitiesStatus::Active);
        Ok(account.payouts_enabled == Some(true) && transfers_active)
    }

    fn transfer(
        &self,
        amount: i64,
        currency_code: &str,
        destination: &str,
        transfer_group: &str,
        idempotency_key: &str,
    ) -> anyhow::Result<String> {
        anyhow::ensure!(amount > 0, "amount must be positive");
        let request = CreateTransfer::new(currency(currency_code), destination)
            .amount(amount)
            .transfer_group(transfer_group)
            .customize()
            .request_strategy(idempotent(idempotency_key)?);
        let transfer = self.run(move |client| async move { request.send(&client).await })?;
        Ok(transfer.id.as_str().to_owned())
    }
}
