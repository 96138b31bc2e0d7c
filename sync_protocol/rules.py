"""The rules a device and the server both apply to a sale or a void, written once (sans I/O).

A device refuses offline whatever the server would reject at sync, so it never takes money
the server will refuse: both sides call these functions on plain values (a raffle's
:class:`RaffleTerms`, a record's anchored time and ``elapsed_ms``, the lease, the device's
grant ranges, quantity and amount). Each returns ``None`` (the rule holds) or the one
:class:`~sync_protocol.errors.SaleRejected` that names the broken rule with the server's code
(``docs/errors.md``). The server (``server/sync/rules.py``) adds the record's ``seq`` and
``sale_id`` and answers with it; the device (``pos_client/selling.py``) turns it into its own
local refusal (``offline_lease_expired``, ``raffle_closed``...), nothing written.

What only one side can know stays on that side: the server checks that the anchor is one it
issued, that a number is not sold twice and that the ticket set is not frozen; the device
checks that it is not revoked and that its wall clock did not go back.

**The price** (:func:`sale_amount`): ``quantity`` tickets cost the amount of the price point
for that quantity (a bundle: 5 for 20.00), else ``quantity`` times the single-ticket price
(the price point of quantity 1), unless the raffle sells bundles only
(``RaffleInfo.bundles_only``), in which case only its price points may be sold. Singles stay
on sale by default (Washington WAC 230-11-025 keeps single tickets on sale beside bundles).

**The sales window** (:func:`check_window`): a sale's anchored time ``t`` must satisfy
``sales_open_at_ms <= t < sales_close_at_ms`` and the raffle must not be cancelled. A raffle's
``closed`` status is not consulted: a server closes a raffle by moving ``sales_close_at_ms``
to the moment of closing, so sales made before it still count when they sync later.

**Voids** (:func:`check_void_terms`): a void is judged at its own anchored time like a sale,
within the lease, and only before sales close (and not on a cancelled raffle). After close a
device cannot void: its sale stays in the draw and in the gross, and the operator settles with
the customer; nothing a device does after close lowers the gross.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from sync_protocol.errors import (
    AmountMismatch,
    LeaseExpired,
    OutsideGrant,
    SaleAfterClose,
    SaleBeforeOpen,
    SaleRejected,
    UnknownRaffle,
)
from sync_protocol.messages import RaffleInfo
from sync_protocol.money import format_money

#: at most this many numbers in one sale (``SaleRecord.numbers``)
MAX_NUMBERS_PER_SALE = 1000


@dataclass(frozen=True)
class RaffleTerms:
    """What the rules need of a raffle: its :class:`~sync_protocol.messages.RaffleInfo` as values.

    Attributes:
        prices: quantity -> amount in minor units, one entry per price point.
        bundles_only: only the price points may be sold (no ``quantity x`` the single price).
    """

    raffle_id: str
    currency: str
    prices: Mapping[int, int]
    sales_open_at_ms: int
    sales_close_at_ms: int
    status: str
    bundles_only: bool = False
    #: the price points' quantities, ascending (for messages)
    quantities: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))
        object.__setattr__(self, "quantities", tuple(sorted(self.prices)))

    @classmethod
    def of(cls, info: RaffleInfo) -> RaffleTerms:
        """The terms of a raffle as devices receive it (and as the server sends it)."""
        return cls(
            raffle_id=info.raffle_id,
            currency=info.currency,
            prices={p.quantity: p.amount_cents for p in info.price_points},
            sales_open_at_ms=info.sales_open_at_ms,
            sales_close_at_ms=info.sales_close_at_ms,
            status=info.status,
            bundles_only=bool(info.bundles_only),
        )


# --------------------------------------------------------------------------- the price


def sale_amount(terms: RaffleTerms, quantity: int) -> int | None:
    """What ``quantity`` tickets cost, in minor units; ``None`` when the raffle does not sell that many.

    The price point of that quantity if there is one; else, unless the raffle sells bundles
    only, ``quantity`` times the price point of quantity 1 (if the raffle has one).
    """
    if quantity < 1:
        return None
    amount = terms.prices.get(quantity)
    if amount is not None:
        return amount
    single = terms.prices.get(1)
    if terms.bundles_only or single is None:
        return None
    return quantity * single


def check_price(terms: RaffleTerms, quantity: int, amount_minor: int | None, currency: str) -> SaleRejected | None:
    """``amount_mismatch`` unless ``quantity`` tickets are for sale and cost ``amount_minor`` ``currency``.

    ``amount_minor`` ``None`` asks only whether the quantity is for sale (a device about to
    charge what :func:`sale_amount` says).
    """
    expected = sale_amount(terms, quantity)
    if expected is None:
        offered = ", ".join(map(str, terms.quantities)) or "none"
        why = "bundles only" if terms.bundles_only else "no single-ticket price"
        return AmountMismatch(
            f"raffle {terms.raffle_id} does not sell {quantity} ticket(s): it has {why} "
            f"(price points for {offered} ticket(s))"
        )
    if amount_minor is None:
        return None
    if currency.upper() != terms.currency or amount_minor != expected:
        return AmountMismatch(
            f"{quantity} ticket(s) of raffle {terms.raffle_id} cost {format_money(expected, terms.currency)}, "
            f"not {format_money(amount_minor, currency)}"
        )
    return None


# --------------------------------------------------------------------------- raffle, time, lease, grant


def check_known(terms: RaffleTerms | None, raffle_id: str) -> SaleRejected | None:
    """``unknown_raffle`` when the raffle is not one of the venue's (the device: not synced yet)."""
    if terms is None:
        return UnknownRaffle(f"raffle {raffle_id} is not known at this venue")
    return None


