"""Selling offline: the device's own checks, the shared rules, and the one-transaction sale.

A device never takes money the server will refuse: before it uses a number, :func:`sell` runs
the very functions the server judges a synced sale with (:mod:`sync_protocol.rules`: raffle
known, lease, sales window, price, grant), on the same values: the raffle's terms as the
server sent them (``RaffleInfo``), the anchored time ``anchor_ms + elapsed_ms`` (see
:mod:`pos_client.clock`) and the device's grants. The device computes the amount
(:func:`sync_protocol.rules.sale_amount`); a caller may state the amount it showed the
customer, and a different amount is refused (``bad_amount``), never charged. A rule's
rejection becomes the device's own refusal code (:func:`local_refusal`, the one mapping).
Only the device can check that it is not revoked and that its wall clock did not go back
(:func:`check_device`).

:func:`decide_sale` is that whole judgement as a pure function (the property tests compare it
with the server's); :func:`sell` then takes the lowest free numbers of the raffle's usable grants, builds and seals
the :class:`~sync_protocol.messages.SaleRecord`, and commits the record and the numbers'
consumption in one durable SQLite transaction before returning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    NumbersExhausted,
    RaffleClosed,
    SaleRefused,
    SalesNotOpen,
    UnknownRaffle,
)
from pos_client.store import EnrolledDevice, Store
from sync_protocol import rules
from sync_protocol.codes import ticket_code
from sync_protocol.errors import SaleRejected
from sync_protocol.messages import Payment, RaffleInfo, SaleRecord
from sync_protocol.money import format_money
from sync_protocol.rules import MAX_NUMBERS_PER_SALE, RaffleTerms

DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60 * 1000
PAYMENT_METHODS = ("cash", "card")

__all__ = [
    "DEFAULT_CLOCK_TOLERANCE_MS",
    "MAX_NUMBERS_PER_SALE",
    "PAYMENT_METHODS",
    "Sale",
    "SaleContext",
    "SaleDecision",
    "check_device",
    "decide_sale",
    "local_refusal",
    "sell",
]


@dataclass(frozen=True)
class SaleContext:
    """What the device's checks look at, as values: the device row, one clock reading, the raffle."""

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

    @property
    def terms(self) -> RaffleTerms | None:
        return None if self.raffle is None else RaffleTerms.of(self.raffle)


#: server rejection code -> the device's refusal and what to do about it (the one mapping)
_LOCAL: dict[str, tuple[type[SaleRefused], str]] = {
    "unknown_raffle": (UnknownRaffle, "sync first"),
    "lease_expired": (LeaseExpired, "sync before selling again"),
    "sale_after_close": (RaffleClosed, ""),
    "sale_before_open": (SalesNotOpen, ""),
    "amount_mismatch": (BadAmount, ""),
    "outside_grant": (NumbersExhausted, "sync to get more"),
}


def local_refusal(
    rejection: SaleRejected, *, elapsed_ms: int | None = None, quantity_for_sale: bool = True
) -> SaleRefused:
    """The device's refusal for a shared rule's ``rejection`` (nothing written; codes in ``docs/errors.md``).

    ``lease_expired`` -> ``offline_lease_expired``, ``sale_after_close`` -> ``raffle_closed``,
    ``sale_before_open`` -> ``sales_not_open``, ``unknown_raffle`` -> ``raffle_not_known``,
    ``outside_grant`` -> ``numbers_exhausted``, ``amount_mismatch`` -> ``bad_amount``, or
    ``bad_quantity`` when the raffle does not sell that many tickets at any price
    (``quantity_for_sale`` false). ``offline_lease_expired`` carries ``elapsed_ms``.
    """
    cls, hint = _LOCAL.get(rejection.code, (SaleRefused, ""))
    if rejection.code == "amount_mismatch" and not quantity_for_sale:
        cls = BadQuantity
    extra = dict(rejection.extra)
    if cls is LeaseExpired and elapsed_ms is not None:
        extra["elapsed_ms"] = elapsed_ms
    return cls(f"{rejection.detail}: {hint}" if hint else rejection.detail, **extra)


