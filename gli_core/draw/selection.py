"""Winner selection: a deterministic function of the VRF output ``beta``, the tickets and the prizes.

Nothing here draws randomness: every choice is read from one stream keyed by ``beta``, so anyone
holding the draw proof re-derives the same winners (``docs/draw-proof.md`` is the normative
description; this docstring is its summary).

**Stream.** ``SHAKE-256(b"tombola/draw-stream/v1\\x00" || beta)``, an extendable output read
strictly in order from its first byte. Nothing else reads it and no byte is skipped:
:attr:`DrawStream.consumed` is the number of bytes read so far.

**randbelow(n)** (``n >= 1``): ``bits = (n - 1).bit_length()`` (that is ceil(log2 n)); ``n == 1``
reads nothing and gives 0. Otherwise read ``ceil(bits / 8)`` bytes, take them as a big-endian
integer, keep the low ``bits`` bits (``& (2**bits - 1)``, dropping the high bits of the first
byte) and return the value if it is ``< n``; else discard it and read the next
``ceil(bits / 8)`` bytes (rejection sampling: every value in ``[0, n)`` is equally likely, no
modulo bias). Each attempt succeeds with probability ``n / 2**bits > 1/2``.

**Without replacement: partial Fisher-Yates.** The ``N`` eligible tickets are sorted by ticket
number (ascending, numbers unique); a virtual array ``a = [0, 1, ..., N - 1]`` of their
positions. Draw ``i`` (``i = 0, 1, 2, ...``, counted across all tiers and redraws) takes
``j = i + randbelow(N - i)``, swaps ``a[i]`` and ``a[j]`` and selects the ticket at sorted
position ``a[i]``. Selected tickets never come back; a ticket is selected at most once per draw.
(:class:`Drawer` stores only the swapped entries, so memory is proportional to the winners.)

**Tiers in order.** The prize table is a list; tier 0 takes draws ``0 .. count0 - 1``, tier 1
the next ``count1`` draws, and so on. Within a tier, the winners are in the order drawn.

**Amounts.** ``fixed``: ``amount_cents`` per winner. ``percent_of_sales``:
``floor(gross_sales_cents * percent / 100)`` per winner (integer arithmetic, rounded down to the
cent; ``percent`` is an integer 1-100). Selection takes ``gross_sales_cents`` as given; the proof
fixes it as the sum of the eligible tickets' ``amount_cents`` and its verifier checks that.

**Redraws.** A declined or unclaimed prize is redrawn by the next draw of the same stream, after
every original winner (and after earlier redraws): redraw ``r`` (0-based) is draw
``sum(counts) + r``. The replaced ticket must hold a prize of the named tier at that point (an
original winner, or the winner of an earlier redraw of that tier); the reason is recorded. So the
order of replacements is fixed at the draw, like a list of alternates: the operator cannot pick
who gets a redrawn prize, and a verifier replays redraws from the proof alone.

This module never uses :mod:`random`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter, lt
from typing import Any, NamedTuple, overload

from gli_core.errors import CoreError

__all__ = [
    "KIND_FIXED",
    "KIND_PERCENT",
    "STREAM_DOMAIN",
    "DrawInputInvalid",
    "DrawStream",
    "DrawTicket",
    "Drawer",
    "NotEnoughTickets",
    "Redraw",
    "RedrawRequest",
    "Selection",
    "TicketList",
    "Tier",
    "Winner",
    "check_tickets",
    "parse_prize_table",
    "randbelow",
    "redraw",
    "select",
]

STREAM_DOMAIN = b"tombola/draw-stream/v1\x00"
KIND_FIXED = "fixed"
KIND_PERCENT = "percent_of_sales"
MAX_JSON_INT = 2**53 - 1
MAX_REASON = 500
_VALUE_KEY = {KIND_FIXED: "amount_cents", KIND_PERCENT: "percent"}


class DrawInputInvalid(CoreError):
    """A prize table, ticket list or redraw request that a draw cannot use."""

    code = "draw_input_invalid"
    status = 422


class NotEnoughTickets(CoreError):
    """The prizes (with redraws) need more distinct tickets than were sold."""

    code = "draw_not_enough_tickets"
    status = 409


class DrawTicket(NamedTuple):
    """An eligible (sold, not voided or refunded) ticket, as the draw and its proof see it.

    ``amount_cents`` is the ticket's share of its sale's amount (``core_ticket.amount_cents``);
    it is in the ticket's Merkle leaf, and the gross sales of a draw are the sum over its tickets.
    """

    number: int
    ticket_id: str
    sale_id: str
    amount_cents: int = 0


def _is_int(value: object) -> bool:
    return type(value) is int


def check_tickets(tickets: Sequence[DrawTicket]) -> None:
    """The tickets are sorted by unique integer number in ``[0, 2**53)``, ids non-empty strings,
    amounts integers in ``[0, 2**53)``.

    Raises:
        DrawInputInvalid: otherwise; ``index`` names the first offending ticket when known.
    """
    numbers = list(map(itemgetter(0), tickets))
    if not set(map(type, numbers)) <= {int}:
        bad = next(i for i, x in enumerate(numbers) if not _is_int(x))
        raise DrawInputInvalid(f"ticket {bad}: the number is not an integer", index=bad)
    if numbers and (numbers[0] < 0 or numbers[-1] > MAX_JSON_INT):
        bad = 0 if numbers[0] < 0 else len(numbers) - 1
        raise DrawInputInvalid("ticket numbers must be in [0, 2**53)", index=bad)
    if not all(map(lt, numbers, numbers[1:])):
        bad = next(i for i in range(1, len(numbers)) if not numbers[i - 1] < numbers[i])
        raise DrawInputInvalid(
            f"tickets must be sorted by number without repeats: {numbers[bad - 1]} then {numbers[bad]}", index=bad
        )
    for column, name in ((1, "ticket_id"), (2, "sale_id")):
        values = list(map(itemgetter(column), tickets))
        if not set(map(type, values)) <= {str}:
            bad = next(i for i, v in enumerate(values) if type(v) is not str)
            raise DrawInputInvalid(f"ticket {bad}: {name} is not a string", index=bad)
        if not all(map(len, values)):
            bad = next(i for i, v in enumerate(values) if not v)
            raise DrawInputInvalid(f"ticket {bad}: {name} is empty", index=bad)
    amounts = list(map(itemgetter(3), tickets))
    if not set(map(type, amounts)) <= {int}:
        bad = next(i for i, x in enumerate(amounts) if not _is_int(x))
        raise DrawInputInvalid(f"ticket {bad}: amount_cents is not an integer", index=bad)
    if amounts and not (min(amounts) >= 0 and max(amounts) <= MAX_JSON_INT):
        bad = next(i for i, x in enumerate(amounts) if not 0 <= x <= MAX_JSON_INT)
        raise DrawInputInvalid(f"ticket {bad}: amount_cents must be in [0, 2**53)", index=bad)


class TicketList(Sequence[DrawTicket]):
    """The eligible tickets of a draw, checked once when made (:func:`check_tickets`).

    Every function of :mod:`gli_core.draw` that takes tickets accepts a plain sequence and
    checks it; given a :class:`TicketList` it skips the check (a million tickets take about a
    tenth of a second to check).
    """

    __slots__ = ("_items",)

    def __init__(self, tickets: Iterable[DrawTicket]) -> None:
        items = list(tickets)
        check_tickets(items)
        self._items = items

    @classmethod
    def of(cls, tickets: Sequence[DrawTicket]) -> TicketList:
        """``tickets`` itself when it is a :class:`TicketList`, else a checked copy."""
        return tickets if isinstance(tickets, TicketList) else cls(tickets)

    @overload
    def __getitem__(self, index: int) -> DrawTicket: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[DrawTicket]: ...

    def __getitem__(self, index: int | slice) -> DrawTicket | Sequence[DrawTicket]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[DrawTicket]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TicketList):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class DrawStream:
    """``SHAKE-256(STREAM_DOMAIN || beta)`` read strictly in order (see the module docstring)."""

    def __init__(self, beta: bytes) -> None:
        self._xof = hashlib.shake_256(STREAM_DOMAIN + beta)
        self._buffer = b""
        self._consumed = 0

    @property
    def consumed(self) -> int:
        """Bytes of the stream read so far."""
        return self._consumed

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes of the stream."""
        end = self._consumed + size
        if end > len(self._buffer):
            # SHAKE output is prefix-stable: digest(m)[:l] == digest(l) for l <= m.
            self._buffer = self._xof.digest(max(end, 2 * len(self._buffer), 64))
        out = self._buffer[self._consumed : end]
        self._consumed = end
        return out


