"""Online sales: the purchase and the webhook's state machine, the one path of each change.

A purchase (:func:`purchase`) stores an order (``pending``) and creates its PaymentIntent through
the SDK with an idempotency key derived from the customer's ``request_id``; a retried request finds
the same order and the same intent. Tickets exist only once Stripe says the payment succeeded
(:func:`handle_event`, ``payment_intent.succeeded``): the core then sells the order's numbers on
its online channel (an online grant per order, recorded under the order's id as the sale id, so
the allocation is idempotent). Each event is handled under the order row's lock, in one business
transaction that also remembers the event's id and writes the audit entry, so a duplicate or a
reordered delivery never allocates twice. ``docs/online-sales.md`` is the normative description.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gli_core.errors import NotEnoughNumbers, NumbersExhausted, RaffleNotOpen, SaleAfterClose, TicketSetFrozen
from server import audit, jurisdictions
from server.auth import Principal
from server.context import Tombola, new_id
from server.errors import NotFound
from server.mail import send_mail
from server.models import Raffle
from server.payments import stripe_api
from server.payments.errors import PurchaseLimitReached, PurchaseRequestReused
from server.payments.models import OnlineOrder, StripeEvent
from server.raffles import service as raffles
from sync_protocol.codes import ticket_check_url
from sync_protocol.errors import TombolaError
from sync_protocol.money import format_money
from sync_protocol.rules import RaffleTerms, check_price, check_void_window, check_window, sale_amount

ORDER = OnlineOrder.__table__  # type: ignore[attr-defined]
EVENT = StripeEvent.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]

log = logging.getLogger("tombola.payments")

#: orders whose tickets count against the customer's purchase limit (paid, or maybe about to be)
COUNTED_STATES = ("pending", "ticketed")
#: the core's refusals that mean "these numbers cannot be sold now": the payment is refunded
_NOT_SELLABLE = (RaffleNotOpen, SaleAfterClose, TicketSetFrozen, NotEnoughNumbers, NumbersExhausted)


@dataclass(frozen=True)
class Purchase:
    """What the customer's app needs to confirm the payment (Stripe.js ``confirmPayment``)."""

    order_id: str
    state: str
    raffle_id: str
    quantity: int
    amount_cents: int
    currency: str
    payment_intent_id: str
    client_secret: str


# --------------------------------------------------------------------------- the rules of a purchase


def terms_of(raffle: Mapping[str, Any]) -> RaffleTerms:
    """The raffle's terms as devices get them: the one price rule and sales window apply."""
    return RaffleTerms.of(raffles.raffle_info(dict(raffle)))


def check_online_sale(app: Tombola, raffle: Mapping[str, Any]) -> None:
    """The jurisdiction's word on selling this raffle online (``jurisdiction_rule``), in one place."""
    jurisdictions.check_online_sale(jurisdictions.profile_of(app, str(raffle["id"])), raffle)


def purchase_limit(app: Tombola, raffle: Mapping[str, Any]) -> int:
    """Tickets one customer may buy online of the raffle: its own limit, else the installation's."""
    own = raffle.get("purchase_limit")
    return int(own) if isinstance(own, int) and own > 0 else app.settings.online_purchase_limit


def _idempotency_key(customer: str, request_id: str) -> str:
    """Stripe's idempotency key of a purchase: derived from who asked and their request id."""
    digest = hashlib.sha256(f"{customer}\n{request_id}".encode()).hexdigest()[:40]
    return f"tombola-purchase-{digest}"


def _visible_raffle(app: Tombola, principal: Principal, raffle_id: str) -> tuple[dict[str, Any], str]:
    """The raffle and its organisation; ``not_found`` for a raffle of another tenant."""
    raffle = raffles.get_raffle(app, raffle_id)
    organisation = str(raffles.get_venue(app, raffle["venue_id"])["organisation_id"])
    if principal.tenant is not None and principal.tenant != organisation:
        raise NotFound(f"no raffle {raffle_id}")
    return raffle, organisation


