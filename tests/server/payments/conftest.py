"""Fixtures of the online-sales tests: the app pointed at a local stand-in of Stripe's API, an open
raffle sold online, and a customer's API token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.auth import create_token
from server.context import Tombola
from tests.support.app import Seed
from tests.support.stripe_standin import API_KEY, WEBHOOK_SECRET, StripeStandIn, sdk_client, signed_headers
from tests.support.stripe_standin import stripe_standin as stripe_standin


@dataclass
class Shop:
    app: Tombola
    client: TestClient
    stripe: StripeStandIn
    raffle_id: str
    token: str
    customer: str  # the principal id, user:<token id>

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def buy(self, quantity: int, request_id: str, *, token: str | None = None, **extra: Any) -> Any:
        body = {"quantity": quantity, "request_id": request_id} | extra
        return self.client.post(f"/raffles/{self.raffle_id}/purchase", json=body, headers=self.headers(token))

    def pay(self, payment_intent_id: str) -> None:
        """What the customer's browser does through Stripe.js: confirm with a card."""
        sdk_client(self.stripe).v1.payment_intents.confirm(payment_intent_id, params={"payment_method": "pm_card_visa"})

    def deliver(self, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> Any:
        payload = json.dumps(event)
        return self.client.post("/stripe/webhook", content=payload, headers=signed_headers(payload, secret))

    def order(self, order_id: str) -> dict[str, Any]:
        from sqlalchemy import select

        from server.payments.service import ORDER

        with self.app.engine.connect() as conn:
            return dict(conn.execute(select(ORDER).where(ORDER.c.id == order_id)).one()._mapping)

    def tickets(self) -> list[tuple[int, str, str]]:
        """(number, sale id, status) of every ticket of the raffle in the core."""
        return [(t.number, t.sale_id, t.status) for t in self.app.core.tickets(self.raffle_id)]


def customer_token(app: Tombola, name: str = "web customer") -> tuple[str, str]:
    made = create_token(app, name=name, role="customer", created_by="user:admin")
    return str(made["token"]), f"user:{made['id']}"


@pytest.fixture
def shop(tombola: Tombola, client: TestClient, seeded: Seed, stripe_standin: StripeStandIn) -> Iterator[Shop]:
    tombola.settings.stripe_secret_key = API_KEY
    tombola.settings.stripe_webhook_secret = WEBHOOK_SECRET
    tombola.settings.stripe_api_base = stripe_standin.url
    token, customer = customer_token(tombola)
    yield Shop(tombola, client, stripe_standin, seeded.raffle_id, token, customer)
