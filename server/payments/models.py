"""The tables of online sales (migration 0010): one row per order, one per Stripe event seen.

An order is keyed by its id and, for retries, by ``(customer, request_id)``: a customer's retried
purchase finds its order and its PaymentIntent instead of making new ones. ``stripe_event`` keeps
the id of every webhook event handled, so a redelivered event changes nothing.
``docs/online-sales.md`` describes each column's use and the order's states.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field

from server.models import BusinessBase, OnlineOrder

__all__ = ["ORDER_STATES", "OnlineOrder", "StripeEvent"]

#: the states of an order (docs/online-sales.md section 3)
ORDER_STATES = ("pending", "allocating", "ticketed", "voided", "refunding", "refunded", "canceled")


def _ms(nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


class StripeEvent(BusinessBase, table=True):
    """A webhook event handled (its Stripe id), with what it did: a redelivery is recognised."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=64)
    order_id: str = Field(default="", max_length=32)
    outcome: str = Field(max_length=32)
    received_at_ms: int = Field(sa_column=_ms())
