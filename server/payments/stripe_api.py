"""The calls Tombola makes to Stripe, through the ``stripe`` SDK and nothing else.

One :class:`stripe.StripeClient` per secret key and API address (``TOMBOLA_STRIPE_SECRET_KEY``,
``TOMBOLA_STRIPE_API_BASE``; tests point the address at a local stand-in of Stripe's API). Every
call that creates something carries an idempotency key, so a retry (the SDK's own, or ours after a
crash) never makes a second PaymentIntent or refund. Webhooks are verified with
:func:`stripe.Webhook.construct_event` (``Stripe-Signature``: ``t=...,v1=HMAC-SHA256(secret,
"t.payload")``, 300 s tolerance).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from server.context import Tombola
from server.payments.errors import (
    OnlineSalesUnconfigured,
    PaymentProviderError,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)


@dataclass(frozen=True)
class Intent:
    """What Tombola keeps of a PaymentIntent (the client secret is handed on, never stored)."""

    id: str
    status: str
    amount: int
    currency: str
    client_secret: str
    latest_charge: str


@functools.cache
def _client(secret_key: str, api_base: str) -> stripe.StripeClient:
    if api_base:
        return stripe.StripeClient(secret_key, base_addresses={"api": api_base}, max_network_retries=2)
    return stripe.StripeClient(secret_key, max_network_retries=2)


def client(app: Tombola) -> stripe.StripeClient:
    """The SDK client of the installation's key (``online_sales_unconfigured`` without one)."""
    key = app.settings.stripe_secret_key
    if not key or not app.settings.stripe_webhook_secret:
        raise OnlineSalesUnconfigured(
            "online sales are not set up on this installation (TOMBOLA_STRIPE_SECRET_KEY and "
            "TOMBOLA_STRIPE_WEBHOOK_SECRET, docs/operations.md)"
        )
    return _client(key, app.settings.stripe_api_base.rstrip("/"))


def _intent(pi: stripe.PaymentIntent) -> Intent:
    charge = pi.latest_charge
    return Intent(
        id=pi.id,
        status=pi.status,
        amount=pi.amount,
        currency=pi.currency,
        client_secret=pi.client_secret or "",
        latest_charge=(charge if isinstance(charge, str) else charge.id) if charge else "",
    )


def _failed(what: str, exc: stripe.StripeError) -> PaymentProviderError:
    return PaymentProviderError(
        f"Stripe could not {what}: {exc.user_message or exc.__class__.__name__}; nothing was charged by this "
        "request, retry it with the same request_id",
        provider_code=exc.code or "",
    )


def create_intent(
    app: Tombola, *, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str, email: str = ""
) -> Intent:
    """A PaymentIntent of ``amount`` (minor units) ``currency``; the same key answers the same intent."""
    params: PaymentIntentCreateParams = {
        "amount": amount,
        "currency": currency.lower(),
        "metadata": metadata,
        "automatic_payment_methods": {"enabled": True},
    }
    if email:
        params["receipt_email"] = email
    try:
        pi = client(app).v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _failed("start the payment", exc) from exc
    return _intent(pi)


def retrieve_intent(app: Tombola, intent_id: str) -> Intent:
    """The PaymentIntent as Stripe holds it now."""
    try:
        return _intent(client(app).v1.payment_intents.retrieve(intent_id))
    except stripe.StripeError as exc:
        raise _failed("read the payment", exc) from exc


def refund(app: Tombola, intent_id: str, *, idempotency_key: str, reason: str) -> str:
    """Refund the whole payment of ``intent_id``; returns the refund's id (the same for the same key)."""
    params: RefundCreateParams = {
        "payment_intent": intent_id,
        "reason": "requested_by_customer",
        "metadata": {"tombola_reason": reason[:500]},
    }
    try:
        made = client(app).v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _failed("refund the payment", exc) from exc
    return str(made.id)


def verify_event(app: Tombola, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event of a webhook delivery, verified with the endpoint's signing secret.

    Raises:
        WebhookSignatureInvalid: no, stale or wrong ``Stripe-Signature``.
        WebhookPayloadInvalid: a signed body that is not a Stripe event.
    """
    client(app)  # refuse when unconfigured
    try:
        event = stripe.Webhook.construct_event(payload, signature, app.settings.stripe_webhook_secret)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(f"the webhook's Stripe-Signature does not verify: {exc.user_message}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadInvalid("the webhook's body is not a JSON Stripe event") from exc
    data: dict[str, Any] = dict(event.to_dict())
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise WebhookPayloadInvalid("the webhook's event has no id or type")
    obj = (data.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise WebhookPayloadInvalid("the webhook's event has no data.object")
    return data
