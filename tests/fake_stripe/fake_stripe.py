"""A local Stripe for Guildhall's tests.

localstripe (PyPI) serves PaymentIntents, charges, refunds and signed
webhooks. This wrapper runs it and adds what Guildhall's Stripe gateway also
needs, shaped by the Stripe fixtures in tests/fixtures/stripe/fixtures3.json:

* Connect: POST/GET /v1/accounts, POST /v1/account_links, POST /v1/transfers,
  with Stripe's Idempotency-Key semantics (a retried key replays the first
  response; the same key with other parameters is an idempotency_error).
* The fields real Stripe always returns on a PaymentIntent that localstripe
  leaves out (amount_capturable, amount_received, confirmation_method,
  payment_method_types), so a typed client can read its responses.
* Stripe.js for the web app's card form at /js.stripe.com/v3/: the calls
  Guildhall's page makes (Stripe(pk).elements().create("card").mount(),
  confirmCardPayment(client_secret, {payment_method: {card}})). Its card
  element is plain labelled inputs; confirming does what Stripe does on
  its side — checks the publishable key and the client secret, creates the
  card PaymentMethod, attaches it and confirms the PaymentIntent — through
  POST /_fake/stripe_js/confirm, so localstripe charges and sends the
  signed payment_intent.succeeded webhook as for any payment.
* Test controls under /_fake/: finish an account's onboarding (which sends a
  signed account.updated webhook), list the transfers made, and make the
  next transfer calls fail before or after they take effect.

Run: python3 fake_stripe.py --port N --fixtures path/to/fixtures3.json
"""

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import random
import socket
import string
import time

import aiohttp
from aiohttp import web

from localstripe import resources, webhooks
from localstripe import server as ls

# Every test runs its own fake from scratch; nothing is shared on disk.
resources.Store.dump_to_disk = lambda self: None

TEMPLATES = {}
ACCOUNTS = {}
TRANSFERS = []
IDEMPOTENT = {}
FAILURES = {"before": 0, "after": 0}


def new_id(prefix):
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(random.choice(alphabet) for _ in range(16))


def stripe_error(status, message, kind="invalid_request_error", code=None):
    err = {"type": kind, "message": message}
    if code:
        err["code"] = code
    return web.json_response({"error": err}, status=status)


async def form(request):
    return await ls.get_post_data(request) or {}


def idempotent(handler):
    """Stripe's idempotency: the first response for a key is replayed."""

    async def wrapped(request):
        key = request.headers.get("Idempotency-Key")
        data = await form(request)
        if key is not None:
            seen = IDEMPOTENT.get((request.path, key))
            if seen is not None:
                params, status, body = seen
                if params != data:
                    return stripe_error(
                        400,
                        "Keys for idempotent requests can only be used with "
                        "the same parameters they were first used with.",
                        kind="idempotency_error",
                    )
                return web.json_response(body, status=status)
        response = await handler(request, data)
        if key is not None and response.status < 500:
            IDEMPOTENT[(request.path, key)] = (
                data,
                response.status,
                json.loads(response.body),
            )
        return response

    return wrapped


@idempotent
async def create_account(request, data):
    account = copy.deepcopy(TEMPLATES["account"])
    account.update(
        id=new_id("acct_"),
        created=int(time.time()),
        type=data.get("type", "express"),
        country=data.get("country", "US"),
        email=data.get("email"),
        metadata=data.get("metadata") or {},
        charges_enabled=False,
        payouts_enabled=False,
        details_submitted=False,
    )
    requested = (data.get("capabilities") or {}).keys()
    account["capabilities"] = {c: "inactive" for c in requested}
    account["external_accounts"]["url"] = (
        "/v1/accounts/%s/external_accounts" % account["id"]
    )
    ACCOUNTS[account["id"]] = account
    return web.json_response(account)


async def retrieve_account(request):
    account = ACCOUNTS.get(request.match_info["id"])
    if account is None:
        return stripe_error(404, "No such account", code="resource_missing")
    return web.json_response(account)