def randbelow(stream: DrawStream, n: int) -> int:
    """A uniform integer in ``[0, n)`` from ``stream`` by masking and rejection (module docstring)."""
    if n < 1:
        raise ValueError("randbelow needs n >= 1")
    bits = (n - 1).bit_length()
    if bits == 0:
        return 0
    size = (bits + 7) // 8
    mask = (1 << bits) - 1
    while True:
        value = int.from_bytes(stream.read(size), "big") & mask
        if value < n:
            return value


class Drawer:
    """Partial Fisher-Yates over ``ticket_count`` sorted positions, driven by the stream of ``beta``."""

    def __init__(self, beta: bytes, ticket_count: int) -> None:
        self.stream = DrawStream(beta)
        self.ticket_count = ticket_count
        self._swapped: dict[int, int] = {}
        self._draws = 0

    @property
    def draws(self) -> int:
        """How many positions have been drawn (the index of the next draw)."""
        return self._draws

    def next_position(self) -> int:
        """Draw the next ticket: its position in the sorted ticket list.

        Raises:
            NotEnoughTickets: every ticket has been drawn already.
        """
        i, n = self._draws, self.ticket_count
        if i >= n:
            raise NotEnoughTickets(f"draw {i + 1} needs more than the {n} eligible tickets", tickets=n)
        j = i + randbelow(self.stream, n - i)
        at_i = self._swapped.get(i, i)
        at_j = self._swapped.get(j, j)
        self._swapped[j] = at_i  # a[i], a[j] = a[j], a[i]; position i is final and never read again
        self._swapped.pop(i, None)
        self._draws = i + 1
        return at_j