# --------------------------------------------------------------------------- the purchase


def purchase(
    app: Tombola, principal: Principal, raffle_id: str, *, quantity: int, request_id: str, email: str = ""
) -> Purchase:
    """Start an online purchase of ``quantity`` tickets: an order (``pending``) and its PaymentIntent.

    A retry with the same ``request_id`` answers the same order and intent (nothing new is made).

    Raises:
        NotFound: no such raffle (or one of another tenant).
        PurchaseRequestReused: ``request_id`` was used for another purchase.
        JurisdictionRule: the raffle may not be sold online.
        SaleAfterClose, SaleBeforeOpen: outside the sales window (``sync_protocol.rules``).
        AmountMismatch: the raffle does not sell that many tickets (the price rule).
        PurchaseLimitReached: over the customer's limit for the raffle.
        PaymentProviderError: Stripe refused or is unreachable (the order stays; retry).
        OnlineSalesUnconfigured: no Stripe keys.
    """
    stripe_api.client(app)  # refuse before anything is written when online sales are not set up
    customer = principal.id
    raffle, organisation = _visible_raffle(app, principal, raffle_id)
    order = _order_of_request(app, customer, request_id)
    if order is None:
        order = _new_order(app, customer, raffle, organisation, quantity=quantity, request_id=request_id, email=email)
    if order["raffle_id"] != raffle_id or order["quantity"] != quantity:
        raise PurchaseRequestReused(
            f"request_id {request_id!r} was used for another purchase (order {order['id']}); use a new request_id",
            order_id=order["id"],
        )
    return _with_intent(app, order)


def _order_of_request(app: Tombola, customer: str, request_id: str) -> dict[str, Any] | None:
    with app.engine.connect() as conn:
        row = conn.execute(select(ORDER).where(ORDER.c.customer == customer, ORDER.c.request_id == request_id)).first()
    return dict(row._mapping) if row is not None else None


def _new_order(
    app: Tombola,
    customer: str,
    raffle: dict[str, Any],
    organisation: str,
    *,
    quantity: int,
    request_id: str,
    email: str,
) -> dict[str, Any]:
    """Check the rules and store the order, in one transaction that holds the raffle's row (so two
    purchases of one customer never both pass the limit)."""
    check_online_sale(app, raffle)
    terms = terms_of(raffle)
    refusal = check_window(terms, app.now_ms()) or check_price(terms, quantity, None, terms.currency)
    if refusal is not None:
        raise refusal
    amount = sale_amount(terms, quantity)
    assert amount is not None
    limit = purchase_limit(app, raffle)
    now = app.now_ms()
    order = {
        "id": new_id("ord"),
        "customer": customer,
        "request_id": request_id,
        "raffle_id": raffle["id"],
        "tenant": organisation,
        "quantity": quantity,
        "amount_cents": amount,
        "currency": terms.currency,
        "email": email,
        "state": "pending",
        "payment_intent_id": "",
        "charge_id": "",
        "refund_id": "",
        "tickets": "[]",
        "receipt": "",
        "reason": "",
        "created_at_ms": now,
        "updated_at_ms": now,
        "mailed_at_ms": None,
    }
    try:
        with app.engine.begin() as conn:
            conn.execute(select(RAFFLE.c.id).where(RAFFLE.c.id == raffle["id"]).with_for_update())
            bought = conn.execute(
                select(func.coalesce(func.sum(ORDER.c.quantity), 0)).where(
                    ORDER.c.raffle_id == raffle["id"],
                    ORDER.c.customer == customer,
                    ORDER.c.state.in_(COUNTED_STATES),
                )
            ).scalar_one()
            if int(bought) + quantity > limit:
                raise PurchaseLimitReached(
                    f"one customer may buy at most {limit} ticket(s) of raffle {raffle['id']} online; "
                    f"you have {int(bought)} bought or being paid, so at most {max(0, limit - int(bought))} more",
                    limit=limit,
                    bought=int(bought),
                )
            conn.execute(insert(ORDER).values(**order))
            audit.record(
                conn,
                app,
                "order.created",
                {
                    "order_id": order["id"],
                    "raffle_id": raffle["id"],
                    "quantity": quantity,
                    "amount_cents": amount,
                    "currency": terms.currency,
                },
                tenant=organisation,
                actor=customer,
            )
    except IntegrityError:  # the same request_id, at the same time: the other request made the order
        found = _order_of_request(app, customer, request_id)
        if found is None:
            raise
        return found
    return order