def check_lease(elapsed_ms: int, lease_s: int) -> SaleRejected | None:
    """``lease_expired`` when more than ``lease_s`` elapsed since the last server time anchor."""
    if elapsed_ms > lease_s * 1000:
        return LeaseExpired(
            f"made {elapsed_ms / 3_600_000:.2f} h after the last server time; the offline lease is {lease_s / 3600:g} h"
        )
    return None


def check_window(terms: RaffleTerms, at_ms: int) -> SaleRejected | None:
    """``sale_after_close`` / ``sale_before_open`` unless ``open <= at_ms < close`` on a raffle not cancelled."""
    if terms.status == "cancelled":
        return SaleAfterClose(f"raffle {terms.raffle_id} is cancelled")
    if at_ms >= terms.sales_close_at_ms:
        return SaleAfterClose(
            f"sales of raffle {terms.raffle_id} closed at {terms.sales_close_at_ms} (server ms); this is {at_ms}"
        )
    if at_ms < terms.sales_open_at_ms:
        return SaleBeforeOpen(
            f"sales of raffle {terms.raffle_id} open at {terms.sales_open_at_ms} (server ms); this is {at_ms}"
        )
    return None


def check_void_window(terms: RaffleTerms, at_ms: int) -> SaleRejected | None:
    """``sale_after_close`` for a void made at or after close, or on a cancelled raffle.

    After close the sale stays in the draw and in the gross: a void cannot lower either.
    """
    if terms.status == "cancelled" or at_ms >= terms.sales_close_at_ms:
        return SaleAfterClose(
            f"a void after sales of raffle {terms.raffle_id} closed (at {terms.sales_close_at_ms}, server ms): "
            "the sale stays in the draw"
        )
    return None


def check_grant(numbers: Sequence[int], ranges: Sequence[tuple[int, int]]) -> SaleRejected | None:
    """``outside_grant`` (with ``number``) for the first number outside every inclusive range."""
    for number in numbers:
        for first, last in ranges:
            if first <= number <= last:
                break
        else:
            return OutsideGrant(f"number {number} is outside every grant of the device", number=number)
    return None


# --------------------------------------------------------------------------- the rules in order


def check_sale_terms(
    terms: RaffleTerms,
    *,
    at_ms: int,
    elapsed_ms: int,
    lease_s: int,
    quantity: int,
    amount_minor: int | None,
    currency: str,
) -> SaleRejected | None:
    """The lease, the sales window and the price, in this order (the first broken rule)."""
    return (
        check_lease(elapsed_ms, lease_s)
        or check_window(terms, at_ms)
        or check_price(terms, quantity, amount_minor, currency)
    )


def check_void_terms(terms: RaffleTerms, *, at_ms: int, elapsed_ms: int, lease_s: int) -> SaleRejected | None:
    """The lease and the void window, in this order."""
    return check_lease(elapsed_ms, lease_s) or check_void_window(terms, at_ms)
