"""A local HTTP stand-in for the few Stripe API endpoints our `StripeProvider` calls.

The real `stripe` library talks to it through `STRIPE_API_BASE` (docs/architecture.md §8): no patching.

- ``POST /v1/payment_intents`` (form-encoded, confirm=true): honours `Idempotency-Key` (same
  key → the same answer, never a second charge; same key, other params → 400), and counts
  the intents created in `created` and the charges that succeeded in `charges`.
- ``POST /v1/payment_intents/{id}/confirm``, ``GET /v1/payment_intents/{id}``,
  ``POST /v1/refunds`` (idempotent by key, never more than the amount).
- Test cards as Stripe's: tok_visa / pm_card_visa succeed; tok_chargeDeclined /
  pm_card_chargeDeclined answer 402 card_error with the intent in
  requires_payment_method; tok_threeDSecure2Required / pm_card_threeDSecure2Required leave
  the intent in requires_action until `authenticate(id)` (what Stripe.js does in the
  browser) — then it succeeds.
- `send_event(url, type, obj)` posts an event to our webhook signed the way Stripe signs:
  ``Stripe-Signature: t=<unix>,v1=<hex hmac_sha256(secret, f"{t}.{payload}")>``.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qsl

import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer

SUCCEEDS = {"tok_visa", "pm_card_visa"}
DECLINES = {"tok_chargeDeclined", "pm_card_chargeDeclined"}
THREE_D_SECURE = {"tok_threeDSecure2Required", "pm_card_threeDSecure2Required"}


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


class StripeStub:
    """State of the stand-in: intents, refunds, idempotent answers and counters."""

    def __init__(self, webhook_secret: str = "whsec_x"):
        self.webhook_secret = webhook_secret
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.answers: dict[str, tuple[str, int, str]] = {}
        self.created = 0
        self.charges = 0
        self.requests: list[tuple[str, str]] = []
        self.server: HTTPServer | None = None
        self.url = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self, port: int) -> str:
        app = tornado.web.Application([
            (r"/v1/payment_intents", IntentsHandler, {"stub": self}),
            (r"/v1/payment_intents/([^/]+)/confirm", ConfirmHandler, {"stub": self}),
            (r"/v1/payment_intents/([^/]+)", IntentHandler, {"stub": self}),
            (r"/v1/refunds", RefundsHandler, {"stub": self}),
        ])
        self.server = HTTPServer(app)
        self.server.listen(port, "127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    # ---------------------------------------------------------------- behaviour

    def create_intent(self, params: dict) -> tuple[int, dict]:
        token = params.get("payment_method") or params.get("payment_method_data[card][token]")
        if token not in SUCCEEDS | DECLINES | THREE_D_SECURE:
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "message": f"No such token: '{token}'",
                                   "param": "payment_method"}}
        self.created += 1
        pi_id = f"pi_{secrets.token_hex(12)}"
        intent = {"id": pi_id, "object": "payment_intent", "amount": int(params["amount"]),
                  "currency": params["currency"], "status": "succeeded",
                  "client_secret": f"{pi_id}_secret_{secrets.token_hex(6)}", "next_action": None,
                  "last_payment_error": None, "livemode": False, "created": int(time.time()),
                  "metadata": {k[9:-1]: v for k, v in params.items()
                               if k.startswith("metadata[")},
                  "payment_method": f"pm_{secrets.token_hex(6)}", "amount_refunded": 0,
                  "latest_charge": f"ch_{secrets.token_hex(12)}", "authenticated": False}
        self.intents[pi_id] = intent
        if token in DECLINES:
            intent["status"] = "requires_payment_method"
            error = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                     "message": "Your card was declined."}
            intent["last_payment_error"] = error
            return 402, {"error": {**error, "payment_intent": self.public(intent)}}
        if token in THREE_D_SECURE:
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {
                "type": "three_d_secure_redirect", "stripe_js": f"https://hooks.stripe.com/3ds/{pi_id}"}}
            return 200, self.public(intent)
        self.charges += 1
        return 200, self.public(intent)

    def authenticate(self, pi_id: str, passed: bool = True) -> dict:
        """The customer completes (or fails) 3-D Secure in the browser."""
        intent = self.intents[pi_id]
        intent["authenticated"] = True
        intent["next_action"] = None
        if passed:
            intent["status"] = "succeeded"
            self.charges += 1
        else:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "authentication_required",
                                            "message": "Authentication failed"}
        return self.public(intent)

    def public(self, intent: dict) -> dict:
        return {k: v for k, v in intent.items() if k != "authenticated"}

    def refund(self, params: dict) -> tuple[int, dict]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "message": "No such payment_intent"}}
        amount = int(params.get("amount") or intent["amount"] - intent["amount_refunded"])
        if intent["status"] != "succeeded" or intent["amount_refunded"] + amount > intent["amount"]:
            return 400, {"error": {"type": "invalid_request_error",
                                   "code": "charge_already_refunded",
                                   "message": "Refund amount exceeds the charge"}}
        intent["amount_refunded"] += amount
        refund = {"id": f"re_{secrets.token_hex(12)}", "object": "refund", "amount": amount,
                  "currency": intent["currency"], "payment_intent": intent["id"],
                  "status": "succeeded", "charge": intent["latest_charge"]}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def charge_of(self, pi_id: str) -> dict:
        """The charge object of an intent, as `charge.refunded` events carry it."""
        intent = self.intents[pi_id]
        return {"id": intent["latest_charge"], "object": "charge", "amount": intent["amount"],
                "amount_refunded": intent["amount_refunded"], "payment_intent": pi_id,
                "refunded": intent["amount_refunded"] >= intent["amount"],
                "currency": intent["currency"]}

    async def send_event(self, url: str, event_type: str, obj: dict, *,
                         event_id: str | None = None, secret: str | None = None,
                         signature: str | None = None):
        """POST a signed event to `url`; returns the tornado HTTPResponse."""
        event = {"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event",
                 "type": event_type, "created": int(time.time()), "livemode": False,
                 "api_version": "2024-06-20", "data": {"object": obj}}
        payload = json.dumps(event)
        header = signature or sign(payload, secret or self.webhook_secret)
        request = HTTPRequest(url, method="POST", body=payload, request_timeout=30,
                              headers={"Content-Type": "application/json",
                                       "Stripe-Signature": header})
        return await AsyncHTTPClient().fetch(request, raise_error=False)


class StubHandler(tornado.web.RequestHandler):
    def initialize(self, stub: StripeStub) -> None:
        self.stub = stub

    def check_xsrf_cookie(self) -> None:
        return None

    def params(self) -> dict:
        return dict(parse_qsl(self.request.body.decode(), keep_blank_values=True))

    def answer(self, status: int, payload: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Request-Id", f"req_{secrets.token_hex(8)}")
        self.finish(json.dumps(payload))

    def idempotent(self, compute) -> None:
        """Answer `compute(params)` once per Idempotency-Key (Stripe's replay semantics)."""
        self.stub.requests.append((self.request.method, self.request.path))
        params = self.params()
        key = self.request.headers.get("Idempotency-Key")
        fingerprint = json.dumps(sorted(params.items()))
        if key and key in self.stub.answers:
            stored_fp, status, body = self.stub.answers[key]
            if stored_fp != fingerprint:
                return self.answer(400, {"error": {"type": "idempotency_error",
                                                   "message": "Keys for idempotent requests can "
                                                              "only be used with the same "
                                                              "parameters"}})
            self.set_header("Idempotent-Replayed", "true")
            return self.answer(status, json.loads(body))
        status, payload = compute(params)
        if key:
            self.stub.answers[key] = (fingerprint, status, json.dumps(payload))
        return self.answer(status, payload)


class IntentsHandler(StubHandler):
    def post(self) -> None:
        self.idempotent(self.stub.create_intent)


class IntentHandler(StubHandler):
    def get(self, pi_id: str) -> None:
        intent = self.stub.intents.get(pi_id)
        if intent is None:
            return self.answer(404, {"error": {"type": "invalid_request_error",
                                               "code": "resource_missing",
                                               "message": f"No such payment_intent: '{pi_id}'"}})
        return self.answer(200, self.stub.public(intent))


class ConfirmHandler(StubHandler):
    def post(self, pi_id: str) -> None:
        intent = self.stub.intents.get(pi_id)
        if intent is None:
            return self.answer(404, {"error": {"type": "invalid_request_error",
                                               "code": "resource_missing",
                                               "message": f"No such payment_intent: '{pi_id}'"}})
        if intent["status"] == "requires_confirmation":
            intent["status"] = "succeeded"
            self.stub.charges += 1
        return self.answer(200, self.stub.public(intent))


class RefundsHandler(StubHandler):
    def post(self) -> None:
        self.idempotent(self.stub.refund)


# --------------------------------------------------------------------------- test helpers

WIZARD = "652000000000000000000004"     # 0.99, creator 0004
BALLOON = "652000000000000000000008"    # 0.01, creator 0004
HAMMER = "652000000000000000000021"     # 1234.56, creator 0004


def stripe_settings(stub: StripeStub) -> dict:
    """settings_overrides that point the real `stripe` library at `stub`."""
    return {"stripe_secret_key": "sk_test_x", "stripe_webhook_secret": stub.webhook_secret,
            "stripe_api_base": stub.url}


async def count(db, collection: str, query: dict | None = None) -> int:
    return await db[collection].count_documents(query or {})