@dataclass(frozen=True)
class Tier:
    """One line of the prize table: ``count`` prizes named ``tier``."""

    tier: str
    count: int
    kind: str
    amount_cents: int | None = None
    percent: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "tier") -> Tier:
        """Parse and check one prize-table entry.

        Raises:
            DrawInputInvalid: a member is missing, unknown, of the wrong type or out of range.
        """
        if not isinstance(data, Mapping):
            raise DrawInputInvalid(f"{where}: a prize tier is an object", field=where)
        kind = data.get("kind")
        value_key = _VALUE_KEY.get(kind) if isinstance(kind, str) else None
        if value_key is None:
            raise DrawInputInvalid(
                f"{where}.kind: {kind!r} is not 'fixed' or 'percent_of_sales'", field=f"{where}.kind"
            )
        expected = {"tier", "count", "kind", value_key}
        if set(data) != expected:
            odd = sorted(set(data) ^ expected)
            raise DrawInputInvalid(f"member {odd[0]!r} is missing or not allowed", field=f"{where}.{odd[0]}")
        name, count, value = data["tier"], data["count"], data[value_key]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise DrawInputInvalid(f"{where}.tier: a name of 1-100 characters", field=f"{where}.tier")
        if not _is_int(count) or not 1 <= count <= 1_000_000:
            raise DrawInputInvalid(f"{where}.count: an integer from 1 to 1,000,000", field=f"{where}.count")
        if kind == KIND_FIXED:
            if not _is_int(value) or not 0 <= value <= MAX_JSON_INT:
                raise DrawInputInvalid(f"{where}.amount_cents: a non-negative integer", field=f"{where}.amount_cents")
            return cls(tier=name, count=count, kind=KIND_FIXED, amount_cents=value)
        if not _is_int(value) or not 1 <= value <= 100:
            raise DrawInputInvalid(f"{where}.percent: an integer from 1 to 100", field=f"{where}.percent")
        return cls(tier=name, count=count, kind=KIND_PERCENT, percent=value)

    def to_dict(self) -> dict[str, Any]:
        """The prize-table entry as JSON (the exact members :meth:`from_dict` accepts)."""
        out: dict[str, Any] = {"tier": self.tier, "count": self.count, "kind": self.kind}
        if self.kind == KIND_FIXED:
            out["amount_cents"] = self.amount_cents
        else:
            out["percent"] = self.percent
        return out

    def amount(self, gross_sales_cents: int) -> int:
        """The prize of each winner of this tier, in cents (percent prizes rounded down)."""
        if self.kind == KIND_FIXED:
            assert self.amount_cents is not None
            return self.amount_cents
        assert self.percent is not None
        return gross_sales_cents * self.percent // 100


