"""The ticket registry: raffles' number spaces, grants and recorded tickets (SQL lives here).

Invariants held here, with the database as the last guard:

- I1: numbers are handed out by moving ``core_raffle.next_number`` under a row lock
  (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two grants
  never overlap, whatever the number of server processes; ``UNIQUE(raffle_id, first_number)``
  backs it.
- I2: ``UNIQUE(raffle_id, number)`` on tickets; recording is idempotent per ``sale_id``.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import uuid6
from sqlalchemy import JSON, Engine, Text, and_, any_, bindparam, cast, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from gli_core.audit.entry import AuditEvent, current_actor
from gli_core.bulk import bulk_insert_rows, upsert
from gli_core.draw.proof import ticket_leaf_hash
from gli_core.errors import (
    DeviceCapReached,
    InvalidStatusChange,
    NumbersExhausted,
    NumberTaken,
    RaffleExists,
    RaffleNotFound,
    RaffleNotOpen,
    SaleConflict,
    TicketNotFound,
)
from gli_core.ids import uuid7_batch
from gli_core.models import CoreRaffle, DeviceSync, Draw, Grant, SigningKey, Ticket
from sync_protocol.canonical import domain_bytes
from sync_protocol.codes import ticket_codes
from sync_protocol.messages import RangeGrant
from sync_protocol.signing import PublicKey, Signer, b64u_decode, b64u_encode

if TYPE_CHECKING:
    from gli_core.audit.log import AuditLog

RAFFLE = CoreRaffle.__table__  # type: ignore[attr-defined]
GRANT = Grant.__table__  # type: ignore[attr-defined]
TICKET = Ticket.__table__  # type: ignore[attr-defined]
KEY = SigningKey.__table__  # type: ignore[attr-defined]
DEVICE_SYNC = DeviceSync.__table__  # type: ignore[attr-defined]
DRAW = Draw.__table__  # type: ignore[attr-defined]

ONLINE_DEVICE = "online"
# Statements of every sync, built once: building a SQLAlchemy statement costs more CPU than
# running a prepared one (~0.3 ms against ~0.17 ms on the reference machine).
_GRANT_RANGES = (
    select(GRANT.c.raffle_id, GRANT.c.first_number, GRANT.c.last_number)
    .where(and_(GRANT.c.device_id == bindparam("device_id"), GRANT.c.status == "active"))
    .order_by(GRANT.c.raffle_id, GRANT.c.first_number)
)
_ACTIVE_GRANTS_IN = and_(
    GRANT.c.raffle_id.in_(bindparam("raffle_ids", expanding=True)),
    GRANT.c.device_id == bindparam("device_id"),
    GRANT.c.status == "active",
)
_GRANTED = (
    select(GRANT.c.raffle_id, func.sum(GRANT.c.last_number - GRANT.c.first_number + 1))
    .where(_ACTIVE_GRANTS_IN)
    .group_by(GRANT.c.raffle_id)
)
# Counted through the device's grant ranges, which UNIQUE(raffle_id, number) indexes: no index on
# device_id is needed and none slows the inserts.
_USED = (
    select(GRANT.c.raffle_id, func.count())
    .select_from(
        TICKET.join(
            GRANT,
            and_(
                TICKET.c.raffle_id == GRANT.c.raffle_id,
                TICKET.c.number.between(GRANT.c.first_number, GRANT.c.last_number),
            ),
        )
    )
    .where(_ACTIVE_GRANTS_IN)
    .group_by(GRANT.c.raffle_id)
)
#: the draw rows of the raffles a recording touches, held FOR SHARE (see ``_refuse_frozen``)
_HOLD_DRAWS = (
    select(DRAW.c.raffle_id, DRAW.c.state)
    .where(DRAW.c.raffle_id.in_(bindparam("raffle_ids", expanding=True)))
    .order_by(DRAW.c.raffle_id)
    .with_for_update(read=True)
)
_TENANTS_OF_RAFFLES = select(RAFFLE.c.id, RAFFLE.c.tenant).where(
    RAFFLE.c.id.in_(bindparam("raffle_ids", expanding=True))
)

TICKET_STATUSES = ("sold", "voided", "refunded")
_STATUS_CHANGES = {("sold", "voided"), ("sold", "refunded"), ("voided", "refunded")}


#: core_ticket's columns in the order :meth:`Registry.record` writes them
_TICKET_COLUMNS = (
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


def now_ms() -> int:
    return int(time.time() * 1000)


def _chunks(conn: Connection, values: Sequence[Any], size: int) -> list[list[Any]]:
    """``values`` in one piece on PostgreSQL (one array parameter), in pieces of ``size`` elsewhere."""
    if conn.dialect.name == "postgresql":
        return [list(values)] if values else []
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def _among(dialect: str, column: Any, name: str) -> Any:
    """``column IN :name``: ``IN (...)`` (an expanding parameter) on SQLite; on PostgreSQL one
    JSON text parameter, ``column = ANY(ARRAY(SELECT json_array_elements_text(:name)::type))``.

    One parameter whatever the length, so the statement text (and its prepared plan, an index
    scan) is the same for every batch; JSON rather than a driver array because dumping a list of
    500 values element by element costs the client milliseconds, encoding it as JSON microseconds.
    Pass the values through :func:`_among_value`.
    """
    if dialect == "postgresql":
        elements = func.json_array_elements_text(cast(bindparam(name, type_=Text), JSON))
        return column == any_(func.array(select(cast(elements, column.type)).scalar_subquery()))
    return column.in_(bindparam(name, expanding=True))


def _among_value(conn: Connection, values: Sequence[Any]) -> Any:
    return orjson.dumps(list(values)).decode() if conn.dialect.name == "postgresql" else list(values)


# Statements built once per dialect (building a SQLAlchemy statement costs more CPU than
# running a prepared one).
@functools.cache
def _numbers_taken_stmt(dialect: str) -> Any:
    return select(TICKET.c.number, TICKET.c.sale_id).where(
        and_(TICKET.c.raffle_id == bindparam("raffle_id"), _among(dialect, TICKET.c.number, "numbers"))
    )


@functools.cache
def _recorded_numbers_stmt(dialect: str) -> Any:
    return select(TICKET.c.sale_id, TICKET.c.number).where(_among(dialect, TICKET.c.sale_id, "sale_ids"))


@dataclass(frozen=True)
class RaffleSpec:
    """What the core must know of a raffle."""

    raffle_id: str
    number_space: int
    sales_open_at_ms: int
    sales_close_at_ms: int
    grant_size: int = 1000
    lease_s: int = 8 * 3600
    max_numbers_per_device: int = 10_000
    status: str = "open"
    tenant: str = ""


@dataclass(frozen=True)
class TicketSale:
    """The tickets of one sale record to put on record."""

    sale_id: str
    device_id: str
    seq: int
    raffle_id: str
    numbers: tuple[int, ...]
    record_hash: str
    amount_cents: int = 0

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
class GrantView:
    grant: RangeGrant
    kind: str
    status: str
    reason: str


@dataclass(frozen=True)
class RecordResult:
    recorded_sales: int
    recorded_tickets: int
    duplicate_sales: int
    voided_tickets: int


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


class Registry:
    """SQL of the ticket registry over one engine (the core database)."""

    def __init__(self, engine: Engine, signer: Signer, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.signer = signer
        #: every state change below appends its audit entry in its own transaction (I7)
        self.audit = audit
        #: grant id -> (signed payload, parsed grant); the parsed grants are shared: never mutate them
        self._grant_cache: dict[str, tuple[str, RangeGrant]] = {}

    def _log(self, conn: Connection, type_: str, payload: Mapping[str, Any], tenant: str = "") -> None:
        if self.audit is not None:
            self.audit.append(conn, [AuditEvent(type=type_, actor=current_actor(), payload=payload, tenant=tenant)])

    # -- keys ---------------------------------------------------------------
    def record_signer(self) -> None:
        """Record the signer's public key (idempotent)."""
        with self.engine.begin() as conn:
            found = conn.execute(select(KEY.c.key_id).where(KEY.c.key_id == self.signer.key_id)).first()
            if found is None:
                conn.execute(
                    insert(KEY).values(
                        key_id=self.signer.key_id,
                        algorithm="ed25519",
                        purpose="grant",
                        public_key=b64u_encode(self.signer.public_key),
                        created_at_ms=now_ms(),
                    )
                )
                self._log(
                    conn, "key.generated", {"purpose": "grant", "algorithm": "ed25519", "key_id": self.signer.key_id}
                )

    def public_keys(self) -> list[PublicKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(KEY).where(KEY.c.algorithm == "ed25519")).all()
        keys = [PublicKey(key_id=r.key_id, public_key=b64u_decode(r.public_key)) for r in rows]
        if not any(k.key_id == self.signer.key_id for k in keys):
            keys.append(PublicKey(key_id=self.signer.key_id, public_key=self.signer.public_key))
        return keys

    # -- raffles ------------------------------------------------------------
    def register_raffle(self, spec: RaffleSpec) -> None:
        with self.engine.begin() as conn:
            if conn.execute(select(RAFFLE.c.id).where(RAFFLE.c.id == spec.raffle_id)).first():
                raise RaffleExists(f"raffle {spec.raffle_id} is already registered in the core")
            conn.execute(
                insert(RAFFLE).values(
                    id=spec.raffle_id,
                    number_space=spec.number_space,
                    next_number=1,
                    grant_size=spec.grant_size,
                    lease_s=spec.lease_s,
                    max_numbers_per_device=spec.max_numbers_per_device,
                    sales_open_at_ms=spec.sales_open_at_ms,
                    sales_close_at_ms=spec.sales_close_at_ms,
                    status=spec.status,
                    tenant=spec.tenant,
                    created_at_ms=now_ms(),
                )
            )
            self._log(
                conn,
                "raffle.created",
                {
                    "raffle_id": spec.raffle_id,
                    "number_space": spec.number_space,
                    "sales_open_at_ms": spec.sales_open_at_ms,
                    "sales_close_at_ms": spec.sales_close_at_ms,
                    "grant_size": spec.grant_size,
                    "lease_s": spec.lease_s,
                    "max_numbers_per_device": spec.max_numbers_per_device,
                    "status": spec.status,
                },
                spec.tenant,
            )

    def update_raffle(
        self, raffle_id: str, *, sales_close_at_ms: int | None = None, status: str | None = None
    ) -> RaffleSpec:
        values: dict[str, object] = {}
        if sales_close_at_ms is not None:
            values["sales_close_at_ms"] = sales_close_at_ms
        if status is not None:
            values["status"] = status
        with self.engine.begin() as conn:
            before = self._raffle(conn, raffle_id, lock=True)
            if values:
                conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(**values))
                changes = {k: [getattr(before, k), v] for k, v in values.items() if getattr(before, k) != v}
                if changes:
                    self._log(conn, "raffle.changed", {"raffle_id": raffle_id, "changes": changes}, before.tenant)
            return self._raffle(conn, raffle_id)

    def raffle(self, raffle_id: str) -> RaffleSpec:
        with self.engine.connect() as conn:
            return self._raffle(conn, raffle_id)

    @staticmethod
    def _raffle(conn: Connection, raffle_id: str, lock: bool = False) -> RaffleSpec:
        query = select(RAFFLE).where(RAFFLE.c.id == raffle_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise RaffleNotFound(f"raffle {raffle_id} is not known to the core")
        return RaffleSpec(
            raffle_id=row.id,
            number_space=row.number_space,
            sales_open_at_ms=row.sales_open_at_ms,
            sales_close_at_ms=row.sales_close_at_ms,
            grant_size=row.grant_size,
            lease_s=row.lease_s,
            max_numbers_per_device=row.max_numbers_per_device,
            status=row.status,
            tenant=row.tenant,
        )

    # -- grants -------------------------------------------------------------
    def issue_grant(
        self,
        raffle_id: str,
        device_id: str,
        *,
        numbers: int | None = None,
        kind: str = "initial",
        reason: str = "",
        enforce_cap: bool = True,
        at_ms: int | None = None,
    ) -> RangeGrant:
        """Reserve the next free block of ``raffle_id`` for ``device_id`` and sign it."""
        issued = at_ms if at_ms is not None else now_ms()
        with self.engine.begin() as conn:
            spec = self._raffle(conn, raffle_id, lock=True)
            if spec.status != "open" or issued >= spec.sales_close_at_ms:
                raise RaffleNotOpen(f"raffle {raffle_id} is not selling, so no numbers are granted")
            size = numbers or spec.grant_size
            if enforce_cap:
                held = conn.execute(
                    select(func.coalesce(func.sum(GRANT.c.last_number - GRANT.c.first_number + 1), 0)).where(
                        and_(GRANT.c.raffle_id == raffle_id, GRANT.c.device_id == device_id)
                    )
                ).scalar_one()
                size = min(size, spec.max_numbers_per_device - int(held))
                if size <= 0:
                    raise DeviceCapReached(
                        f"device {device_id} already holds its cap of {spec.max_numbers_per_device} numbers"
                    )
            first = conn.execute(select(RAFFLE.c.next_number).where(RAFFLE.c.id == raffle_id)).scalar_one()
            last = min(first + size - 1, spec.number_space)
            if last < first:
                raise NumbersExhausted(f"raffle {raffle_id} has no numbers left to grant")
            conn.execute(update(RAFFLE).where(RAFFLE.c.id == raffle_id).values(next_number=last + 1))
            grant = RangeGrant(
                grant_id=str(uuid6.uuid7()),
                raffle_id=raffle_id,
                device_id=device_id,
                first_number=first,
                last_number=last,
                issued_at_ms=issued,
                lease_s=spec.lease_s,
                sales_close_at_ms=spec.sales_close_at_ms,
                signer_key_id=self.signer.key_id,
            ).signed_by(self.signer)
            conn.execute(
                insert(GRANT).values(
                    id=grant.grant_id,
                    raffle_id=raffle_id,
                    device_id=device_id,
                    first_number=first,
                    last_number=last,
                    issued_at_ms=issued,
                    kind=kind,
                    reason=reason,
                    status="active",
                    signer_key_id=grant.signer_key_id,
                    payload=grant.model_dump_json(exclude_none=True),
                )
            )
            self._log(
                conn,
                "grant.issued",
                {
                    "grant_id": grant.grant_id,
                    "raffle_id": raffle_id,
                    "device_id": device_id,
                    "first_number": first,
                    "last_number": last,
                    "kind": kind,
                    "reason": reason,
                    "signer_key_id": grant.signer_key_id,
                },
                spec.tenant,
            )
        return grant

    def grants(
        self, *, device_id: str | None = None, raffle_id: str | None = None, status: str | None = "active"
    ) -> list[GrantView]:
        query = select(GRANT).order_by(GRANT.c.raffle_id, GRANT.c.first_number)
        if device_id is not None:
            query = query.where(GRANT.c.device_id == device_id)
        if raffle_id is not None:
            query = query.where(GRANT.c.raffle_id == raffle_id)
        if status is not None:
            query = query.where(GRANT.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            GrantView(grant=self._signed_grant(r.id, r.payload), kind=r.kind, status=r.status, reason=r.reason)
            for r in rows
        ]

    def _signed_grant(self, grant_id: str, payload: str) -> RangeGrant:
        """The grant as signed, parsed once per process: a grant's payload never changes after it
        is issued (its status is a column of its own), and every sync's ack sends the device's."""
        cached = self._grant_cache.get(grant_id)
        if cached is None or cached[0] != payload:
            if len(self._grant_cache) >= 100_000:
                self._grant_cache.clear()
            cached = self._grant_cache[grant_id] = (payload, RangeGrant.model_validate_json(payload))
        return cached[1]

    @staticmethod
    def _grant_ranges(conn: Connection, device_id: str) -> dict[str, list[tuple[int, int]]]:
        """``raffle_id -> [(first, last), ...]`` of the device's active grants (no payload parsed)."""
        ranges: dict[str, list[tuple[int, int]]] = {}
        for r in conn.execute(_GRANT_RANGES, {"device_id": device_id}):
            ranges.setdefault(r.raffle_id, []).append((r.first_number, r.last_number))
        return ranges

    def batch_view(
        self, device_id: str, numbers: Mapping[str, Iterable[int]]
    ) -> tuple[dict[str, list[tuple[int, int]]], dict[tuple[str, int], str]]:
        """What judging a device's batch needs from the core, on one connection: the device's
        :meth:`grant_ranges`, and which of ``numbers`` (per raffle) are on record, by which sale."""
        with self.engine.connect() as conn:
            ranges = self._grant_ranges(conn, device_id)
            taken: dict[tuple[str, int], str] = {}
            for raffle_id, wanted in numbers.items():
                for number, sale_id in self._numbers_taken(conn, raffle_id, wanted).items():
                    taken[(raffle_id, number)] = sale_id
        return ranges, taken

    def set_grants_status(self, grant_ids: Sequence[str], status: str, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(GRANT).where(GRANT.c.id.in_(list(grant_ids))).values(status=status, reason=reason))
            rows = conn.execute(
                select(GRANT.c.id, GRANT.c.raffle_id, GRANT.c.device_id, RAFFLE.c.tenant)
                .join(RAFFLE, RAFFLE.c.id == GRANT.c.raffle_id)
                .where(GRANT.c.id.in_(list(grant_ids)))
                .order_by(GRANT.c.id)
            ).all()
            for tenant in sorted({r.tenant for r in rows}):
                mine = [r for r in rows if r.tenant == tenant]
                self._log(
                    conn,
                    "grant.voided" if status == "voided" else "grant.status_changed",
                    {
                        "grants": [
                            {"grant_id": r.id, "raffle_id": r.raffle_id, "device_id": r.device_id} for r in mine
                        ],
                        "status": status,
                        "reason": reason,
                    },
                    tenant,
                )

    def device_synced(self, device_id: str, at_ms: int) -> None:
        """Note that ``device_id`` completed a sync at ``at_ms`` (the draw's reconciliation gate)."""
        with self.engine.begin() as conn:
            upsert(
                conn,
                DEVICE_SYNC,
                {"device_id": device_id, "last_sync_ms": at_ms},
                key=["device_id"],
                update=["last_sync_ms"],
                if_greater="last_sync_ms",
            )

    def last_syncs(self, device_ids: Sequence[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DEVICE_SYNC).where(DEVICE_SYNC.c.device_id.in_(list(device_ids)))).all()
        return {r.device_id: r.last_sync_ms for r in rows}

    def device_usage(self, device_id: str, raffle_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``raffle_id -> (numbers granted in active grants, tickets recorded)`` of a device, on one
        connection, one pair of statements whatever the number of raffles."""
        usage = {raffle_id: (0, 0) for raffle_id in raffle_ids}
        if not usage:
            return usage
        params = {"raffle_ids": list(usage), "device_id": device_id}
        with self.engine.connect() as conn:
            granted: dict[str, int] = dict(conn.execute(_GRANTED, params).all())
            used: dict[str, int] = dict(conn.execute(_USED, params).all())
        return {r: (int(granted.get(r) or 0), int(used.get(r) or 0)) for r in usage}

    # -- tickets ------------------------------------------------------------
    @staticmethod
    def _numbers_taken(conn: Connection, raffle_id: str, numbers: Iterable[int]) -> dict[int, str]:
        """Which of ``numbers`` are recorded already, and by which sale."""
        wanted = sorted(set(numbers))
        taken: dict[int, str] = {}
        stmt = _numbers_taken_stmt(conn.dialect.name)
        for chunk in _chunks(conn, wanted, 5000):
            rows = conn.execute(stmt, {"raffle_id": raffle_id, "numbers": _among_value(conn, chunk)})
            taken.update({r.number: r.sale_id for r in rows})
        return taken

    def record(
        self, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str] = (), at_ms: int | None = None
    ) -> RecordResult:
        """Put sales on record and void tickets, all in one transaction; idempotent per sale id."""
        recorded_at = at_ms if at_ms is not None else now_ms()
        with self.engine.begin() as conn:
            self._refuse_frozen(conn, sales, voided_sale_ids)
            existing = self._recorded_numbers(conn, [s.sale_id for s in sales])
            new: list[TicketSale] = []
            duplicates = 0
            for sale in sales:
                if sale.sale_id in existing:
                    if existing[sale.sale_id] != sorted(sale.numbers):
                        raise SaleConflict(f"sale {sale.sale_id} is on record with other numbers")
                    duplicates += 1
                    continue
                new.append(sale)
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
                bulk_insert_rows(conn, TICKET, _TICKET_COLUMNS, rows)
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

    @staticmethod
    def _refuse_frozen(conn: Connection, sales: Sequence[TicketSale], voided_sale_ids: Sequence[str]) -> None:
        """Hold the draw rows of the raffles touched FOR SHARE and refuse if one is frozen.

        The freeze (``DrawService.initiate``) reads the ticket set and moves to RECONCILED under
        ``FOR UPDATE`` on the same row, so a recording and a freeze never interleave: either the
        tickets are in the frozen set, or they are refused with ``ticket_set_frozen``.
        """
        from gli_core.draw.service import FROZEN, TicketSetFrozen

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
            return
        rows = conn.execute(_HOLD_DRAWS, {"raffle_ids": sorted(raffle_ids)}).all()
        frozen = sorted(r.raffle_id for r in rows if r.state in {f.value for f in FROZEN})
        if frozen:
            raise TicketSetFrozen(f"the ticket set of {', '.join(frozen)} is frozen for the draw")

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

    @staticmethod
    def _recorded_numbers(conn: Connection, sale_ids: Sequence[str]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        stmt = _recorded_numbers_stmt(conn.dialect.name)
        for chunk in _chunks(conn, sale_ids, 1000):
            rows = conn.execute(stmt, {"sale_ids": _among_value(conn, chunk)})
            for r in rows:
                found.setdefault(r.sale_id, []).append(r.number)
        for numbers in found.values():
            numbers.sort()
        return found

    def generate_online(
        self, raffle_id: str, quantity: int, *, sale_id: str | None = None, amount_cents: int = 0
    ) -> list[TicketView]:
        """Sell ``quantity`` sequential numbers on the online channel (no device), recorded at once."""
        sale = sale_id or str(uuid6.uuid7())
        grant = self.issue_grant(raffle_id, ONLINE_DEVICE, numbers=quantity, kind="online", enforce_cap=False)
        numbers = tuple(range(grant.first_number, grant.last_number + 1))
        record_hash = hashlib.sha256(
            domain_bytes("online-sale", {"sale_id": sale, "raffle_id": raffle_id, "numbers": list(numbers)})
        ).hexdigest()
        self.record([TicketSale(sale, ONLINE_DEVICE, 0, raffle_id, numbers, record_hash, amount_cents)])
        return [t for t in self.tickets_of_sale(sale)]

    def tickets_of_sale(self, sale_id: str) -> list[TicketView]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(TICKET).where(TICKET.c.sale_id == sale_id).order_by(TICKET.c.number)).all()
        return [_ticket_view(r) for r in rows]

    def ticket(self, ticket_id: str) -> TicketView:
        with self.engine.connect() as conn:
            row = conn.execute(select(TICKET).where(TICKET.c.id == ticket_id)).first()
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        return _ticket_view(row)

    def ticket_by_number(self, raffle_id: str, number: int) -> TicketView:
        with self.engine.connect() as conn:
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