async def create_account_link(request):
    data = await form(request)
    account = data.get("account")
    if account not in ACCOUNTS:
        return stripe_error(400, "No such account", code="resource_missing")
    for field in ("refresh_url", "return_url", "type"):
        if not data.get(field):
            return stripe_error(400, "Missing required param: " + field)
    now = int(time.time())
    link = copy.deepcopy(TEMPLATES["account_link"])
    host = request.host
    link.update(
        created=now,
        expires_at=now + 300,
        url="http://%s/_fake/onboarding/%s" % (host, account),
    )
    return web.json_response(link)


@idempotent
async def create_transfer(request, data):
    if FAILURES["before"] > 0:
        FAILURES["before"] -= 1
        return stripe_error(500, "injected failure before the transfer",
                            kind="api_error")
    try:
        amount = int(data.get("amount"))
        assert amount > 0
    except (TypeError, ValueError, AssertionError):
        return stripe_error(400, "Invalid positive integer: amount")
    destination = ACCOUNTS.get(data.get("destination"))
    if destination is None:
        return stripe_error(400, "No such destination account",
                            code="resource_missing")
    if destination["capabilities"].get("transfers") != "active":
        return stripe_error(
            400,
            "Your destination account needs to have at least one of the "
            "following capabilities enabled: transfers, crypto_transfers, "
            "legacy_payments",
            code="insufficient_capabilities_for_transfer",
        )
    transfer = copy.deepcopy(TEMPLATES["transfer"])
    transfer.update(
        id=new_id("tr_"),
        amount=amount,
        currency=data.get("currency", "usd"),
        destination=destination["id"],
        destination_payment=new_id("py_"),
        balance_transaction=new_id("txn_"),
        created=int(time.time()),
        metadata=data.get("metadata") or {},
        transfer_group=data.get("transfer_group"),
        description=data.get("description"),
    )
    transfer["reversals"]["url"] = "/v1/transfers/%s/reversals" % transfer["id"]
    TRANSFERS.append(transfer)
    if FAILURES["after"] > 0:
        # The transfer happened but the answer is lost: the caller must
        # retry with the same key and get this transfer back, not a new one.
        FAILURES["after"] -= 1
        IDEMPOTENT[(request.path, request.headers.get("Idempotency-Key"))] = (
            data, 200, transfer)
        return stripe_error(500, "injected failure after the transfer",
                            kind="api_error")
    return web.json_response(transfer)


