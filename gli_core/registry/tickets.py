"""Tickets: what the core puts on record for each sale, and their status.

I2: ``UNIQUE(raffle_id, number)`` on tickets; recording is idempotent per ``sale_id``.

The core does not trust its caller with what it records: :meth:`TicketsMixin.record` refuses,
inside its own transaction and before writing anything, a sale of a raffle that is not open
for sales at the sale's time (cancelled, sold at or after its close, before its opening), a
ticket set frozen for the draw, a number outside the raffle's number space, and a number
outside every active grant of the recording device.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dbkit import bulk_insert_rows
from gli_core.audit.entry import AuditEvent, current_actor
from gli_core.draw.proof import ticket_leaf_hash
from gli_core.draw.state_machine import FROZEN, DrawState
from gli_core.errors import (
    InvalidStatusChange,
    NumberOutsideSpace,
    NumberTaken,
    OutsideGrant,
    RaffleNotFound,
    SaleAfterClose,
    SaleBeforeOpen,
    SaleConflict,
    TicketNotFound,
    TicketSetFrozen,
)
from gli_core.ids import uuid7_batch
from gli_core.registry.base import RegistryBase
from gli_core.registry.grants import device_ranges_covering
from gli_core.registry.raffles import RaffleSpec, read_raffle
from gli_core.tables import DRAW, HOLD_DRAWS, RAFFLE, TICKET, among, among_value, chunks, now_ms
from sync_protocol.codes import ticket_codes

TICKET_STATUSES = ("sold", "voided", "refunded")
_STATUS_CHANGES = {("sold", "voided"), ("sold", "refunded"), ("voided", "refunded")}
_FROZEN_STATES = frozenset(f.value for f in FROZEN)

#: core_ticket's columns in the order :meth:`TicketsMixin.record` writes them
TICKET_COLUMNS = (
    "id",
    "raffle_id",
    "number",
    "sale_id",
    "device_id",
    "seq",
    "record_hash",
    "verification_code",
    "amount_cents",
    "status",
    "recorded_at_ms",
    "leaf_hash",
)
_TENANTS_OF_RAFFLES = select(RAFFLE.c.id, RAFFLE.c.tenant).where(
    RAFFLE.c.id.in_(bindparam("raffle_ids", expanding=True))
)
#: what recording a sale checks of its raffle
_RAFFLE_TERMS = select(
    RAFFLE.c.id, RAFFLE.c.status, RAFFLE.c.number_space, RAFFLE.c.sales_open_at_ms, RAFFLE.c.sales_close_at_ms
).where(RAFFLE.c.id.in_(bindparam("raffle_ids", expanding=True)))


# Statements built once per dialect (building a SQLAlchemy statement costs more CPU than
# running a prepared one).
@functools.cache
def _numbers_taken_stmt(dialect: str) -> Any:
    return select(TICKET.c.number, TICKET.c.sale_id).where(
        and_(TICKET.c.raffle_id == bindparam("raffle_id"), among(dialect, TICKET.c.number, "numbers"))
    )


@functools.cache
def _recorded_numbers_stmt(dialect: str) -> Any:
    return select(TICKET.c.sale_id, TICKET.c.number).where(among(dialect, TICKET.c.sale_id, "sale_ids"))


@dataclass(frozen=True)
class TicketSale:
    """The tickets of one sale record to put on record.

    ``sold_at_ms`` is when the sale was made, on the server's clock (a device's sale: its
    anchored time, ``anchor_ms + elapsed_ms``); the core refuses a sale made outside the raffle's
    sales window. ``None``: the sale is made now (the online channel).
    """

    sale_id: str
    device_id: str
    seq: int
    raffle_id: str
    numbers: tuple[int, ...]
    record_hash: str
    amount_cents: int = 0
    sold_at_ms: int | None = None

    def ticket_amounts(self) -> list[int]:
        """The sale's amount split over its tickets: equal shares, the remainder cents on the first."""
        share, rest = divmod(self.amount_cents, len(self.numbers))
        return [share + rest] + [share] * (len(self.numbers) - 1)


@dataclass(frozen=True)
class TicketView:
    id: str
    raffle_id: str
    number: int
    sale_id: str
    device_id: str
    seq: int
    verification_code: str
    status: str
    recorded_at_ms: int

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RecordResult:
    recorded_sales: int
    recorded_tickets: int
    duplicate_sales: int
    voided_tickets: int


_DRAW_STATE = select(DRAW.c.state).where(DRAW.c.raffle_id == bindparam("raffle_id"))
_BY_NUMBER = select(TICKET).where(
    and_(TICKET.c.raffle_id == bindparam("raffle_id"), TICKET.c.number == bindparam("number"))
)


