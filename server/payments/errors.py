"""Errors of online sales, each with a stable code (listed in ``docs/errors.md``)."""

from __future__ import annotations

from server.errors import ServerError


class OnlineSalesUnconfigured(ServerError):
    """The installation has no Stripe keys (``TOMBOLA_STRIPE_SECRET_KEY``, ``..._WEBHOOK_SECRET``)."""

    code = "online_sales_unconfigured"
    status = 503


class PurchaseLimitReached(ServerError):
    """The purchase would take the customer over the raffle's per-customer limit."""

    code = "purchase_limit_reached"
    status = 409


class PurchaseRequestReused(ServerError):
    """A ``request_id`` the customer used already, for another purchase."""

    code = "purchase_request_reused"
    status = 409


class PaymentProviderError(ServerError):
    """Stripe refused or could not be reached; nothing was charged, the request can be retried."""

    code = "payment_provider_error"
    status = 502


class WebhookSignatureInvalid(ServerError):
    """A webhook's ``Stripe-Signature`` is missing, malformed, stale or does not match."""

    code = "webhook_signature_invalid"
    status = 400


class WebhookPayloadInvalid(ServerError):
    """A signed webhook whose body is not a Stripe event."""

    code = "webhook_payload_invalid"
    status = 400