def _with_intent(app: Tombola, order: dict[str, Any]) -> Purchase:
    """The order's PaymentIntent (created once: the idempotency key is the request's)."""
    if order["payment_intent_id"]:
        intent = stripe_api.retrieve_intent(app, order["payment_intent_id"])
    else:
        intent = stripe_api.create_intent(
            app,
            amount=order["amount_cents"],
            currency=order["currency"],
            metadata={"order_id": order["id"], "raffle_id": order["raffle_id"]},
            idempotency_key=_idempotency_key(order["customer"], order["request_id"]),
            email=order["email"],
        )
        with app.engine.begin() as conn:
            conn.execute(
                update(ORDER)
                .where(ORDER.c.id == order["id"], ORDER.c.payment_intent_id == "")
                .values(payment_intent_id=intent.id)
            )
    with app.engine.connect() as conn:
        state = conn.execute(select(ORDER.c.state).where(ORDER.c.id == order["id"])).scalar_one()
    return Purchase(
        order_id=order["id"],
        state=str(state),
        raffle_id=order["raffle_id"],
        quantity=order["quantity"],
        amount_cents=order["amount_cents"],
        currency=order["currency"],
        payment_intent_id=intent.id,
        client_secret=intent.client_secret,
    )


# --------------------------------------------------------------------------- webhooks


def handle_webhook(app: Tombola, payload: bytes, signature: str | None) -> dict[str, str]:
    """Verify a webhook delivery and handle its event; answers ``{"event_id", "outcome"}``."""
    event = stripe_api.verify_event(app, payload, signature)
    return handle_event(app, event)


def handle_event(app: Tombola, event: Mapping[str, Any]) -> dict[str, str]:
    """Handle one verified Stripe event, at most once (its id is remembered with its effect).

    ``payment_intent.succeeded`` tickets a pending order (or refunds it when its raffle no longer
    sells); ``charge.refunded`` (a full refund) voids the tickets before close; ``payment_intent.canceled``
    cancels a pending order. Any other event, or one that does not move its order, is noted.
    """
    event_id, type_ = str(event["id"]), str(event["type"])
    obj: Mapping[str, Any] = event["data"]["object"]
    if _seen(app, event_id):
        return {"event_id": event_id, "outcome": "duplicate"}
    order_id = _order_id_of(app, type_, obj)
    if order_id is None:
        return _remember_only(app, event_id, type_, "ignored")
    # What the handling reads of the raffle is read first: on SQLite a second connection cannot
    # read while this transaction holds the write lock. The core re-checks the window itself.
    with app.engine.connect() as conn:
        raffle_id = conn.execute(select(ORDER.c.raffle_id).where(ORDER.c.id == order_id)).scalar_one_or_none()
    raffle = raffles.get_raffle(app, str(raffle_id)) if raffle_id is not None else None
    issuer = raffles.issuer(app, str(raffle["venue_id"])) if raffle is not None else None
    mailed: dict[str, Any] | None = None
    try:
        with app.engine.begin() as conn:
            row = conn.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update()).first()
            if row is None or raffle is None or issuer is None:  # an order this installation does not have
                outcome = "ignored"
            elif conn.execute(select(EVENT.c.id).where(EVENT.c.id == event_id)).first() is not None:
                return {"event_id": event_id, "outcome": "duplicate"}
            else:
                order = dict(row._mapping)
                outcome = _apply(app, conn, _Handling(order, raffle, issuer, event_id), type_, obj)
                if outcome == "ticketed":
                    mailed = order
            conn.execute(
                insert(EVENT).values(
                    id=event_id, type=type_[:64], order_id=order_id, outcome=outcome, received_at_ms=app.now_ms()
                )
            )
    except IntegrityError:  # the same event, delivered twice at once: the other delivery handled it
        return {"event_id": event_id, "outcome": "duplicate"}
    if mailed is not None:
        _mail_receipt(app, mailed["id"])
    return {"event_id": event_id, "outcome": outcome}


