"""A local stand-in of the few Stripe API endpoints Tombola uses, for the real ``stripe`` SDK.

No ``stripe-mock`` package exists in the registries, and nothing may reach the internet, so this
small threaded HTTP server answers what :mod:`server.payments.stripe_api` calls, with Stripe's JSON
shapes, its form-encoded requests (``metadata[order_id]=...``), its error body
(``{"error": {"type", "code", "message"}}``) and its idempotency keys (the same key answers the
same object; other parameters under a used key are refused, as Stripe does):

- ``POST /v1/payment_intents``, ``GET /v1/payment_intents/{id}``,
  ``POST /v1/payment_intents/{id}/confirm`` (the customer's browser, through Stripe.js, in real
  life), ``POST /v1/payment_intents/{id}/cancel``;
- ``POST /v1/refunds`` (a whole payment, by ``payment_intent``).

It records the events Stripe would send (``payment_intent.created``, ``payment_intent.succeeded``,
``charge.succeeded``, ``payment_intent.canceled``, ``charge.refunded``) in :attr:`StripeStandIn.events`
instead of sending them: tests deliver them to ``POST /stripe/webhook`` in the order they choose
(duplicates, reorderings), signed with Stripe's scheme by :func:`signed_headers` (the SDK's own
:meth:`stripe.WebhookSignature.generate_signature_header`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

API_KEY = "sk_test_tombola_standin"
WEBHOOK_SECRET = "whsec_tombola_standin"
API_VERSION = "2025-01-01"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding back into nested dicts: ``a[b][c]=v`` -> ``{"a": {"b": {"c": "v"}}}``."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.code = status, type_, message, code


@dataclass
class StripeStandIn:
    """The stand-in's state: objects by id, the events Stripe would send, idempotent answers."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    idempotent: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # -- what the endpoints do ------------------------------------------------------------
    def _event(self, type_: str, obj: dict[str, Any]) -> None:
        self.events.append(
            {
                "id": _id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": type_,
                "data": {"object": json.loads(json.dumps(obj))},
            }
        )

    def create_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            amount = int(params["amount"])
            currency = str(params["currency"])
        except (KeyError, ValueError) as exc:
            raise StripeError(400, "invalid_request_error", "Missing required param: amount or currency.") from exc
        if amount < 1:
            raise StripeError(400, "invalid_request_error", "Amount must be at least 1.", "amount_too_small")
        pi_id = _id("pi")
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{pi_id}_secret_{secrets.token_hex(8)}",
            "metadata": params.get("metadata", {}),
            "receipt_email": params.get("receipt_email"),
            "latest_charge": None,
            "created": int(time.time()),
            "livemode": False,
            "cancellation_reason": None,
            "automatic_payment_methods": {"enabled": True},
        }
        self.intents[pi_id] = pi
        self._event("payment_intent.created", pi)
        return pi

    def intent(self, pi_id: str) -> dict[str, Any]:
        pi = self.intents.get(pi_id)
        if pi is None:
            raise StripeError(404, "invalid_request_error", f"No such payment_intent: '{pi_id}'", "resource_missing")
        return pi

    def confirm(self, pi_id: str, params: dict[str, Any]) -> dict[str, Any]:
        pi = self.intent(pi_id)
        if pi["status"] == "succeeded":
            raise StripeError(400, "invalid_request_error", "This PaymentIntent has already succeeded.")
        if params.get("payment_method") == "pm_card_chargeDeclined":
            raise StripeError(402, "card_error", "Your card was declined.", "card_declined")
        charge = {
            "id": _id("ch"),
            "object": "charge",
            "amount": pi["amount"],
            "amount_refunded": 0,
            "currency": pi["currency"],
            "payment_intent": pi_id,
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "metadata": {},
        }
        self.charges[charge["id"]] = charge
        pi.update(status="succeeded", amount_received=pi["amount"], latest_charge=charge["id"])
        self._event("payment_intent.succeeded", pi)
        self._event("charge.succeeded", charge)
        return pi

    def cancel(self, pi_id: str) -> dict[str, Any]:
        pi = self.intent(pi_id)
        if pi["status"] == "succeeded":
            raise StripeError(400, "invalid_request_error", "You cannot cancel this PaymentIntent: it has succeeded.")
        pi.update(status="canceled", cancellation_reason="requested_by_customer")
        self._event("payment_intent.canceled", pi)
        return pi

    def refund(self, params: dict[str, Any]) -> dict[str, Any]:
        pi = self.intent(str(params.get("payment_intent", "")))
        charge = self.charges.get(pi["latest_charge"] or "")
        if charge is None:
            raise StripeError(400, "invalid_request_error", "This PaymentIntent has no successful charge to refund.")
        if charge["refunded"]:
            raise StripeError(
                400, "invalid_request_error", "Charge has already been refunded.", "charge_already_refunded"
            )
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": charge["amount"],
            "charge": charge["id"],
            "currency": charge["currency"],
            "payment_intent": pi["id"],
            "reason": params.get("reason"),
            "metadata": params.get("metadata", {}),
            "status": "succeeded",
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        charge.update(refunded=True, amount_refunded=charge["amount"])
        self._event("charge.refunded", charge)
        return refund

    # -- routing ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, Any], key: str | None) -> dict[str, Any]:
        with self.lock:
            self.requests.append((method, path))
            if key is not None and method == "POST":
                seen = self.idempotent.get(key)
                fingerprint = json.dumps([path, params], sort_keys=True)
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were first "
                            "used with.",
                        )
                    return dict(seen[1])
            answer = self._route(method, path, params)
            if key is not None and method == "POST":
                self.idempotent[key] = (fingerprint, json.loads(json.dumps(answer)))
            return answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self.create_intent(params)
            if method == "GET" and len(parts) == 3:
                return self.intent(parts[2])
            if method == "POST" and len(parts) == 4 and parts[3] == "confirm":
                return self.confirm(parts[2], params)
            if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                return self.cancel(parts[2])
        if parts == ["v1", "refunds"] and method == "POST":
            return self.refund(params)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def events_of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]

    def event_for(self, type_: str, pi_id: str) -> dict[str, Any]:
        """The last event of ``type_`` about PaymentIntent ``pi_id`` (or its charge)."""
        for e in reversed(self.events):
            obj = e["data"]["object"]
            if e["type"] == type_ and pi_id in (obj.get("id"), obj.get("payment_intent")):
                return e
        raise LookupError(f"no {type_} event for {pi_id}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _id("req"))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urlsplit(self.path)
        params = parse_form(body if method == "POST" else url.query)
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {API_KEY}":
            self._answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}})
            return
        try:
            answer = self.server.standin.handle(method, url.path, params, self.headers.get("Idempotency-Key"))
        except StripeError as exc:
            error = {"type": exc.type, "message": exc.message}
            if exc.code:
                error["code"] = exc.code
            self._answer(exc.status, {"error": error})
            return
        self._answer(200, answer)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StripeStandIn


def start() -> tuple[_Server, StripeStandIn]:
    """Start the stand-in on a free loopback port (in a thread); ``standin.url`` is its address."""
    standin = StripeStandIn()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.standin = standin
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True, name="stripe-standin").start()
    return server, standin


@pytest.fixture
def stripe_standin() -> Iterator[StripeStandIn]:
    """A fresh stand-in of Stripe's API for one test."""
    server, standin = start()
    yield standin
    server.shutdown()
    server.server_close()


def sdk_client(standin: StripeStandIn) -> stripe.StripeClient:
    """The real SDK pointed at the stand-in (what a test does in the customer's place)."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": standin.url})


def signed_headers(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a webhook delivery signed with Stripe's scheme (``t=...,v1=...``)."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}
