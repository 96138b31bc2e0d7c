"""The tables of online sales (migration 0010): one row per order, one per Stripe event seen.

An order is keyed by its id and, for retries, by ``(customer, request_id)``: a customer's retried
purchase finds its order and its PaymentIntent instead of making new ones. ``stripe_event`` keeps
the id of every webhook event handled, so a redelivered event changes nothing.
``docs/online-sales.md`` describes each column's use and the order's states.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field

from server.models import BusinessBase

#: the states of an order (docs/online-sales.md section 3)
ORDER_STATES = ("pending", "allocating", "ticketed", "voided", "refunding", "refunded", "canceled")


def _ms(nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


class OnlineOrder(BusinessBase, table=True):
    """A customer's online purchase of ``quantity`` tickets of one raffle, paid through Stripe."""

    __tablename__ = "online_order"
    __table_args__ = (
        UniqueConstraint("customer", "request_id", name="uq_online_order_customer_request"),
        Index("ix_online_order_customer", "customer", "created_at_ms"),
        Index("ix_online_order_raffle", "raffle_id", "customer"),
        Index("ix_online_order_payment_intent", "payment_intent_id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    #: the principal id of the buyer (``user:...``), the audit actor of the purchase
    customer: str = Field(max_length=100)
    #: the customer's own id of the purchase request: a retry with the same id is the same order
    request_id: str = Field(max_length=64)
    raffle_id: str = Field(max_length=32)
    #: the organisation of the raffle (the audit tenant; what a business admin may list)
    tenant: str = Field(default="", max_length=32)
    quantity: int
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    email: str = Field(default="", max_length=320)
    state: str = Field(default="pending", max_length=16)
    payment_intent_id: str = Field(default="", max_length=255)
    charge_id: str = Field(default="", max_length=255)
    refund_id: str = Field(default="", max_length=255)
    #: the tickets (JSON list of ``{"number", "code"}``) once ticketed
    tickets: str = Field(default="[]")
    #: the receipt as stored and mailed (JSON), once ticketed
    receipt: str = Field(default="")
    #: why the order is where it is (a refund's cause...)
    reason: str = Field(default="", max_length=500)
    created_at_ms: int = Field(sa_column=_ms())
    updated_at_ms: int = Field(sa_column=_ms())
    mailed_at_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))


class StripeEvent(BusinessBase, table=True):
    """A webhook event handled (its Stripe id), with what it did: a redelivery is recognised."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=64)
    order_id: str = Field(default="", max_length=32)
    outcome: str = Field(max_length=32)
    received_at_ms: int = Field(sa_column=_ms())
