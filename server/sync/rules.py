"""Sale and void checks as objects (sans I/O): each takes a record and the batch context and
returns the rejection it deserves, or ``None``.

The server gathers the context (raffles, the device's grants and time anchors, the raffles
whose ticket set is frozen for the draw, numbers already on record, earlier sales) once per
batch; :func:`judge` then runs the rules over the records in order, so a void can name a sale
earlier in the same batch and a number sold twice inside one batch is caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sync_protocol.errors import (
    AmountMismatch,
    BadAnchor,
    LeaseExpired,
    OutsideGrant,
    SaleAfterClose,
    SaleBeforeOpen,
    SaleRejected,
    TicketSetFrozen,
    TicketSoldTwice,
    UnknownRaffle,
    UnknownSale,
)
from sync_protocol.messages import SaleRecord, VoidRecord

Record = SaleRecord | VoidRecord


@dataclass(frozen=True)
class RaffleTerms:
    raffle_id: str
    currency: str
    prices: dict[int, int]
    sales_open_at_ms: int
    sales_close_at_ms: int
    status: str


@dataclass
class KnownSale:
    device_id: str
    raffle_id: str
    accepted: bool
    voided: bool


@dataclass
class BatchContext:
    device_id: str
    now_ms: int
    skew_ms: int
    lease_s: int
    raffles: dict[str, RaffleTerms]
    grants: dict[str, list[tuple[int, int]]]
    anchors: set[int]
    #: raffles whose ticket set is frozen for the draw (RECONCILED or later)
    frozen: set[str] = field(default_factory=set)
    taken: dict[tuple[str, int], str] = field(default_factory=dict)
    sales: dict[str, KnownSale] = field(default_factory=dict)


class Rule(Protocol):
    def __call__(self, record: Record, ctx: BatchContext) -> SaleRejected | None: ...


def _where(record: Record) -> dict[str, object]:
    return {"seq": record.seq, "sale_id": record.sale_id}


def known_raffle(record: Record, ctx: BatchContext) -> SaleRejected | None:
    if record.raffle_id not in ctx.raffles:
        return UnknownRaffle(
            f"record {record.seq} names raffle {record.raffle_id}, unknown at this venue", **_where(record)
        )
    return None


def anchor_issued(record: Record, ctx: BatchContext) -> SaleRejected | None:
    if record.anchor_ms not in ctx.anchors:
        return BadAnchor(
            f"record {record.seq} counts its time from {record.anchor_ms}, a time this server never gave the device",
            **_where(record),
        )
    if record.anchored_time_ms > ctx.now_ms + ctx.skew_ms:
        return BadAnchor(f"record {record.seq} claims a time in the future", **_where(record))
    return None


def within_lease(record: Record, ctx: BatchContext) -> SaleRejected | None:
    if record.elapsed_ms > ctx.lease_s * 1000:
        hours = record.elapsed_ms / 3_600_000
        return LeaseExpired(
            f"record {record.seq} was made {hours:.1f} h after the device's last sync; the offline lease is "
            f"{ctx.lease_s / 3600:g} h",
            **_where(record),
        )
    return None


def sales_window(record: Record, ctx: BatchContext) -> SaleRejected | None:
    terms = ctx.raffles[record.raffle_id]
    when = record.anchored_time_ms
    if terms.status == "cancelled" or when >= terms.sales_close_at_ms:
        return SaleAfterClose(f"record {record.seq} was sold after raffle {record.raffle_id} closed", **_where(record))
    if when < terms.sales_open_at_ms:
        return SaleBeforeOpen(f"record {record.seq} was sold before raffle {record.raffle_id} opened", **_where(record))
    return None


def within_grant(record: Record, ctx: BatchContext) -> SaleRejected | None:
    assert isinstance(record, SaleRecord)
    ranges = ctx.grants.get(record.raffle_id, [])
    for number in record.numbers:
        for first, last in ranges:
            if first <= number <= last:
                break
        else:
            return OutsideGrant(
                f"record {record.seq} sells number {number}, outside every grant of the device",
                number=number,
                **_where(record),
            )
    return None


def price_matches(record: Record, ctx: BatchContext) -> SaleRejected | None:
    assert isinstance(record, SaleRecord)
    terms = ctx.raffles[record.raffle_id]
    expected = terms.prices.get(len(record.numbers))
    if record.currency.upper() != terms.currency or expected != record.amount_cents:
        what = f"{expected} {terms.currency}" if expected is not None else "not a price point"
        return AmountMismatch(
            f"record {record.seq} charges {record.amount_cents} {record.currency} for {len(record.numbers)} "
            f"ticket(s); the raffle says {what}",
            **_where(record),
        )
    return None


def not_sold_twice(record: Record, ctx: BatchContext) -> SaleRejected | None:
    assert isinstance(record, SaleRecord)
    seen: set[int] = set()
    for number in record.numbers:
        owner = ctx.taken.get((record.raffle_id, number))
        if number in seen or (owner is not None and owner != record.sale_id):
            return TicketSoldTwice(
                f"record {record.seq} sells number {number}, already sold", number=number, **_where(record)
            )
        seen.add(number)
    return None


def void_target(record: Record, ctx: BatchContext) -> SaleRejected | None:
    assert isinstance(record, VoidRecord)
    target = ctx.sales.get(record.voids)
    if target is None or target.device_id != record.device_id or target.raffle_id != record.raffle_id:
        return UnknownSale(f"void {record.seq} names sale {record.voids}, not a sale of this device", **_where(record))
    if not target.accepted or target.voided:
        return UnknownSale(
            f"void {record.seq}: sale {record.voids} is already voided or was rejected", **_where(record)
        )
    return None


def ticket_set_open(record: Record, ctx: BatchContext) -> SaleRejected | None:
    """Checked last: a sale or void breaking no other rule still cannot change a frozen ticket set."""
    if record.raffle_id in ctx.frozen:
        what = "sale" if isinstance(record, SaleRecord) else "void"
        return TicketSetFrozen(
            f"{what} {record.seq}: the ticket set of raffle {record.raffle_id} is frozen for its draw",
            **_where(record),
        )
    return None


SALE_RULES: Sequence[Rule] = (
    known_raffle,
    anchor_issued,
    within_lease,
    sales_window,
    within_grant,
    price_matches,
    not_sold_twice,
    ticket_set_open,
)
VOID_RULES: Sequence[Rule] = (known_raffle, anchor_issued, void_target, ticket_set_open)


def judge(records: Sequence[Record], ctx: BatchContext) -> list[SaleRejected | None]:
    """The verdict on each record in order (``None`` = accepted); updates ``ctx`` as it goes."""
    verdicts: list[SaleRejected | None] = []
    for record in records:
        verdict = None
        for rule in SALE_RULES if isinstance(record, SaleRecord) else VOID_RULES:
            verdict = rule(record, ctx)
            if verdict is not None:
                break
        verdicts.append(verdict)
        if isinstance(record, SaleRecord):
            ctx.sales[record.sale_id] = KnownSale(record.device_id, record.raffle_id, verdict is None, False)
            if verdict is None:
                for number in record.numbers:
                    ctx.taken[(record.raffle_id, number)] = record.sale_id
        elif verdict is None:
            ctx.sales[record.voids].voided = True
    return verdicts