def _seen(app: Tombola, event_id: str) -> bool:
    with app.engine.connect() as conn:
        return conn.execute(select(EVENT.c.id).where(EVENT.c.id == event_id)).first() is not None


def _remember_only(app: Tombola, event_id: str, type_: str, outcome: str) -> dict[str, str]:
    try:
        with app.engine.begin() as conn:
            conn.execute(
                insert(EVENT).values(
                    id=event_id, type=type_[:64], order_id="", outcome=outcome, received_at_ms=app.now_ms()
                )
            )
    except IntegrityError:
        return {"event_id": event_id, "outcome": "duplicate"}
    return {"event_id": event_id, "outcome": outcome}


def _order_id_of(app: Tombola, type_: str, obj: Mapping[str, Any]) -> str | None:
    """The order an event is about: a PaymentIntent's ``metadata.order_id``; a charge's intent."""
    if type_.startswith("payment_intent."):
        meta = obj.get("metadata") or {}
        if isinstance(meta.get("order_id"), str):
            return str(meta["order_id"])
        intent_id = obj.get("id")
    elif type_.startswith("charge."):
        meta = obj.get("metadata") or {}
        if isinstance(meta.get("order_id"), str):
            return str(meta["order_id"])
        intent_id = obj.get("payment_intent")
    else:
        return None
    if not isinstance(intent_id, str) or not intent_id:
        return None
    with app.engine.connect() as conn:
        found = conn.execute(select(ORDER.c.id).where(ORDER.c.payment_intent_id == intent_id)).scalar_one_or_none()
    return str(found) if found is not None else None


@dataclass(frozen=True)
class _Handling:
    """One event's handling: the locked order, its raffle and issuer (read before the lock)."""

    order: dict[str, Any]
    raffle: dict[str, Any]
    issuer: raffles.Issuer
    event_id: str


def _apply(app: Tombola, conn: Connection, h: _Handling, type_: str, obj: Mapping[str, Any]) -> str:
    """Move the (locked) order for one event; returns the outcome. The state machine of
    ``docs/online-sales.md`` section 3: only a ``pending`` order is ticketed, and only once."""
    order = h.order
    state = order["state"]
    if type_ == "payment_intent.succeeded":
        if state != "pending":
            return f"already_{state}"
        paid = obj.get("amount_received", obj.get("amount"))
        if paid != order["amount_cents"] or str(obj.get("currency", "")).upper() != order["currency"]:
            log.error("order %s: Stripe says %s was paid, not the order's amount", order["id"], paid)
            return _refund(app, conn, h, "the amount paid is not the order's")
        return _ticket(app, conn, h, obj)
    if type_ == "payment_intent.canceled":
        if state != "pending":
            return f"already_{state}"
        _move(app, conn, h, "canceled", reason=str(obj.get("cancellation_reason") or "canceled"))
        return "canceled"
    if type_ == "charge.refunded":
        if not obj.get("refunded"):
            return "partial_refund_noted"
        if state == "pending":  # refunded before its success reached us: never ticketed
            _move(app, conn, h, "refunded", reason="refunded before the payment's success was handled")
            return "refunded"
        if state == "ticketed":
            return _void(app, conn, h)
        return f"already_{state}"
    return "noted"


