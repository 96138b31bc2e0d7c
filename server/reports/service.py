"""The reports: one function per report, called by the HTTP routes (``GET /reports/...``) and by
``tombola report ...`` alike. ``docs/reports.md`` describes each report, its columns and its source.

Scope (:func:`scope`): the system admin (``admin``, installation-wide) sees every organisation;
``business_admin`` and ``auditor`` their organisation (all of it when installation-wide);
``venue_manager`` their venues (:attr:`Principal.venues`, all of their organisation when None);
every other role gets 403 ``forbidden``. A raffle or device outside the scope answers 404
``not_found``, as if it did not exist.

Totals are computed by the database (``GROUP BY`` over the ``sale`` table joined to ``raffle`` and
``venue``), never by a Python loop over every row. Every report returns ``{"report", "columns",
"rows", ...}``; :func:`to_csv` renders the same rows as CSV, safe against formula injection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql import ColumnElement

from server.auth import Principal
from server.context import Tombola
from server.errors import Forbidden, InvalidRequest, NotFound
from server.events import service as device_events
from server.events.models import DeviceEvent
from server.models import Device, Organisation, Raffle, Sale, Venue
from sync_protocol.messages import EVENT_TYPES

SALE = Sale.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
DEVICE = Device.__table__  # type: ignore[attr-defined]
ORG = Organisation.__table__  # type: ignore[attr-defined]
EVENT = DeviceEvent.__table__  # type: ignore[attr-defined]

#: roles that may read reports
REPORT_ROLES = ("admin", "business_admin", "auditor", "venue_manager")
#: ``group_by`` values of the sales report
GROUP_BY = ("raffle", "venue", "device", "seller", "payment_method", "hour")
HOUR_MS = 3_600_000
MAX_ROWS = 100_000
SALES_COLUMNS = (
    "group",
    "sales",
    "tickets",
    "gross_cents",
    "voided_sales",
    "voided_tickets",
    "voided_cents",
    "net_cents",
)


@dataclass(frozen=True)
class Scope:
    """What a principal's reports cover: ``tenant`` None = every organisation, ``venues`` None = all of it."""

    tenant: str | None
    venues: frozenset[str] | None

    def where(self) -> list[ColumnElement[bool]]:
        """Conditions on ``venue`` (joined) restricting rows to the scope."""
        out: list[ColumnElement[bool]] = []
        if self.tenant is not None:
            out.append(VENUE.c.organisation_id == self.tenant)
        if self.venues is not None:
            out.append(VENUE.c.id.in_(sorted(self.venues)))
        return out


def scope(principal: Principal) -> Scope:
    """The scope of ``principal``'s reports (module docstring); 403 ``forbidden`` for other roles."""
    if principal.role not in REPORT_ROLES:
        raise Forbidden(f"the {principal.role} role may not read reports")
    if principal.role == "venue_manager":
        return Scope(principal.tenant, principal.venues)
    return Scope(principal.tenant, None)


def _time(text: str | None) -> int | None:
    return None if text is None else device_events.parse_since(text)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_raffle(app: Tombola, sc: Scope, raffle_id: str) -> None:
    query = select(RAFFLE.c.id).select_from(RAFFLE.join(VENUE, VENUE.c.id == RAFFLE.c.venue_id))
    with app.engine.connect() as conn:
        if conn.execute(query.where(RAFFLE.c.id == raffle_id, *sc.where())).first() is None:
            raise NotFound(f"no raffle {raffle_id}", raffle_id=raffle_id)


