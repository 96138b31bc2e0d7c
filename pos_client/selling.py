"""Selling offline: the sale rules (sans I/O) and the one-transaction sale.

The rules are small objects sharing the :class:`SaleRule` protocol; each looks at a
:class:`SaleContext` (values only: the device row, one clock reading, the raffle, the chain
head) and raises the :class:`~pos_client.errors.SaleRefused` subclass that names its code. The
device applies the same time rules the server will, on the same anchored time
(``anchor_ms + elapsed_ms``, see :mod:`pos_client.clock`), so what it sells is what the server
accepts.

:func:`sell` checks the rules, takes the lowest free numbers of the raffle's usable grants,
builds and seals the :class:`~sync_protocol.messages.SaleRecord`, and commits the record and
the numbers' consumption in one durable SQLite transaction before returning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import uuid6
from pydantic import ValidationError

from pos_client import ledger, wallet
from pos_client.clock import Clock, Reading
from pos_client.errors import (
    BadAmount,
    BadInput,
    BadPayment,
    BadQuantity,
    ClockBackwards,
    DeviceRevoked,
    LeaseExpired,
    RaffleClosed,
    SalesNotOpen,
    UnknownRaffle,
)
from pos_client.store import EnrolledDevice, Store
from sync_protocol.codes import ticket_code
from sync_protocol.messages import Payment, RaffleInfo, SaleRecord

DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60 * 1000
MAX_NUMBERS_PER_SALE = 1000
PAYMENT_METHODS = ("cash", "card")


@dataclass(frozen=True)
class SaleContext:
    """Everything the rules look at, as values."""

    device: EnrolledDevice
    now: Reading
    raffle_id: str
    raffle: RaffleInfo | None
    last_device_time_ms: int | None
    clock_tolerance_ms: int = DEFAULT_CLOCK_TOLERANCE_MS

    @property
    def elapsed_ms(self) -> int:
        return self.device.anchor.elapsed_ms(self.now)

    @property
    def server_now_ms(self) -> int:
        """The anchored time a record made now carries: ``anchor_ms + elapsed_ms``."""
        return self.device.anchor.server_time_ms + self.elapsed_ms


class SaleRule(Protocol):
    """One check; raises the refusal that names its code."""

    def check(self, ctx: SaleContext) -> None: ...


class DeviceActive:
    """A revoked device sells nothing (it may still sync what it sold)."""

    def check(self, ctx: SaleContext) -> None:
        if ctx.device.revoked:
            raise DeviceRevoked(f"device {ctx.device.device_id} was revoked by the server: it may not sell")


class ClockForward:
    """The wall clock may not be earlier than a time already recorded, beyond the tolerance.

    The reference is the later of the last record's ``device_time_ms`` and the wall clock
    reading taken when the current anchor arrived.
    """

    def check(self, ctx: SaleContext) -> None:
        reference = max(ctx.last_device_time_ms or 0, ctx.device.anchor.wall_ms)
        behind = reference - ctx.now.wall_ms
        if behind > ctx.clock_tolerance_ms:
            raise ClockBackwards(
                f"the wall clock is {behind // 1000} s behind a time this device already recorded "
                f"(tolerance {ctx.clock_tolerance_ms // 1000} s): fix the clock",
                behind_ms=behind,
            )


class WithinLease:
    """No sale more than ``lease_s`` after the last server time anchor."""

    def check(self, ctx: SaleContext) -> None:
        lease_ms = ctx.device.lease_s * 1000
        if ctx.elapsed_ms > lease_ms:
            raise LeaseExpired(
                f"the offline lease of {ctx.device.lease_s} s ran out {(ctx.elapsed_ms - lease_ms) // 1000} s ago: "
                "sync before selling again",
                elapsed_ms=ctx.elapsed_ms,
            )


class KnownRaffle:
    def check(self, ctx: SaleContext) -> None:
        if ctx.raffle is None:
            raise UnknownRaffle(f"raffle {ctx.raffle_id} is not known to this device: sync first")


class BeforeClose:
    """Closed or cancelled raffles, and raffles past their close time, sell nothing."""

    def check(self, ctx: SaleContext) -> None:
        info = ctx.raffle
        if info is None:
            return
        if info.status in ("closed", "cancelled"):
            raise RaffleClosed(f"raffle {info.raffle_id} is {info.status}")
        if info.sales_close_at_ms <= ctx.server_now_ms:
            raise RaffleClosed(f"sales of raffle {info.raffle_id} closed at {info.sales_close_at_ms} (server ms)")


class AfterOpen:
    """No sale before ``sales_open_at_ms`` (a scheduled raffle whose time has come may sell)."""

    def check(self, ctx: SaleContext) -> None:
        info = ctx.raffle
        if info is not None and ctx.server_now_ms < info.sales_open_at_ms:
            raise SalesNotOpen(f"sales of raffle {info.raffle_id} open at {info.sales_open_at_ms} (server ms)")


SALE_RULES: tuple[SaleRule, ...] = (
    DeviceActive(),
    KnownRaffle(),
    ClockForward(),
    WithinLease(),
    BeforeClose(),
    AfterOpen(),
)


@dataclass(frozen=True)
class Sale:
    """A committed sale: what the receipt prints."""

    sale_id: str
    seq: int
    raffle_id: str
    numbers: list[int]
    amount_cents: int
    currency: str
    payment: str
    reference: str | None
    codes: list[str]
    hash: str
    anchored_time_ms: int


def check_payment(payment: str, reference: str | None) -> Payment:
    if payment not in PAYMENT_METHODS:
        raise BadPayment(f"payment must be one of {', '.join(PAYMENT_METHODS)}, not {payment!r}")
    if reference is not None and len(reference) > 128:
        raise BadPayment("a payment reference has at most 128 characters")
    return Payment(method=payment, reference=reference)


def sell(
    store: Store,
    clock: Clock,
    *,
    raffle_id: str,
    quantity: int,
    payment: str = "cash",
    reference: str | None = None,
    seller_id: str = "",
    amount_cents: int | None = None,
    clock_tolerance_ms: int = DEFAULT_CLOCK_TOLERANCE_MS,
) -> Sale:
    """Sell ``quantity`` numbers of ``raffle_id``; durable when this returns.

    Raises:
        SaleRefused: one of its subclasses, naming why; nothing was written.
    """
    pay = check_payment(payment, reference)
    if not 1 <= quantity <= MAX_NUMBERS_PER_SALE:
        raise BadQuantity(f"quantity must be between 1 and {MAX_NUMBERS_PER_SALE}, not {quantity}")
    if amount_cents is not None and amount_cents < 0:
        raise BadAmount(f"amount_cents must not be negative, not {amount_cents}")
    if len(seller_id) > 64:
        raise BadInput("a seller id has at most 64 characters")

    with store.write() as conn:
        device = store.enrolled_device()
        now = Reading.of(clock)
        chain = ledger.head(conn)
        info = wallet.raffle(conn, raffle_id)
        ctx = SaleContext(
            device=device,
            now=now,
            raffle_id=raffle_id,
            raffle=info,
            last_device_time_ms=chain.device_time_ms,
            clock_tolerance_ms=clock_tolerance_ms,
        )
        for rule in SALE_RULES:
            rule.check(ctx)
        assert info is not None  # KnownRaffle passed
        amount = amount_cents if amount_cents is not None else info.amount_for(quantity)
        if amount is None:
            points = ", ".join(str(p.quantity) for p in info.price_points) or "none"
            raise BadQuantity(
                f"{quantity} is not a price point of raffle {raffle_id} (price points: {points}); "
                "give the amount explicitly"
            )
        picks = wallet.pick_numbers(wallet.usable_slices(conn, raffle_id), quantity)
        numbers = [n for _, part in picks for n in part]
        try:
            record: SaleRecord = SaleRecord(
                sale_id=str(uuid6.uuid7()),
                device_id=device.device_id,
                seq=chain.seq + 1,
                raffle_id=raffle_id,
                seller_id=seller_id,
                device_time_ms=now.wall_ms,
                anchor_ms=device.anchor.server_time_ms,
                elapsed_ms=ctx.elapsed_ms,
                prev_hash=chain.hash,
                numbers=numbers,
                amount_cents=amount,
                currency=info.currency,
                payment=pay,
            ).sealed()
        except ValidationError as exc:  # pragma: no cover - inputs were checked above
            raise BadInput(f"the sale cannot be recorded: {exc.errors()[0]['msg']}") from exc
        ledger.append(conn, record)
        wallet.consume(conn, picks)

    return Sale(
        sale_id=record.sale_id,
        seq=record.seq,
        raffle_id=raffle_id,
        numbers=numbers,
        amount_cents=amount,
        currency=record.currency,
        payment=pay.method,
        reference=pay.reference,
        codes=[ticket_code(raffle_id, n, record.hash) for n in numbers],
        hash=record.hash,
        anchored_time_ms=record.anchored_time_ms,
    )
