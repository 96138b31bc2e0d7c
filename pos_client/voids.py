"""Voids: a record in the same chain that cancels an earlier sale of this device.

A void needs an enrolled, non-revoked device and a sane clock (:func:`pos_client.selling.check_device`),
then passes the rules the server judges it with (:func:`sync_protocol.rules.check_void_terms`):
a live lease, and a time before the raffle's sales close (not on a cancelled raffle). After
close a void is refused (``raffle_closed``) and the server would reject it
(``sale_after_close``): the sale stays in the draw and in the gross. A sale can be voided once;
a sale the server rejected cannot be voided (refund it). The voided numbers are never sold
again: the grant's high-water mark does not move back. A void also records the device event
``sale.voided`` (:mod:`pos_client.events`) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import uuid6

from pos_client import events, ledger, wallet
from pos_client.clock import Clock, Reading
from pos_client.errors import AlreadyRejected, AlreadyVoided, BadInput, UnknownSale
from pos_client.selling import DEFAULT_CLOCK_TOLERANCE_MS, SaleContext, check_device, local_refusal
from pos_client.store import Store
from sync_protocol import rules
from sync_protocol.messages import VoidRecord


@dataclass(frozen=True)
class Void:
    """A committed void."""

    void_id: str
    seq: int
    voids: str
    raffle_id: str
    hash: str


def decide_void(ctx: SaleContext) -> None:
    """The device's judgement of a void of a sale of raffle ``ctx.raffle_id``, sans I/O.

    The device's own checks (:func:`~pos_client.selling.check_device`), then the rules the
    server judges the void with: raffle known, lease, before close
    (:func:`sync_protocol.rules.check_void_terms`).

    Raises:
        SaleRefused: one of its subclasses (``raffle_closed`` after close...).
    """
    check_device(ctx)
    terms = ctx.terms
    verdict = rules.check_known(terms, ctx.raffle_id)
    if verdict is None and terms is not None:
        verdict = rules.check_void_terms(
            terms, at_ms=ctx.server_now_ms, elapsed_ms=ctx.elapsed_ms, lease_s=ctx.device.lease_s
        )
    if verdict is not None:
        raise local_refusal(verdict, elapsed_ms=ctx.elapsed_ms)


def void(
    store: Store,
    clock: Clock,
    *,
    sale_id: str,
    reason: str,
    seller_id: str = "",
    clock_tolerance_ms: int = DEFAULT_CLOCK_TOLERANCE_MS,
) -> Void:
    """Void sale ``sale_id`` of this device; durable when this returns.

    Raises:
        SaleRefused: one of its subclasses (``sale_not_found``, ``already_voided``...).
    """
    reason = reason.strip()
    if not 1 <= len(reason) <= 500:
        raise BadInput("a void needs a reason of 1 to 500 characters")
    if len(seller_id) > 64:
        raise BadInput("a seller id has at most 64 characters")
    with store.write() as conn:
        device = store.enrolled_device()
        row = ledger.sale_row(conn, sale_id)
        if row is None or row["kind"] != "sale":
            raise UnknownSale(f"this device made no sale {sale_id}", sale_id=sale_id)
        if row["voided_by"]:
            raise AlreadyVoided(f"sale {sale_id} was already voided by {row['voided_by']}", sale_id=sale_id)
        if row["rejected_code"]:
            raise AlreadyRejected(
                f"sale {sale_id} was rejected by the server ({row['rejected_code']}): refund it, there is nothing "
                "to void",
                sale_id=sale_id,
            )
        now = Reading.of(clock)
        chain = ledger.head(conn)
        ctx = SaleContext(
            device=device,
            now=now,
            raffle_id=row["raffle_id"],
            raffle=wallet.raffle(conn, row["raffle_id"]),
            last_device_time_ms=chain.device_time_ms,
            clock_tolerance_ms=clock_tolerance_ms,
        )
        decide_void(ctx)
        record: VoidRecord = VoidRecord(
            sale_id=str(uuid6.uuid7()),
            device_id=device.device_id,
            seq=chain.seq + 1,
            raffle_id=row["raffle_id"],
            seller_id=seller_id,
            device_time_ms=now.wall_ms,
            anchor_ms=device.anchor.server_time_ms,
            elapsed_ms=ctx.elapsed_ms,
            prev_hash=chain.hash,
            voids=sale_id,
            reason=reason,
        ).sealed()
        ledger.append(conn, record)
        ledger.mark_voided(conn, sale_id, record.sale_id)
        # GLI-31 significant event, in the void's own transaction: both are kept or neither.
        events.record(
            conn,
            store,
            clock,
            "sale.voided",
            {"sale_id": sale_id, "void_id": record.sale_id, "raffle_id": record.raffle_id, "reason": reason},
            seller_id=seller_id,
        )
    return Void(void_id=record.sale_id, seq=record.seq, voids=sale_id, raffle_id=record.raffle_id, hash=record.hash)