async def send_event(event_type, obj):
    """Delivers an event to every webhook registered with localstripe,
    signed the way Stripe signs (t=…,v1=HMAC-SHA256 over "t.body")."""
    now = int(time.time())
    event = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now,
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }
    payload = json.dumps(event).encode("utf-8")
    for hook in webhooks._webhooks.values():
        if hook.events is not None and event_type not in hook.events:
            continue
        signature = hmac.new(hook.secret.encode("utf-8"),
                             b"%d.%s" % (now, payload),
                             hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": "t=%d,v1=%s" % (now, signature),
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(hook.url, data=payload,
                                    headers=headers) as r:
                await r.read()


async def complete_onboarding(request):
    account = ACCOUNTS.get(request.match_info["id"])
    if account is None:
        return stripe_error(404, "No such account", code="resource_missing")
    account.update(charges_enabled=True, payouts_enabled=True,
                   details_submitted=True)
    account["capabilities"] = {c: "active" for c in account["capabilities"]}
    account["requirements"]["currently_due"] = []
    account["requirements"]["disabled_reason"] = None
    await send_event("account.updated", account)
    return web.json_response(account)


async def list_transfers(request):
    return web.json_response({"data": TRANSFERS})


async def fail_transfers(request):
    data = await form(request)
    FAILURES["before"] = int(data.get("before", 0))
    FAILURES["after"] = int(data.get("after", 0))
    return web.json_response(FAILURES)


STRIPE_JS = r"""
// The local fake of Stripe.js (tests/fake_stripe/fake_stripe.py).
(function () {
  "use strict";
  var base = document.currentScript.src.replace(/\/js\.stripe\.com\/v3\/?$/, "");
  window.Stripe = function (key) {
    return {
      elements: function () {
        return {
          create: function () {
            var inputs = {};
            return {
              mount: function (where) {
                var root = typeof where === "string" ? document.querySelector(where) : where;
                [["number", "Card number"], ["exp_month", "Expiry month"],
                 ["exp_year", "Expiry year"], ["cvc", "CVC"]].forEach(function (f) {
                  var label = document.createElement("label");
                  var input = document.createElement("input");
                  input.id = "fake-card-" + f[0];
                  input.setAttribute("inputmode", "numeric");
                  label.htmlFor = input.id;
                  label.textContent = f[1];
                  root.appendChild(label);
                  root.appendChild(input);
                  inputs[f[0]] = input;
                });
              },
              value: function () {
                return {number: inputs.number.value, exp_month: inputs.exp_month.value,
                        exp_year: inputs.exp_year.value, cvc: inputs.cvc.value};
              }
            };
          }
        };
      },
      confirmCardPayment: function (secret, data) {
        // text/plain: a simple cross-origin request, no preflight.
        return fetch(base + "/_fake/stripe_js/confirm", {
          method: "POST",
          headers: {"content-type": "text/plain"},
          body: JSON.stringify({key: key, client_secret: secret,
                                card: data.payment_method.card.value()})
        }).then(function (r) { return r.json(); }).then(function (body) {
          return body.error ? {error: body.error} : {paymentIntent: body};
        });
      }
    };
  };
})();
"""


@web.middleware
async def stripe_js(request, handler):
    """Serves the fake Stripe.js in place of localstripe's, and its
    confirmation (authenticated by the publishable key, as on Stripe)."""
    if request.method == "GET" and request.path.rstrip("/") == "/js.stripe.com/v3":
        return web.Response(text=STRIPE_JS, content_type="text/javascript")
    if request.method == "POST" and request.path == "/_fake/stripe_js/confirm":
        return await stripe_js_confirm(request)
    return await handler(request)


async def stripe_js_confirm(request):
    """What Stripe does when Stripe.js confirms a card payment."""
    cors = {"Access-Control-Allow-Origin": request.headers.get("Origin", "*")}
    try:
        data = json.loads(await request.text())
        key, secret, card = data["key"], data["client_secret"], data["card"]
        assert isinstance(key, str) and key.startswith("pk_")
        pi_id = secret.split("_secret_")[0]
        pi = resources.PaymentIntent._api_retrieve(pi_id)
        if pi.client_secret != secret:
            return web.json_response(
                {"error": {"type": "invalid_request_error",
                           "message": "No such payment_intent"}},
                status=404, headers=cors)
        pm = resources.PaymentMethod._api_create(type="card", card={
            "number": str(card["number"]).replace(" ", ""),
            "exp_month": int(card["exp_month"]),
            "exp_year": int(card["exp_year"]),
            "cvc": str(card["cvc"]),
        })
        resources.PaymentIntent._api_update(pi_id, payment_method=pm.id)
        pi = resources.PaymentIntent._api_confirm(pi_id)
    except (KeyError, ValueError, TypeError, AssertionError) as e:
        return web.json_response(
            {"error": {"type": "card_error", "message": "Your card details are incomplete"}},
            status=400, headers=cors)
    except Exception as e:  # localstripe's UserError and friends
        return web.json_response(
            {"error": {"type": "card_error", "message": str(e)}},
            status=402, headers=cors)
    body = pi._export()
    if body.get("status") != "succeeded":
        return web.json_response(
            {"error": {"type": "card_error", "message": "Your card was declined",
                       "payment_intent": body}},
            status=402, headers=cors)
    return web.json_response(body, headers=cors)


PAYMENT_INTENT_DEFAULTS = {
    "amount_capturable": 0,
    "confirmation_method": "automatic",
    "payment_method_types": ["card"],
    "transfer_group": None,
    "description": None,
}


@web.middleware
async def complete_payment_intents(request, handler):
    """Adds the fields real Stripe always sends on a PaymentIntent."""
    response = await handler(request)
    if not request.path.startswith("/v1/payment_intents") or \
            response.status != 200:
        return response
    body = json.loads(response.body)
    for key, value in PAYMENT_INTENT_DEFAULTS.items():
        body.setdefault(key, copy.deepcopy(value))
    body.setdefault(
        "amount_received",
        body["amount"] if body.get("status") == "succeeded" else 0)
    return web.json_response(body)


# ---------------------------------------------------------------------------
# Billing: what Stripe Billing does at the API version async-stripe pins
# (2026-09) that localstripe (a Plans-era Stripe) lacks, built on
# localstripe's own customers, plans, subscriptions and invoices so that
# their payments and webhooks are localstripe's:
#
# * Prices (POST/GET /v1/prices): a recurring price is a localstripe plan
#   with the price's id; subscriptions name `items[][price]`.
# * Invoices as that API version has them: no `payment_intent` field;
#   `confirmation_secret` and `payments` only when expanded (also as
#   `latest_invoice.confirmation_secret` / `latest_invoice.payments`), and
#   `parent.subscription_details` with the subscription's metadata.
# * `payment_behavior=default_incomplete`: the first invoice waits with an
#   unconfirmed PaymentIntent for the payer; with
#   `payment_settings[save_default_payment_method]=on_subscription` the card
#   that pays it becomes the customer's default (otherwise renewals have no
#   card, as on Stripe).
# * `discounts[][coupon]` on a subscription: each of its invoices carries
#   the coupon's percentage off as a negative line.
# * Subscription schedules (POST/GET /v1/subscription_schedules) made
#   `from_subscription`: one phase, the subscription's current period.
# * `invoice.paid` beside localstripe's `invoice.payment_succeeded`.
# * Test controls: POST /_fake/subscriptions/{id}/renew bills the next
#   period now (`decline=1`: with a card that is refused).

PRICES = {}
SCHEDULES = {}
COUPONS = {}  # subscription id -> coupon id
SAVE_CARD = set()  # subscriptions whose paying card becomes the default
VIRTUAL = ("confirmation_secret", "payments")


def price_object(plan):
    return {
        "id": plan.id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": plan.created,
        "currency": plan.currency,
        "livemode": False,
        "lookup_key": None,
        "metadata": plan.metadata or {},
        "nickname": plan.nickname,
        "product": plan.product,
        "recurring": {"interval": plan.interval,
                      "interval_count": plan.interval_count,
                      "usage_type": "licensed", "meter": None,
                      "trial_period_days": None},
        "tax_behavior": "unspecified",
        "type": "recurring",
        "unit_amount": plan.amount,
        "unit_amount_decimal": str(plan.amount),
    }


@idempotent
async def create_price(request, data):
    try:
        recurring = data.get("recurring") or {}
        plan = resources.Plan._api_create(
            id=new_id("price_"),
            amount=int(data["unit_amount"]),
            currency=data["currency"],
            product=data["product"],
            interval=recurring.get("interval", "month"),
            interval_count=int(recurring.get("interval_count", 1)),
            metadata=data.get("metadata"),
            nickname=data.get("nickname"),
        )
    except (KeyError, ValueError) as e:
        return stripe_error(400, "Missing or bad param: %s" % e)
    PRICES[plan.id] = plan
    return web.json_response(price_object(plan))


async def retrieve_price(request):
    plan = PRICES.get(request.match_info["id"])
    if plan is None:
        return stripe_error(404, "No such price", code="resource_missing")
    return web.json_response(price_object(plan))


_invoice_export = resources.Invoice._export


def invoice_export(self, expand=None):
    """An invoice as the pinned API version shows it."""
    d = _invoice_export(self, expand=expand)
    d.pop("payment_intent", None)
    d.pop("charge", None)
    if self.subscription:
        sub = resources.Subscription._api_retrieve(self.subscription)
        d["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": sub.id,
                                     "metadata": dict(sub.metadata or {})},
        }
    return d