def _ticket_view(row: object) -> TicketView:
    m = row._mapping  # type: ignore[attr-defined]
    return TicketView(
        id=m["id"],
        raffle_id=m["raffle_id"],
        number=m["number"],
        sale_id=m["sale_id"],
        device_id=m["device_id"],
        seq=m["seq"],
        verification_code=m["verification_code"],
        status=m["status"],
        recorded_at_ms=m["recorded_at_ms"],
    )


def numbers_taken(conn: Connection, raffle_id: str, numbers: Iterable[int]) -> dict[int, str]:
    """Which of ``numbers`` are recorded already, and by which sale."""
    wanted = sorted(set(numbers))
    taken: dict[int, str] = {}
    stmt = _numbers_taken_stmt(conn.dialect.name)
    for chunk in chunks(conn, wanted, 5000):
        rows = conn.execute(stmt, {"raffle_id": raffle_id, "numbers": among_value(conn, chunk)})
        taken.update({r.number: r.sale_id for r in rows})
    return taken


def _recorded_numbers(conn: Connection, sale_ids: Sequence[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    stmt = _recorded_numbers_stmt(conn.dialect.name)
    for chunk in chunks(conn, sale_ids, 1000):
        rows = conn.execute(stmt, {"sale_ids": among_value(conn, chunk)})
        for r in rows:
            found.setdefault(r.sale_id, []).append(r.number)
    for numbers in found.values():
        numbers.sort()
    return found


def _hold_draws(conn: Connection, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str]) -> set[str]:
    """Hold the draw rows of the raffles touched FOR SHARE; refuse if one is frozen; return the
    raffles whose draw is cancelled.

    The freeze (``DrawService.initiate``) reads the ticket set and moves to RECONCILED under
    ``FOR UPDATE`` on the same row, and the cancel changes the row, so a recording never
    interleaves with either: the tickets are in the frozen set, or refused with
    ``ticket_set_frozen``; they were recorded before the cancel, or are refused after it.
    """
    raffle_ids = {s.raffle_id for s in sales}
    for start in range(0, len(voided_sale_ids), 1000):
        raffle_ids.update(
            conn.execute(
                select(TICKET.c.raffle_id)
                .where(TICKET.c.sale_id.in_(list(voided_sale_ids[start : start + 1000])))
                .distinct()
            ).scalars()
        )
    if not raffle_ids:
        return set()
    rows = conn.execute(HOLD_DRAWS, {"raffle_ids": sorted(raffle_ids)}).all()
    frozen = sorted(r.raffle_id for r in rows if r.state in _FROZEN_STATES)
    if frozen:
        raise TicketSetFrozen(f"the ticket set of {', '.join(frozen)} is frozen for the draw")
    return {r.raffle_id for r in rows if r.state == DrawState.CANCELLED.value}


def _refuse_unsellable(conn: Connection, sales: Sequence[TicketSale], cancelled: set[str], now: int) -> None:
    """Refuse the recording if one of ``sales`` (not on record yet) breaks a rule of the core.

    Raises:
        RaffleNotFound: the core has no such raffle.
        SaleAfterClose: the raffle is cancelled, or the sale was made at or after its close.
        SaleBeforeOpen: the sale was made before the raffle's sales opened.
        NumberOutsideSpace: a number is not in ``1..number_space``.
        OutsideGrant: a number is outside every active grant of the sale's device for the raffle.
    """
    if not sales:
        return
    terms = {r.id: r for r in conn.execute(_RAFFLE_TERMS, {"raffle_ids": sorted({s.raffle_id for s in sales})})}
    by_holder: dict[tuple[str, str], set[int]] = {}
    for sale in sales:
        raffle = terms.get(sale.raffle_id)
        if raffle is None:
            raise RaffleNotFound(f"raffle {sale.raffle_id} is not known to the core", sale_id=sale.sale_id)
        when = now if sale.sold_at_ms is None else sale.sold_at_ms
        if raffle.status == "cancelled" or sale.raffle_id in cancelled:
            raise SaleAfterClose(
                f"sale {sale.sale_id}: raffle {sale.raffle_id} is cancelled; the core records no sale of it",
                sale_id=sale.sale_id,
            )
        if raffle.status not in ("open", "closed") or when >= raffle.sales_close_at_ms:
            raise SaleAfterClose(
                f"sale {sale.sale_id} was made at {when}, at or after raffle {sale.raffle_id} closed "
                f"({raffle.sales_close_at_ms}); the core records no sale made after its close",
                sale_id=sale.sale_id,
            )
        if when < raffle.sales_open_at_ms:
            raise SaleBeforeOpen(
                f"sale {sale.sale_id} was made at {when}, before raffle {sale.raffle_id} opened "
                f"({raffle.sales_open_at_ms})",
                sale_id=sale.sale_id,
            )
        outside = [n for n in sale.numbers if not 1 <= n <= raffle.number_space]
        if outside:
            raise NumberOutsideSpace(
                f"sale {sale.sale_id} names number {outside[0]}, outside the number space 1..{raffle.number_space} "
                f"of raffle {sale.raffle_id}",
                sale_id=sale.sale_id,
                number=outside[0],
            )
        by_holder.setdefault((sale.raffle_id, sale.device_id), set()).update(sale.numbers)
    for (raffle_id, device_id), numbers in sorted(by_holder.items()):
        wanted = sorted(numbers)
        ranges = device_ranges_covering(conn, raffle_id, device_id, wanted[0], wanted[-1])
        i = 0
        for number in wanted:  # both sorted: one pass
            while i < len(ranges) and ranges[i][1] < number:
                i += 1
            if i == len(ranges) or number < ranges[i][0]:
                sale = next(s for s in sales if s.raffle_id == raffle_id and number in s.numbers)
                raise OutsideGrant(
                    f"sale {sale.sale_id} names number {number} of raffle {raffle_id}, outside every active grant "
                    f"of device {device_id}",
                    sale_id=sale.sale_id,
                    number=number,
                )


class TicketsMixin(RegistryBase):
    """Recording sales and voids, reading tickets, changing a ticket's status."""

    def record(
        self, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str] = (), at_ms: int | None = None
    ) -> RecordResult:
        """Put sales on record and void tickets, all in one transaction; idempotent per sale id.

        Refuses the whole recording, writing nothing, when a sale not on record yet breaks one of
        the core's rules (see :func:`_refuse_unsellable`) or a raffle touched is frozen for its
        draw (:class:`TicketSetFrozen`, voids included).
        """
        recorded_at = at_ms if at_ms is not None else now_ms()
        with self.engine.begin() as conn:
            cancelled = _hold_draws(conn, sales, voided_sale_ids)
            existing = _recorded_numbers(conn, [s.sale_id for s in sales])
            new: list[TicketSale] = []
            duplicates = 0
            for sale in sales:
                if sale.sale_id in existing:
                    if existing[sale.sale_id] != sorted(sale.numbers):
                        raise SaleConflict(f"sale {sale.sale_id} is on record with other numbers")
                    duplicates += 1
                    continue
                new.append(sale)
            _refuse_unsellable(conn, new, cancelled, recorded_at)
            ids = iter(uuid7_batch(sum(len(s.numbers) for s in new)))
            rows: list[tuple[object, ...]] = []
            for sale in new:
                sale_id, raffle_id, record_hash = sale.sale_id, sale.raffle_id, sale.record_hash
                codes = ticket_codes(raffle_id, sale.numbers, record_hash)
                for number, amount, code in zip(sale.numbers, sale.ticket_amounts(), codes, strict=True):
                    ticket_id = next(ids)
                    rows.append(
                        (
                            ticket_id,
                            raffle_id,
                            number,
                            sale_id,
                            sale.device_id,
                            sale.seq,
                            record_hash,
                            code,
                            amount,
                            "sold",
                            recorded_at,
                            # the draw's leaf hash, so freezing hashes no leaf (checked again at execute)
                            ticket_leaf_hash(number, ticket_id, sale_id, amount),
                        )
                    )
            try:
                bulk_insert_rows(conn, TICKET, TICKET_COLUMNS, rows)
            except IntegrityError as exc:  # UNIQUE(raffle_id, number): the transaction rolls back
                raise NumberTaken("a ticket number of this recording is on record already") from exc
            voided = 0
            for start in range(0, len(voided_sale_ids), 1000):
                voided += conn.execute(
                    update(TICKET)
                    .where(
                        and_(
                            TICKET.c.sale_id.in_(list(voided_sale_ids[start : start + 1000])),
                            TICKET.c.status == "sold",
                        )
                    )
                    .values(status="voided")
                ).rowcount
            if rows or voided:
                self._log_recorded(conn, new, voided_sale_ids, voided)
        return RecordResult(
            recorded_sales=len(sales) - duplicates,
            recorded_tickets=len(rows),
            duplicate_sales=duplicates,
            voided_tickets=voided,
        )

    def _log_recorded(
        self, conn: Connection, new: Sequence[TicketSale], voided_sale_ids: Sequence[str], voided: int
    ) -> None:
        """One ``tickets.recorded`` entry per tenant for what this call put on record (``new``, the
        sales not on record before) or voided: the devices, sequence ranges, counts per raffle and
        a digest of the sale ids."""
        if self.audit is None:
            return
        raffle_ids = sorted({s.raffle_id for s in new})
        tenants: dict[str, str] = {}
        if raffle_ids:
            tenants = dict(conn.execute(_TENANTS_OF_RAFFLES, {"raffle_ids": raffle_ids}).all())
        per_tenant: dict[str, list[TicketSale]] = {}
        for sale in new:
            per_tenant.setdefault(tenants.get(sale.raffle_id, ""), []).append(sale)
        if not per_tenant:  # voids only: the tenant of the voided sales' raffle
            tenant = conn.execute(
                select(RAFFLE.c.tenant)
                .join(TICKET, TICKET.c.raffle_id == RAFFLE.c.id)
                .where(TICKET.c.sale_id.in_(list(voided_sale_ids[:1000])))
                .limit(1)
            ).scalar_one_or_none()
            per_tenant[tenant or ""] = []
        events = []
        for tenant, mine in sorted(per_tenant.items()):
            tickets: dict[str, int] = {}
            for sale in mine:
                tickets[sale.raffle_id] = tickets.get(sale.raffle_id, 0) + len(sale.numbers)
            ids = sorted(s.sale_id for s in mine)
            payload: dict[str, Any] = {
                "devices": sorted({s.device_id for s in mine}),
                "seq": [min((s.seq for s in mine), default=0), max((s.seq for s in mine), default=0)],
                "sales": len(mine),
                "tickets": tickets,
                "sales_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            }
            if voided_sale_ids and tenant == min(per_tenant):
                payload["voided_sales"] = sorted(voided_sale_ids)[:100]
                payload["voided_tickets"] = voided
            events.append(AuditEvent(type="tickets.recorded", actor=current_actor(), payload=payload, tenant=tenant))
        self.audit.append(conn, events)

    def tickets_of_sale(self, sale_id: str) -> list[TicketView]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TICKET).where(TICKET.c.sale_id == sale_id).order_by(TICKET.c.number)).all()
        return [_ticket_view(r) for r in rows]

    def ticket(self, ticket_id: str) -> TicketView:
        with self.reads.connect() as conn:
            row = conn.execute(select(TICKET).where(TICKET.c.id == ticket_id)).first()
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        return _ticket_view(row)

    def lookup(self, raffle_id: str, number: int) -> tuple[RaffleSpec, str | None, TicketView | None]:
        """The raffle, its recorded draw state and ticket ``number`` (None when not on record), in
        one read transaction (a public check's whole read); :class:`RaffleNotFound` first."""
        with self.reads.connect() as conn:
            spec = read_raffle(conn, raffle_id)
            state = conn.execute(_DRAW_STATE, {"raffle_id": raffle_id}).scalar()
            row = conn.execute(_BY_NUMBER, {"raffle_id": raffle_id, "number": number}).first()
        return spec, state, (_ticket_view(row) if row is not None else None)

    def ticket_by_number(self, raffle_id: str, number: int) -> TicketView:
        with self.reads.connect() as conn:
            row = conn.execute(
                select(TICKET).where(and_(TICKET.c.raffle_id == raffle_id, TICKET.c.number == number))
            ).first()
        if row is None:
            raise TicketNotFound(f"ticket {number} of raffle {raffle_id} is not on record")
        return _ticket_view(row)

    def iter_tickets(self, raffle_id: str, *, after_number: int = 0, limit: int | None = None) -> Iterator[TicketView]:
        """Tickets of a raffle in number order, streamed in pages."""
        remaining = limit
        cursor = after_number
        while remaining is None or remaining > 0:
            page = 5000 if remaining is None else min(5000, remaining)
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(TICKET)
                    .where(and_(TICKET.c.raffle_id == raffle_id, TICKET.c.number > cursor))
                    .order_by(TICKET.c.number)
                    .limit(page)
                ).all()
            if not rows:
                return
            for r in rows:
                yield _ticket_view(r)
            cursor = rows[-1].number
            if remaining is not None:
                remaining -= len(rows)
            if len(rows) < page:
                return

    def count_tickets(self, raffle_id: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TICKET.c.status, func.count()).where(TICKET.c.raffle_id == raffle_id).group_by(TICKET.c.status)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def set_ticket_status(self, ticket_id: str, status: str) -> TicketView:
        with self.engine.begin() as conn:
            row = conn.execute(select(TICKET).where(TICKET.c.id == ticket_id).with_for_update()).first()
            if row is None:
                raise TicketNotFound(f"no ticket {ticket_id}")
            if (row.status, status) not in _STATUS_CHANGES:
                raise InvalidStatusChange(f"a {row.status} ticket cannot become {status}")
            conn.execute(update(TICKET).where(TICKET.c.id == ticket_id).values(status=status))
            tenant = conn.execute(select(RAFFLE.c.tenant).where(RAFFLE.c.id == row.raffle_id)).scalar_one_or_none()
            self._log(
                conn,
                "ticket.status_changed",
                {
                    "ticket_id": ticket_id,
                    "raffle_id": row.raffle_id,
                    "number": row.number,
                    "from": row.status,
                    "to": status,
                },
                tenant or "",
            )
        return self.ticket(ticket_id)