def _ticket(app: Tombola, conn: Connection, h: _Handling, intent: Mapping[str, Any]) -> str:
    """Sell the order's numbers in the core (idempotent per order id) and store the receipt; or,
    when the raffle no longer sells, refund the payment."""
    order = h.order
    closed = check_window(terms_of(h.raffle), app.now_ms())
    if closed is not None:
        return _refund(app, conn, h, f"paid after sales closed: {closed.detail}")
    try:
        tickets = app.core.generate_tickets(
            order["raffle_id"], order["quantity"], sale_id=order["id"], amount_cents=order["amount_cents"]
        )
    except _NOT_SELLABLE as exc:
        return _refund(app, conn, h, f"the raffle no longer sells: {exc.detail}")
    numbers = [{"number": t.number, "code": t.verification_code} for t in tickets]
    charge = intent.get("latest_charge")
    _move(
        app,
        conn,
        h,
        "ticketed",
        tickets=json.dumps(numbers),
        receipt=json.dumps(_receipt(app, h, numbers), sort_keys=True),
        charge_id=charge if isinstance(charge, str) else "",
        extra={"numbers": [t.number for t in tickets][:1000]},
    )
    return "ticketed"


def _refund(app: Tombola, conn: Connection, h: _Handling, reason: str) -> str:
    """Refund the whole payment through the SDK (one refund per order: its idempotency key) and
    mark the order ``refunded``; no ticket is made."""
    refund_id = stripe_api.refund(
        app, h.order["payment_intent_id"], idempotency_key=f"tombola-refund-{h.order['id']}", reason=reason
    )
    _move(app, conn, h, "refunded", reason=reason, refund_id=refund_id)
    return "refunded"


def _void(app: Tombola, conn: Connection, h: _Handling) -> str:
    """A ticketed order refunded: before close its tickets are voided (the POS void rule, one rule
    in ``sync_protocol.rules``); after close, or once the set is frozen, they stay in the draw."""
    late: TombolaError | None = check_void_window(terms_of(h.raffle), app.now_ms())
    if late is None:
        try:
            app.core.record([], voided_sale_ids=[h.order["id"]])
        except TicketSetFrozen as exc:
            late = exc
    if late is not None:
        _move(app, conn, h, "refunded", reason=f"refunded after close; the tickets stay in the draw: {late.detail}")
        return "refunded_tickets_kept"
    _move(app, conn, h, "voided", reason="refunded before close; tickets voided")
    return "voided"


def _move(
    app: Tombola,
    conn: Connection,
    h: _Handling,
    to: str,
    *,
    reason: str = "",
    extra: Mapping[str, Any] | None = None,
    **values: Any,
) -> None:
    """Change the order's state and log ``order.state_changed``, on the webhook's transaction."""
    order = h.order
    conn.execute(
        update(ORDER)
        .where(ORDER.c.id == order["id"])
        .values(state=to, reason=reason[:500], updated_at_ms=app.now_ms(), **values)
    )
    payload: dict[str, Any] = {
        "order_id": order["id"],
        "raffle_id": order["raffle_id"],
        "from": order["state"],
        "to": to,
        "stripe_event_id": h.event_id,
        "quantity": order["quantity"],
        "amount_cents": order["amount_cents"],
    }
    if reason:
        payload["reason"] = reason[:500]
    payload.update(extra or {})
    audit.record(conn, app, "order.state_changed", payload, tenant=order["tenant"], actor="service:stripe-webhook")


# --------------------------------------------------------------------------- receipts