def sales(
    app: Tombola,
    principal: Principal,
    *,
    group_by: str = "raffle",
    raffle: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Accepted sales grouped by ``group_by`` (:data:`GROUP_BY`), in ``[since, until)`` on the server's
    clock (``anchor_ms + elapsed_ms``), of one raffle if given. Voided sales are counted and subtracted
    (``net_cents``); rejected records are not sales (the exception report lists them).

    Raises:
        Forbidden: a role without reports.
        InvalidRequest: an unknown ``group_by`` or a time that is not ISO 8601.
        NotFound: ``raffle`` is not in the principal's scope.
    """
    sc = scope(principal)
    if group_by not in GROUP_BY:
        raise InvalidRequest(f"group_by is one of {', '.join(GROUP_BY)}, not {group_by[:40]!r}", field="group_by")
    since_ms, until_ms = _time(since), _time(until)
    if raffle is not None:
        _check_raffle(app, sc, raffle)
    at = SALE.c.anchor_ms + SALE.c.elapsed_ms
    key: ColumnElement[Any] = {
        "raffle": SALE.c.raffle_id,
        "venue": VENUE.c.id,
        "device": SALE.c.device_id,
        "seller": SALE.c.seller_id,
        "payment_method": SALE.c.payment_method,
        "hour": cast(at / literal(HOUR_MS), Integer),
    }[group_by]
    voided = case((SALE.c.voided, 1), else_=0)
    query = (
        select(
            key.label("group"),
            func.count().label("sales"),
            func.coalesce(func.sum(SALE.c.quantity), 0).label("tickets"),
            func.coalesce(func.sum(SALE.c.amount_cents), 0).label("gross_cents"),
            func.coalesce(func.sum(voided), 0).label("voided_sales"),
            func.coalesce(func.sum(voided * SALE.c.quantity), 0).label("voided_tickets"),
            func.coalesce(func.sum(voided * SALE.c.amount_cents), 0).label("voided_cents"),
        )
        .select_from(SALE.join(RAFFLE, RAFFLE.c.id == SALE.c.raffle_id).join(VENUE, VENUE.c.id == RAFFLE.c.venue_id))
        .where(SALE.c.kind == "sale", SALE.c.status == "accepted", *sc.where())
        .group_by(key)
        .order_by(key)
        .limit(MAX_ROWS)
    )
    if raffle is not None:
        query = query.where(SALE.c.raffle_id == raffle)
    if since_ms is not None:
        query = query.where(at >= since_ms)
    if until_ms is not None:
        query = query.where(at < until_ms)
    with app.engine.connect() as conn:
        rows = []
        for r in conn.execute(query):
            row = {k: int(v) if k != "group" else v for k, v in r._mapping.items()}
            if group_by == "hour":
                row["group"] = _iso(int(r.group) * HOUR_MS)
            row["net_cents"] = row["gross_cents"] - row["voided_cents"]
            rows.append(row)
    totals = {c: sum(r[c] for r in rows) for c in SALES_COLUMNS[1:]}
    return {
        "report": "sales",
        "group_by": group_by,
        "raffle": raffle,
        "from": since,
        "to": until,
        "columns": list(SALES_COLUMNS),
        "rows": rows,
        "totals": totals,
    }


def voided_numbers(app: Tombola, principal: Principal, *, raffle: str) -> dict[str, Any]:
    """GLI-31 2.8.1 voided numbers: every ticket of ``raffle`` voided or refunded, with its verification
    code, the sale, device, seller, reason and when (server clock)."""
    sc = scope(principal)
    _check_raffle(app, sc, raffle)
    rows = []
    with app.engine.connect() as conn:
        voids = {
            r.voids_sale_id: r
            for r in conn.execute(
                select(SALE.c.voids_sale_id, SALE.c.void_reason, SALE.c.anchor_ms, SALE.c.elapsed_ms, SALE.c.seller_id)
                .where(SALE.c.raffle_id == raffle, SALE.c.kind == "void", SALE.c.status == "accepted")
                .limit(MAX_ROWS)
            )
        }
    for t in app.core.tickets(raffle):
        if t.status == "sold":
            continue
        v = voids.get(t.sale_id)
        rows.append(
            {
                "number": t.number,
                "verification_code": t.verification_code,
                "status": t.status,
                "sale_id": t.sale_id,
                "device_id": t.device_id,
                "voided_by": v.seller_id if v is not None else "",
                "reason": v.void_reason if v is not None else "",
                "voided_at": _iso(v.anchor_ms + v.elapsed_ms) if v is not None else "",
            }
        )
    columns = ["number", "verification_code", "status", "sale_id", "device_id", "voided_by", "reason", "voided_at"]
    return {"report": "voided-numbers", "raffle": raffle, "columns": columns, "rows": rows}


def exceptions(
    app: Tombola, principal: Principal, *, raffle: str | None = None, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    """GLI-31 2.8.1 exception report: voids and rejected records from devices (the ``sale`` table)."""
    sc = scope(principal)
    if raffle is not None:
        _check_raffle(app, sc, raffle)
    since_ms, until_ms = _time(since), _time(until)
    at = SALE.c.anchor_ms + SALE.c.elapsed_ms
    kind = case((SALE.c.status == "rejected", literal("rejection")), else_=literal("void"))
    query = (
        select(
            at.label("at_ms"),
            kind.label("exception"),
            SALE.c.raffle_id,
            SALE.c.device_id,
            SALE.c.seq,
            SALE.c.id.label("record_id"),
            SALE.c.seller_id,
            SALE.c.reject_code,
            SALE.c.reject_detail,
            SALE.c.voids_sale_id,
            SALE.c.void_reason,
        )
        .select_from(SALE.join(RAFFLE, RAFFLE.c.id == SALE.c.raffle_id).join(VENUE, VENUE.c.id == RAFFLE.c.venue_id))
        .where(or_(SALE.c.status == "rejected", and_(SALE.c.kind == "void", SALE.c.status == "accepted")), *sc.where())
        .order_by(at, SALE.c.device_id, SALE.c.seq)
        .limit(MAX_ROWS)
    )
    if raffle is not None:
        query = query.where(SALE.c.raffle_id == raffle)
    if since_ms is not None:
        query = query.where(at >= since_ms)
    if until_ms is not None:
        query = query.where(at < until_ms)
    with app.engine.connect() as conn:
        rows = []
        for r in conn.execute(query):
            m = dict(r._mapping)
            rows.append(
                {
                    "at": _iso(m.pop("at_ms")),
                    "exception": m["exception"],
                    "raffle_id": m["raffle_id"],
                    "device_id": m["device_id"],
                    "seq": m["seq"],
                    "record_id": m["record_id"],
                    "seller_id": m["seller_id"],
                    "code": m["reject_code"] if m["exception"] == "rejection" else "",
                    "detail": m["reject_detail"] if m["exception"] == "rejection" else m["void_reason"],
                    "voids_sale_id": m["voids_sale_id"],
                }
            )
    columns = [
        "at",
        "exception",
        "raffle_id",
        "device_id",
        "seq",
        "record_id",
        "seller_id",
        "code",
        "detail",
        "voids_sale_id",
    ]
    return {"report": "exceptions", "raffle": raffle, "from": since, "to": until, "columns": columns, "rows": rows}


def drawing(app: Tombola, principal: Principal, *, raffle: str) -> dict[str, Any]:
    """GLI-31 2.8.1 raffle drawing report: the draw's state, committed values and prize holders."""
    sc = scope(principal)
    _check_raffle(app, sc, raffle)
    status = app.core.draw_status(raffle)
    out: dict[str, Any] = {
        "report": "drawing",
        "raffle": raffle,
        "state": status["state"],
        "nonce_commitment": status["nonce_commitment"],
        "vrf_fingerprint": status["vrf"].get("fingerprint"),
        "ticket_count": status["ticket_count"],
        "ticket_root": status["ticket_root"],
        "proof_sha256": None,
        "columns": ["tier", "position", "ticket_number", "amount_cents", "redrawn"],
        "rows": [],
    }
    if status["state"] in ("DRAWN", "PUBLISHED"):
        results = app.core.draw_results(raffle)
        out["proof_sha256"] = results["proof_sha256"]
        redrawn = {(r["tier"], r["ticket_number"]) for r in results["redraws"]}
        out["rows"] = [
            {
                "tier": h["tier"],
                "position": h["position"],
                "ticket_number": h["ticket_number"],
                "amount_cents": h["amount_cents"],
                "redrawn": (h["tier"], h["ticket_number"]) in redrawn,
            }
            for h in results["holders"]
        ]
    return out


def device_event_log(
    app: Tombola,
    principal: Principal,
    *,
    device: str | None = None,
    since: str | None = None,
    until: str | None = None,
    type: str | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    """GLI-31 5.6.2 device event log: events in ``[since, until)`` (server clock), of one device and
    one type if given, oldest first, at most ``limit`` (1..10000)."""
    sc = scope(principal)
    if type is not None and type not in EVENT_TYPES:
        raise InvalidRequest(f"{type[:40]!r} is not a device event type", field="type")
    if not 1 <= limit <= device_events.MAX_LIST:
        raise InvalidRequest(f"the limit is 1 to {device_events.MAX_LIST}, not {limit}", field="limit")
    since_ms, until_ms = _time(since), _time(until)
    query = (
        select(EVENT, DEVICE.c.venue_id)
        .select_from(EVENT.join(DEVICE, DEVICE.c.id == EVENT.c.device_id).join(VENUE, VENUE.c.id == DEVICE.c.venue_id))
        .where(*sc.where())
        .order_by(EVENT.c.occurred_at_ms, EVENT.c.device_id, EVENT.c.seq)
        .limit(limit)
    )
    with app.engine.connect() as conn:
        if device is not None:
            seen = select(DEVICE.c.id).select_from(DEVICE.join(VENUE, VENUE.c.id == DEVICE.c.venue_id))
            if conn.execute(seen.where(DEVICE.c.id == device, *sc.where())).first() is None:
                raise NotFound(f"no device {device}", device_id=device)
            query = query.where(EVENT.c.device_id == device)
        if since_ms is not None:
            query = query.where(EVENT.c.occurred_at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(EVENT.c.occurred_at_ms < until_ms)
        if type is not None:
            query = query.where(EVENT.c.type == type)
        rows = [
            {
                "at": _iso(r.occurred_at_ms),
                "device_id": r.device_id,
                "venue_id": r.venue_id,
                "seq": r.seq,
                "type": r.type,
                "seller_id": r.seller_id,
                "detail": r.detail,
                "hash": r.hash,
            }
            for r in conn.execute(query)
        ]
    columns = ["at", "device_id", "venue_id", "seq", "type", "seller_id", "detail", "hash"]
    return {"report": "device-events", "device": device, "from": since, "to": until, "columns": columns, "rows": rows}


#: the reports by name, as ``tombola report NAME`` and ``GET /reports/NAME`` call them
REPORTS = ("sales", "drawing", "exceptions", "voided-numbers", "device-events")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: text as is, except that a cell starting with ``= + - @``, a tab or a carriage
    return gets a leading ``'`` so a spreadsheet shows it as text instead of running it as a
    formula (OWASP CSV injection). Numbers are written as numbers (a negative one keeps its sign)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(report: dict[str, Any]) -> str:
    """The report's rows as CSV (RFC 4180, CRLF line ends), a header row of its ``columns`` first."""
    columns: Sequence[str] = report["columns"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in report["rows"]:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return out.getvalue()