resources.Invoice._export = invoice_export


def invoice_virtual(invoice, field):
    pi = (resources.PaymentIntent._api_retrieve(invoice.payment_intent)
          if invoice.payment_intent else None)
    if field == "confirmation_secret":
        if pi is None or invoice.status != "open":
            return None
        return {"client_secret": pi.client_secret, "type": "payment_intent"}
    data = []
    if pi is not None:
        data.append({
            "object": "invoice_payment",
            "id": "inpay_" + pi.id[3:],
            "invoice": invoice.id,
            "amount_paid": pi.amount if pi.status == "succeeded" else None,
            "amount_requested": pi.amount,
            "currency": pi.currency,
            "is_default": True,
            "status": "paid" if pi.status == "succeeded" else "open",
            "payment": {"type": "payment_intent", "payment_intent": pi.id},
        })
    return {"object": "list", "data": data, "has_more": False,
            "url": "/v1/invoice_payments?invoice=" + invoice.id}


def export_with(obj, expand):
    """`obj` exported with `expand`, the invoice's virtual fields
    included."""
    expand = list(expand or [])
    virtual = [e for e in expand if e.split(".")[-1] in VIRTUAL]
    real = [e for e in expand if e not in virtual]
    for v in virtual:
        if "." in v:
            parent = v.rsplit(".", 1)[0]
            if parent not in real:
                real.append(parent)
    d = obj._export(expand=real)
    for v in virtual:
        *path, field = v.split(".")
        target = d
        for k in path:
            target = target[k]
        invoice = resources.Invoice._api_retrieve(target["id"])
        target[field] = invoice_virtual(invoice, field)
    return d


