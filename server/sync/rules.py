"""The server's judging of a batch: the shared rules of :mod:`sync_protocol.rules` (the very
functions a device runs before it sells) plus what only the server knows (anchors it issued,
numbers already sold, frozen ticket sets, earlier sales a void names).

Each rule takes a record and the batch context and returns the rejection it deserves, or
``None``; a shared rule's rejection gets the record's ``seq`` and ``sale_id``. The server
gathers the context (raffles, the device's grants and time anchors, the raffles whose ticket
set is frozen for the draw, numbers already on record, earlier sales) once per batch;
:func:`judge` then runs the rules over the records in order, so a void can name a sale
earlier in the same batch and a number sold twice inside one batch is caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sync_protocol import rules
from sync_protocol.errors import (
    BadAnchor,
    SaleRejected,
    TicketSetFrozen,
    TicketSoldTwice,
    UnknownSale,
)
from sync_protocol.messages import SaleRecord, VoidRecord
from sync_protocol.rules import RaffleTerms

__all__ = ["BatchContext", "KnownSale", "RaffleTerms", "Record", "Rule", "judge"]

Record = SaleRecord | VoidRecord


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


def _at(record: Record, rejection: SaleRejected | None) -> SaleRejected | None:
    """A shared rule's rejection, named for ``record`` (its ``seq`` and ``sale_id``)."""
    if rejection is None:
        return None
    return type(rejection)(f"record {record.seq}: {rejection.detail}", **rejection.extra, **_where(record))


def known_raffle(record: Record, ctx: BatchContext) -> SaleRejected | None:
    return _at(record, rules.check_known(ctx.raffles.get(record.raffle_id), record.raffle_id))


def anchor_issued(record: Record, ctx: BatchContext) -> SaleRejected | None:
    if record.anchor_ms not in ctx.anchors:
        return BadAnchor(
            f"record {record.seq} counts its time from {record.anchor_ms}, a time this server never gave the device",
            **_where(record),
        )
    if record.anchored_time_ms > ctx.now_ms + ctx.skew_ms:
        return BadAnchor(f"record {record.seq} claims a time in the future", **_where(record))
    return None


def sale_terms(record: Record, ctx: BatchContext) -> SaleRejected | None:
    """The lease, the sales window and the price: :func:`sync_protocol.rules.check_sale_terms`."""
    assert isinstance(record, SaleRecord)
    verdict = rules.check_sale_terms(
        ctx.raffles[record.raffle_id],
        at_ms=record.anchored_time_ms,
        elapsed_ms=record.elapsed_ms,
        lease_s=ctx.lease_s,
        quantity=len(record.numbers),
        amount_minor=record.amount_cents,
        currency=record.currency,
    )
    return _at(record, verdict)


def void_terms(record: Record, ctx: BatchContext) -> SaleRejected | None:
    """The lease and the void window (no void after close): :func:`sync_protocol.rules.check_void_terms`."""
    verdict = rules.check_void_terms(
        ctx.raffles[record.raffle_id], at_ms=record.anchored_time_ms, elapsed_ms=record.elapsed_ms, lease_s=ctx.lease_s
    )
    return _at(record, verdict)


def within_grant(record: Record, ctx: BatchContext) -> SaleRejected | None:
    assert isinstance(record, SaleRecord)
    return _at(record, rules.check_grant(record.numbers, ctx.grants.get(record.raffle_id, [])))


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
    sale_terms,
    within_grant,
    not_sold_twice,
    ticket_set_open,
)
VOID_RULES: Sequence[Rule] = (known_raffle, anchor_issued, void_terms, void_target, ticket_set_open)


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