def check_device(ctx: SaleContext) -> None:
    """The checks only a device can make: not revoked, and a wall clock that did not go back.

    The clock's reference is the later of the last record's ``device_time_ms`` and the wall
    clock reading taken when the current anchor arrived; ``clock_tolerance_ms`` is allowed.

    Raises:
        DeviceRevoked: the server revoked this device (it may still sync what it sold).
        ClockBackwards: the wall clock is behind a time already recorded, beyond the tolerance.
    """
    if ctx.device.revoked:
        raise DeviceRevoked(f"device {ctx.device.device_id} was revoked by the server: it may not sell")
    reference = max(ctx.last_device_time_ms or 0, ctx.device.anchor.wall_ms)
    behind = reference - ctx.now.wall_ms
    if behind > ctx.clock_tolerance_ms:
        raise ClockBackwards(
            f"the wall clock is {behind // 1000} s behind a time this device already recorded "
            f"(tolerance {ctx.clock_tolerance_ms // 1000} s): fix the clock",
            behind_ms=behind,
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

    @property
    def amount(self) -> str:
        """The amount as people read it: ``15.00 USD``."""
        return format_money(self.amount_cents, self.currency)


def check_payment(payment: str, reference: str | None) -> Payment:
    if payment not in PAYMENT_METHODS:
        raise BadPayment(f"payment must be one of {', '.join(PAYMENT_METHODS)}, not {payment!r}")
    if reference is not None and len(reference) > 128:
        raise BadPayment("a payment reference has at most 128 characters")
    return Payment(method=payment, reference=reference)


@dataclass(frozen=True)
class SaleDecision:
    """What the device decided to sell: the numbers (from which grants), the amount, the currency."""

    picks: list[tuple[wallet.GrantSlice, list[int]]]
    amount_cents: int
    currency: str

    @property
    def numbers(self) -> list[int]:
        return [n for _, part in self.picks for n in part]


def decide_sale(
    ctx: SaleContext, slices: Sequence[wallet.GrantSlice], *, quantity: int, amount_cents: int | None = None
) -> SaleDecision:
    """The device's whole judgement of a sale, sans I/O: what it sells, or why not.

    In the server's order: the quantity's range, the device's own checks (:func:`check_device`),
    then the shared rules (raffle known, lease, sales window, price), then the numbers: the
    ``quantity`` lowest free ones of ``slices`` (the raffle's usable grants), inside a grant.

    Raises:
        SaleRefused: one of its subclasses, naming why.
    """
    if not 1 <= quantity <= MAX_NUMBERS_PER_SALE:
        raise BadQuantity(f"quantity must be between 1 and {MAX_NUMBERS_PER_SALE}, not {quantity}")
    check_device(ctx)
    terms = ctx.terms
    unknown = rules.check_known(terms, ctx.raffle_id)
    if unknown is not None:
        raise local_refusal(unknown)
    assert terms is not None
    elapsed = ctx.elapsed_ms
    verdict = rules.check_sale_terms(
        terms,
        at_ms=ctx.server_now_ms,
        elapsed_ms=elapsed,
        lease_s=ctx.device.lease_s,
        quantity=quantity,
        amount_minor=amount_cents,
        currency=terms.currency,
    )
    amount = rules.sale_amount(terms, quantity)
    if verdict is not None:
        raise local_refusal(verdict, elapsed_ms=elapsed, quantity_for_sale=amount is not None)
    assert amount is not None  # the price rule passed
    picks = wallet.pick_numbers(slices, quantity, ctx.raffle.no_grant if ctx.raffle is not None else None)
    verdict = rules.check_grant(
        [n for _, part in picks for n in part], [(s.next_number, s.last_number) for s in slices]
    )
    if verdict is not None:  # pragma: no cover - the wallet picks inside its grants
        raise local_refusal(verdict)
    return SaleDecision(picks=picks, amount_cents=amount, currency=terms.currency)


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
    """Sell ``quantity`` numbers of ``raffle_id`` at the raffle's price; durable when this returns.

    The amount is :func:`sync_protocol.rules.sale_amount`: the price point of ``quantity``, or
    ``quantity`` times the single price unless the raffle sells bundles only. ``amount_cents``,
    when given, is the amount the caller showed the customer: a sale at any other amount is
    refused (``bad_amount``), since the server would reject it.

    Raises:
        SaleRefused: one of its subclasses, naming why; nothing was written.
    """
    pay = check_payment(payment, reference)
    if len(seller_id) > 64:
        raise BadInput("a seller id has at most 64 characters")

    with store.write() as conn:
        device = store.enrolled_device()
        now = Reading.of(clock)
        chain = ledger.head(conn)
        ctx = SaleContext(
            device=device,
            now=now,
            raffle_id=raffle_id,
            raffle=wallet.raffle(conn, raffle_id),
            last_device_time_ms=chain.device_time_ms,
            clock_tolerance_ms=clock_tolerance_ms,
        )
        decision = decide_sale(ctx, wallet.usable_slices(conn, raffle_id), quantity=quantity, amount_cents=amount_cents)
        numbers, amount, currency, elapsed = decision.numbers, decision.amount_cents, decision.currency, ctx.elapsed_ms
        try:
            record: SaleRecord = SaleRecord(
                sale_id=str(uuid6.uuid7()),
                device_id=device.device_id,
                seq=chain.seq + 1,
                raffle_id=raffle_id,
                seller_id=seller_id,
                device_time_ms=now.wall_ms,
                anchor_ms=device.anchor.server_time_ms,
                elapsed_ms=elapsed,
                prev_hash=chain.hash,
                numbers=numbers,
                amount_cents=amount,
                currency=currency,
                payment=pay,
            ).sealed()
        except ValidationError as exc:  # pragma: no cover - inputs were checked above
            raise BadInput(f"the sale cannot be recorded: {exc.errors()[0]['msg']}") from exc
        ledger.append(conn, record)
        wallet.consume(conn, decision.picks)

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
