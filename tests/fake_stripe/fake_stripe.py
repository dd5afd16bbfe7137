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