def _receipt(app: Tombola, h: _Handling, numbers: list[dict[str, Any]]) -> dict[str, Any]:
    """The receipt: the tickets with their verification codes, the raffle, its draw date, the licence."""
    order, raffle, issuer = h.order, h.raffle, h.issuer
    return {
        "order_id": order["id"],
        "raffle_id": raffle["id"],
        "raffle_name": raffle["name"],
        "organisation": issuer.organisation,
        "licence_number": raffle.get("licence_number") or issuer.licence_number,
        "draw_at_ms": raffle.get("draw_at_ms") or raffle["sales_close_at_ms"],
        "results_url": raffle.get("results_url") or "",
        "quantity": order["quantity"],
        "amount_cents": order["amount_cents"],
        "currency": order["currency"],
        "paid_at_ms": app.now_ms(),
        "tickets": [
            n | {"check_url": ticket_check_url(issuer.check_url, str(raffle["id"]), n["number"], n["code"])}
            for n in numbers
        ],
    }


def receipt_text(receipt: Mapping[str, Any]) -> str:
    """The receipt as the e-mail's plain text."""
    when = datetime.fromtimestamp(receipt["draw_at_ms"] / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Thank you for buying tickets of {receipt['raffle_name']}.",
        "",
        f"Order: {receipt['order_id']}",
        f"Raffle: {receipt['raffle_name']} ({receipt['raffle_id']}), run by {receipt['organisation']}",
        f"Licence: {receipt['licence_number'] or '-'}",
        f"Draw: on or after {when}",
        f"Paid: {format_money(receipt['amount_cents'], receipt['currency'])} for {receipt['quantity']} ticket(s)",
        "",
        "Your tickets (number, verification code):",
    ]
    lines += [f"  {t['number']:>8}  {t['code']}" for t in receipt["tickets"]]
    lines += ["", "Check a ticket at any time:"] + [f"  {t['check_url']}" for t in receipt["tickets"][:20]]
    if receipt.get("results_url"):
        lines += ["", f"Results: {receipt['results_url']}"]
    return "\n".join(lines) + "\n"


def _mail_receipt(app: Tombola, order_id: str) -> None:
    """Mail the stored receipt (after the commit: a mail failure never undoes the tickets)."""
    with app.engine.connect() as conn:
        row = conn.execute(select(ORDER.c.email, ORDER.c.receipt).where(ORDER.c.id == order_id)).one()
    if not row.email or not row.receipt:
        return
    receipt = json.loads(row.receipt)
    try:
        send_mail(app, row.email, f"Your tickets: {receipt['raffle_name']} (order {order_id})", receipt_text(receipt))
    except Exception:
        log.exception("the receipt of order %s was not mailed; it stays listed under the customer's tickets", order_id)
        return
    with app.engine.begin() as conn:
        conn.execute(update(ORDER).where(ORDER.c.id == order_id).values(mailed_at_ms=app.now_ms()))


# --------------------------------------------------------------------------- the customer's tickets


def tickets_of_user(app: Tombola, principal: Principal, user_id: str) -> list[dict[str, Any]]:
    """The orders of ``user:<user_id>`` with their tickets and receipts, newest first.

    The customer themself sees all of theirs; an installation-wide admin every one; a business
    admin those of its organisation's raffles. Anyone else: ``not_found`` (nothing is revealed).
    """
    customer = f"user:{user_id}"
    query = select(ORDER).where(ORDER.c.customer == customer).order_by(ORDER.c.created_at_ms.desc(), ORDER.c.id)
    if principal.id == customer:
        pass
    elif principal.role in ("admin", "business_admin") and principal.tenant is not None:
        query = query.where(ORDER.c.tenant == principal.tenant)
    elif principal.role != "admin":
        raise NotFound(f"no user {user_id}")
    with app.engine.connect() as conn:
        rows = conn.execute(query.limit(1000)).all()
    status = {"ticketed": "sold", "voided": "voided", "refunded": "sold"}
    return [
        {
            "order_id": r.id,
            "raffle_id": r.raffle_id,
            "state": r.state,
            "quantity": r.quantity,
            "amount_cents": r.amount_cents,
            "currency": r.currency,
            "created_at_ms": r.created_at_ms,
            "tickets": [t | {"status": status.get(r.state, "none")} for t in json.loads(r.tickets)],
            "receipt": json.loads(r.receipt) if r.receipt else None,
        }
        for r in rows
    ]
