"""HTTP routes of online sales: the purchase, Stripe's webhook, a customer's tickets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from server import audit
from server.auth import Principal
from server.deps import AppDep, require_role
from server.payments import service
from server.payments.errors import WebhookPayloadInvalid, WebhookSignatureInvalid
from sync_protocol.rules import MAX_NUMBERS_PER_SALE

router = APIRouter(tags=["online sales"])

CustomerDep = Annotated[Principal, Depends(require_role("customer", tenant_scoped=True))]
ReaderDep = Annotated[Principal, Depends(require_role("customer", "admin", "business_admin", tenant_scoped=True))]
IdPath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


class PurchaseBody(BaseModel):
    """A purchase: how many tickets (a price point's quantity, or singles unless bundles only)."""

    quantity: int = Field(ge=1, le=MAX_NUMBERS_PER_SALE)
    #: the customer's own id of this request (a UUID, say): a retry with it is the same purchase
    request_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    #: where the receipt is mailed ("" = not mailed; it is listed under GET /users/{id}/tickets)
    email: str = Field(default="", max_length=320, pattern=r"^$|^[^@\s]+@[^@\s]+$")


class PurchaseOut(BaseModel):
    order_id: str
    state: str
    raffle_id: str
    quantity: int
    amount_cents: int
    currency: str
    payment_intent_id: str
    #: for Stripe.js ``confirmPayment`` in the customer's browser; never stored by Tombola
    client_secret: str


class WebhookOut(BaseModel):
    event_id: str
    outcome: str


class TicketOut(BaseModel):
    number: int
    code: str
    status: str


class OrderOut(BaseModel):
    order_id: str
    raffle_id: str
    state: str
    quantity: int
    amount_cents: int
    currency: str
    created_at_ms: int
    tickets: list[TicketOut]
    receipt: dict[str, Any] | None


class UserTicketsOut(BaseModel):
    user_id: str
    orders: list[OrderOut]


@router.post("/raffles/{raffle_id}/purchase", status_code=201, response_model=PurchaseOut)
def purchase(raffle_id: IdPath, body: PurchaseBody, app: AppDep, principal: CustomerDep) -> PurchaseOut:
    """Start buying ``quantity`` tickets: an order and its Stripe PaymentIntent (tickets come with
    the payment's webhook)."""
    made = service.purchase(
        app, principal, raffle_id, quantity=body.quantity, request_id=body.request_id, email=body.email
    )
    return PurchaseOut(**made.__dict__)


@router.post("/stripe/webhook", response_model=WebhookOut)
async def stripe_webhook(
    request: Request, app: AppDep, stripe_signature: Annotated[str | None, Header()] = None
) -> WebhookOut:
    """Stripe's webhook endpoint: verified with the signing secret, each event handled once."""
    payload = await request.body()
    try:
        answer = await run_in_threadpool(service.handle_webhook, app, payload, stripe_signature)
    except (WebhookSignatureInvalid, WebhookPayloadInvalid) as exc:
        client = request.client.host if request.client else "unknown"
        await run_in_threadpool(
            audit.record_now,
            app,
            "payment.webhook_refused",
            {"code": exc.code, "client": client[:100], "bytes": len(payload)},
            actor="service:stripe-webhook",
        )
        raise
    return WebhookOut(**answer)


@router.get("/users/{user_id}/tickets", response_model=UserTicketsOut)
def user_tickets(user_id: IdPath, app: AppDep, principal: ReaderDep) -> UserTicketsOut:
    """A customer's online orders with their tickets (number, verification code) and receipts."""
    orders = service.tickets_of_user(app, principal, user_id)
    return UserTicketsOut(user_id=user_id, orders=[OrderOut(**o) for o in orders])