def parse_prize_table(table: Sequence[Mapping[str, Any] | Tier]) -> tuple[Tier, ...]:
    """Check a prize table (a non-empty list of tiers with unique names) and return its tiers.

    Raises:
        DrawInputInvalid: the table is empty, a tier is invalid, or two tiers share a name.
    """
    if not isinstance(table, list | tuple) or not table:
        raise DrawInputInvalid("the prize table is a non-empty list of tiers", field="prize_table")
    tiers = tuple(t if isinstance(t, Tier) else Tier.from_dict(t, f"prize_table[{i}]") for i, t in enumerate(table))
    names = [t.tier for t in tiers]
    if len(set(names)) != len(names):
        raise DrawInputInvalid("two prize tiers share a name", field="prize_table")
    return tiers


@dataclass(frozen=True)
class RedrawRequest:
    """Redraw the prize of ``tier`` held by ticket ``replaced_ticket_number``, for ``reason``."""

    tier: str
    replaced_ticket_number: int
    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip() or len(self.reason) > MAX_REASON:
            raise DrawInputInvalid(f"a redraw needs a reason of 1-{MAX_REASON} characters", field="reason")
        if not _is_int(self.replaced_ticket_number):
            raise DrawInputInvalid("the replaced ticket number is an integer", field="replaced_ticket_number")


@dataclass(frozen=True)
class Winner:
    """An original winner: draw ``position`` (0-based) gave ``ticket`` a prize of ``tier``."""

    tier: str
    position: int
    ticket: DrawTicket
    amount_cents: int


@dataclass(frozen=True)
class Redraw:
    """Redraw ``index``: draw ``position`` gave ``ticket`` the ``tier`` prize ``replaced`` lost."""

    index: int
    tier: str
    position: int
    replaced: DrawTicket
    reason: str
    ticket: DrawTicket
    amount_cents: int


@dataclass(frozen=True)
class Selection:
    """The outcome of a draw.

    Attributes:
        winners: the original winners, in draw order (tier by tier).
        redraws: the redraws, in the order requested.
        holders: who holds each prize after the redraws: ``winners`` with each replaced winner's
            slot taken by its redraw winner (``position`` then is the redraw's draw).
        stream_bytes: how many bytes of the stream the draw read.
    """

    winners: tuple[Winner, ...]
    redraws: tuple[Redraw, ...]
    holders: tuple[Winner, ...]
    stream_bytes: int