def coupon_line(customer, subscription, plan):
    """The negative line a subscription's coupon puts on its next invoice."""
    coupon_id = COUPONS.get(subscription)
    if coupon_id is None:
        return
    coupon = resources.Coupon._api_retrieve(coupon_id)
    off = int(plan.amount * coupon.percent_off // 100)
    if off > 0:
        resources.InvoiceItem._api_create(
            customer=customer, amount=-off, currency=plan.currency,
            description="%s (%g%% off)" % (coupon.id, coupon.percent_off))


def start_subscription(customer, price, coupon, metadata, incomplete):
    """A localstripe subscription whose first invoice waits for the payer
    when `incomplete` (default_incomplete)."""
    plan = resources.Plan._api_retrieve(price)
    if coupon is not None:
        resources.Coupon._api_retrieve(coupon)  # 404 if unknown
    original = resources.Invoice._api_pay_invoice

    def wait_for_payer(id):
        invoice = resources.Invoice._api_retrieve(id)
        invoice._draft = False
        if invoice.total <= 0:
            invoice._on_payment_success()
            return invoice
        pi = resources.PaymentIntent(amount=invoice.total,
                                     currency=invoice.currency,
                                     customer=invoice.customer)
        invoice.payment_intent = pi.id
        pi.invoice = invoice.id
        return invoice

    if coupon is not None:
        c = resources.Coupon._api_retrieve(coupon)
        off = int(plan.amount * c.percent_off // 100)
        if off > 0:
            resources.InvoiceItem._api_create(
                customer=customer, amount=-off, currency=plan.currency,
                description="%s (%g%% off)" % (c.id, c.percent_off))
    if incomplete:
        resources.Invoice._api_pay_invoice = wait_for_payer
    try:
        sub = resources.Subscription._api_create(
            customer=customer, items=[{"plan": price}], metadata=metadata)
    finally:
        resources.Invoice._api_pay_invoice = original
    if coupon is not None:
        COUPONS[sub.id] = coupon
        sub.discount = {"object": "discount", "coupon": {"id": coupon}}
    return sub


def subscription_params(data):
    items = data.get("items") or []
    if len(items) != 1 or not items[0].get("price"):
        raise ValueError("one item with a price")
    discounts = data.get("discounts") or []
    coupon = discounts[0].get("coupon") if discounts else None
    return items[0]["price"], coupon


@idempotent
async def create_subscription(request, data):
    try:
        price, coupon = subscription_params(data)
        customer = data["customer"]
    except (KeyError, ValueError) as e:
        return stripe_error(400, "Missing or bad param: %s" % e)
    incomplete = data.get("payment_behavior") == "default_incomplete"
    try:
        sub = start_subscription(customer, price, coupon,
                                 data.get("metadata"), incomplete)
        if (data.get("payment_settings") or {}).get(
                "save_default_payment_method") == "on_subscription":
            SAVE_CARD.add(sub.id)
        body = export_with(sub, data.get("expand"))
    except resources.UserError as e:
        return stripe_error(e.code, str(e))
    return web.json_response(body)


def expand_of(request):
    """`expand[]=…` or `expand[0]=…` in the query string."""
    return [v for k, v in request.query.items()
            if k == "expand[]" or (k.startswith("expand[") and k.endswith("]"))]


async def retrieve_subscription(request, id):
    expand = expand_of(request)
    try:
        sub = resources.Subscription._api_retrieve(id)
        return web.json_response(export_with(sub, expand))
    except resources.UserError as e:
        return stripe_error(e.code, str(e))


@idempotent
async def create_invoice_item(request, data):
    """localstripe's invoice items, with Stripe's idempotency."""
    try:
        item = resources.InvoiceItem._api_create(**data)
    except resources.UserError as e:
        return stripe_error(e.code, str(e))
    except TypeError as e:
        return stripe_error(400, "Bad request: %s" % e)
    return web.json_response(item._export())


async def update_discounts(id, data):
    """`discounts` on a subscription update (localstripe has none): an
    empty value takes the coupon off, `discounts[0][coupon]` puts one on,
    for the next invoices."""
    data = dict(data)
    discounts = data.pop("discounts")
    data.pop("expand", None)
    try:
        sub = resources.Subscription._api_retrieve(id)
        if discounts in ("", None, []):
            COUPONS.pop(sub.id, None)
            sub.discount = None
        else:
            coupon = discounts[0]["coupon"]
            resources.Coupon._api_retrieve(coupon)
            COUPONS[sub.id] = coupon
            sub.discount = {"object": "discount", "coupon": {"id": coupon}}
        if data:
            resources.Subscription._api_update(id, **data)
    except (KeyError, TypeError, IndexError):
        return stripe_error(400, "Invalid discounts")
    except resources.UserError as e:
        return stripe_error(e.code, str(e))
    return web.json_response(sub._export())


async def retrieve_invoice(request, id):
    expand = expand_of(request)
    try:
        invoice = resources.Invoice._api_retrieve(id)
        return web.json_response(export_with(invoice, expand))
    except resources.UserError as e:
        return stripe_error(e.code, str(e))


@idempotent
async def create_schedule(request, data):
    source = data.get("from_subscription")
    if not source:
        return stripe_error(400, "this fake makes schedules from_subscription only")
    if any(k in data for k in ("phases", "end_behavior", "customer")):
        return stripe_error(
            400, "You cannot set `phases`, `end_behavior` or `customer` "
                 "when `from_subscription` is set.")
    try:
        sub = resources.Subscription._api_retrieve(source)
    except resources.UserError as e:
        return stripe_error(e.code, str(e))
    schedule = {
        "id": new_id("sub_sched_"),
        "object": "subscription_schedule",
        "created": int(time.time()),
        "customer": sub.customer,
        "end_behavior": "release",
        "metadata": {},
        "phases": [{
            "start_date": sub.current_period_start,
            "end_date": sub.current_period_end,
            "items": [{"price": sub.plan.id, "quantity": 1}],
            "discounts": ([{"coupon": COUPONS[sub.id]}]
                          if sub.id in COUPONS else []),
        }],
        "status": "active",
        "subscription": sub.id,
        "livemode": False,
    }
    sub.schedule = schedule["id"]
    SCHEDULES[schedule["id"]] = schedule
    return web.json_response(schedule)


async def retrieve_schedule(request):
    schedule = SCHEDULES.get(request.match_info["id"])
    if schedule is None:
        return stripe_error(404, "No such subscription schedule",
                            code="resource_missing")
    return web.json_response(schedule)


async def renew_subscription(request):
    """Bills a subscription's next period now (a test control)."""
    data = await form(request)
    try:
        sub = resources.Subscription._api_retrieve(request.match_info["id"])
    except resources.UserError as e:
        return stripe_error(e.code, str(e))
    if data.get("decline") == "1":
        pm = resources.PaymentMethod._api_create(type="card", card={
            "number": "4000000000000341", "exp_month": 12,
            "exp_year": 2034, "cvc": "123"})
        resources.PaymentMethod._api_attach(pm.id, customer=sub.customer)
        cus = resources.Customer._api_retrieve(sub.customer)
        cus.invoice_settings["default_payment_method"] = pm.id
    coupon_line(sub.customer, sub.id, sub.plan)
    try:
        sub._create_invoice()
    except resources.UserError as e:
        # No card to charge (none was saved): the invoice stays open.
        pass
    invoice = resources.Invoice._api_retrieve(sub.latest_invoice)
    if invoice.status != "paid":
        # localstripe marks the subscription past due without a word; Stripe
        # tells: invoice.payment_failed.
        sub.status = "past_due"
        resources.schedule_webhook(
            resources.Event("invoice.payment_failed", invoice))
    return web.json_response(sub._export())


@web.middleware
async def billing(request, handler):
    """Routes the Billing calls ahead of localstripe's own (with Stripe's
    secret-key check, which localstripe's middleware would have made)."""
    path, method = request.path.rstrip("/"), request.method
    parts = path.split("/")
    ours = path in ("/v1/prices", "/v1/subscriptions", "/v1/subscription_schedules",
                    "/v1/invoiceitems") \
        or path.startswith(("/v1/prices/", "/v1/subscription_schedules/")) \
        or (method == "GET" and len(parts) == 4 and parts[2] in ("subscriptions", "invoices"))
    if ours:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64
            auth = "Bearer " + base64.b64decode(auth[6:]).decode("utf-8", "replace")
        if not auth.startswith("Bearer sk_"):
            return stripe_error(401, "Invalid API Key provided",
                                kind="invalid_request_error")
    if method == "POST" and path == "/v1/prices":
        return await create_price(request)
    if method == "GET" and path.startswith("/v1/prices/"):
        request.match_info["id"] = parts[3]
        return await retrieve_price(request)
    if method == "POST" and path == "/v1/subscriptions":
        return await create_subscription(request)
    if method == "GET" and len(parts) == 4 and parts[2] == "subscriptions":
        return await retrieve_subscription(request, parts[3])
    if method == "GET" and len(parts) == 4 and parts[2] == "invoices":
        return await retrieve_invoice(request, parts[3])
    if method == "POST" and len(parts) == 4 and parts[2] == "subscriptions":
        data = await form(request)
        if "discounts" in data:
            return await update_discounts(parts[3], data)
    if method == "POST" and path == "/v1/invoiceitems":
        return await create_invoice_item(request)
    if method == "POST" and path == "/v1/subscription_schedules":
        return await create_schedule(request)
    if method == "GET" and path.startswith("/v1/subscription_schedules/"):
        request.match_info["id"] = parts[3]
        return await retrieve_schedule(request)
    if method == "POST" and path.startswith("/_fake/subscriptions/") \
            and path.endswith("/renew"):
        request.match_info["id"] = parts[3]
        return await renew_subscription(request)
    return await handler(request)


_schedule_webhook = resources.schedule_webhook


def schedule_webhook(event):
    """localstripe's webhooks, plus Stripe's invoice.paid; the card that
    paid a subscription's first invoice becomes the customer's default when
    the subscription asked for it."""
    _schedule_webhook(event)
    try:
        also_invoice_paid(event)
    except Exception:
        import traceback
        traceback.print_exc()
        raise


def also_invoice_paid(event):
    if event.type == "invoice.payment_succeeded":
        invoice = resources.Invoice._api_retrieve(event.data["object"]["id"])
        if invoice.payment_intent and invoice.subscription in SAVE_CARD:
            pi = resources.PaymentIntent._api_retrieve(invoice.payment_intent)
            cus = resources.Customer._api_retrieve(invoice.customer)
            if pi.payment_method and \
                    not cus.invoice_settings.get("default_payment_method"):
                pm = resources.PaymentMethod._api_retrieve(pi.payment_method)
                if pm.customer is None:
                    pm.customer = cus.id
                cus.invoice_settings["default_payment_method"] = pm.id
        _schedule_webhook(resources.Event("invoice.paid", invoice))


resources.schedule_webhook = schedule_webhook


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", required=True)
    args = parser.parse_args()
    with open(args.fixtures) as f:
        resources_ = json.load(f)["resources"]
    for name in ("account", "account_link", "transfer"):
        TEMPLATES[name] = resources_[name]

    app = ls.app
    app.middlewares.append(complete_payment_intents)
    # Ahead of localstripe's secret-key check: Stripe.js holds only the
    # publishable key.
    app.middlewares.insert(0, stripe_js)
    app.middlewares.insert(1, billing)
    app.router.add_post("/v1/accounts", create_account)
    app.router.add_get("/v1/accounts/{id}", retrieve_account)
    app.router.add_post("/v1/account_links", create_account_link)
    app.router.add_post("/v1/transfers", create_transfer)
    app.router.add_post("/_fake/accounts/{id}/complete", complete_onboarding)
    app.router.add_get("/_fake/transfers", list_transfers)
    app.router.add_post("/_fake/fail_transfers", fail_transfers)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    web.run_app(app, sock=sock, print=lambda *a: print("fake stripe ready",
                                                       flush=True))


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