def _run(
    beta: bytes,
    tickets: Sequence[DrawTicket],
    tiers: Sequence[Tier],
    gross_sales_cents: int,
    requests: Sequence[RedrawRequest],
) -> Selection:
    if not isinstance(beta, bytes) or len(beta) != 32:
        raise DrawInputInvalid("beta is the 32-byte VRF output", field="beta")
    if not _is_int(gross_sales_cents) or not 0 <= gross_sales_cents <= MAX_JSON_INT:
        raise DrawInputInvalid("gross sales are a non-negative integer of cents", field="gross_sales_cents")
    tickets = TicketList.of(tickets)
    total = sum(t.count for t in tiers)
    if total + len(requests) > len(tickets):
        raise NotEnoughTickets(
            f"{total} prizes and {len(requests)} redraws need {total + len(requests)} distinct tickets; "
            f"{len(tickets)} are eligible",
            tickets=len(tickets),
        )
    drawer = Drawer(beta, len(tickets))
    winners: list[Winner] = []
    for tier in tiers:
        amount = tier.amount(gross_sales_cents)
        for _ in range(tier.count):
            position = drawer.draws
            winners.append(Winner(tier.tier, position, tickets[drawer.next_position()], amount))
    holders = list(winners)
    redraws: list[Redraw] = []
    amounts = {t.tier: t.amount(gross_sales_cents) for t in tiers}
    for index, request in enumerate(requests):
        slot = next(
            (
                s
                for s, h in enumerate(holders)
                if h.tier == request.tier and h.ticket.number == request.replaced_ticket_number
            ),
            None,
        )
        if slot is None:
            raise DrawInputInvalid(
                f"redraw {index}: ticket {request.replaced_ticket_number} holds no prize of tier {request.tier!r}",
                field=f"redraws[{index}]",
            )
        position = drawer.draws
        ticket = tickets[drawer.next_position()]
        amount = amounts[request.tier]
        redraws.append(Redraw(index, request.tier, position, holders[slot].ticket, request.reason, ticket, amount))
        holders[slot] = Winner(request.tier, position, ticket, amount)
    return Selection(tuple(winners), tuple(redraws), tuple(holders), drawer.stream.consumed)


def select(
    beta: bytes,
    tickets: Sequence[DrawTicket],
    tiers: Sequence[Mapping[str, Any] | Tier],
    *,
    gross_sales_cents: int,
    redraws: Sequence[RedrawRequest] = (),
) -> Selection:
    """Select the winners of every tier (and the redraws asked for), from ``beta`` alone.

    Args:
        beta: the 32-byte VRF output of the draw.
        tickets: the eligible tickets, sorted by number (voided and refunded ones left out).
        tiers: the prize table, in draw order.
        gross_sales_cents: gross sales of the raffle, for ``percent_of_sales`` prizes.
        redraws: redraw requests, in the order they were made.

    Raises:
        DrawInputInvalid: an input is malformed, or a redraw names a ticket that holds no prize of
            its tier.
        NotEnoughTickets: fewer eligible tickets than prizes plus redraws.
    """
    return _run(beta, tickets, parse_prize_table(tiers), gross_sales_cents, list(redraws))


def redraw(
    beta: bytes,
    tickets: Sequence[DrawTicket],
    tiers: Sequence[Mapping[str, Any] | Tier],
    *,
    gross_sales_cents: int,
    previous_redraws: Sequence[RedrawRequest],
    tier: str,
    replaced_ticket_number: int,
    reason: str,
) -> Selection:
    """:func:`select` with one more redraw appended after ``previous_redraws``.

    The new redraw is ``selection.redraws[-1]``; its ticket is the next draw of the same stream.
    """
    request = RedrawRequest(tier, replaced_ticket_number, reason)
    return select(beta, tickets, tiers, gross_sales_cents=gross_sales_cents, redraws=[*previous_redraws, request])
