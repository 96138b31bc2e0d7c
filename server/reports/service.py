"""The reports: one function per report, called by the HTTP routes (``GET /reports/...``) and by
``tombola report ...`` alike. ``docs/reports.md`` describes each report, its columns and its source.

Scope (:func:`scope`): the system admin (``admin``, installation-wide) sees every organisation;
``business_admin`` and ``auditor`` their organisation (all of it when installation-wide);
``venue_manager`` their venues (:attr:`Principal.venues`, all of their organisation when None);
every other role gets 403 ``forbidden``. A raffle or device outside the scope answers 404
``not_found``, as if it did not exist.

Totals are computed by the database (``GROUP BY`` over the ``sale`` table and the ``online_order``
table, joined to ``raffle`` and ``venue``), never by a Python loop over every row. A sale counts as
the raffle's 50/50 jackpot counts it (:mod:`server.raffles.service`): a POS sale accepted and not
voided, an online order ``ticketed``; so a raffle's ``net_cents`` is its jackpot base.

The exception report joins the ``sale`` table's voids and rejections with the audit log's
exceptional events (:data:`AUDIT_EXCEPTIONS`: range extensions, two-person requests and break-glass,
redraws, revocations, voided grants and remainders), each with the entry's index so an auditor can
fetch its inclusion proof (``GET /core/audit/proof/inclusion?index=N``, ``tombola audit prove N``).

Every report returns ``{"report", "columns", "rows", ...}``; :func:`to_csv` renders the same rows
as CSV, safe against formula injection.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Integer, String, and_, case, cast, func, literal, null, or_, select, union_all
from sqlalchemy.sql import ColumnElement

from server import audit
from server.auth import Principal
from server.context import Tombola
from server.errors import Forbidden, InvalidRequest, NotFound
from server.events import service as device_events
from server.events.models import DeviceEvent
from server.models import Device, OnlineOrder, Organisation, Raffle, Sale, Venue
from sync_protocol.messages import EVENT_TYPES

SALE = Sale.__table__  # type: ignore[attr-defined]
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
DEVICE = Device.__table__  # type: ignore[attr-defined]
ORG = Organisation.__table__  # type: ignore[attr-defined]
EVENT = DeviceEvent.__table__  # type: ignore[attr-defined]
ORDER = OnlineOrder.__table__  # type: ignore[attr-defined]

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
    "refunded_sales",
    "refunded_cents",
    "net_cents",
)
#: the device, and payment method, of an online order in the sales report (it has no seller)
ONLINE = "online"
#: who voids an online order's tickets (the audit actor of ``order.state_changed``)
ORDER_ACTOR = "service:stripe-webhook"
#: online order states that made tickets: ``ticketed`` (valid), ``voided`` (refunded before close,
#: tickets voided) and ``refunded`` with tickets (refunded after close, tickets kept in the draw)
_SOLD_ORDER = or_(ORDER.c.state.in_(("ticketed", "voided")), and_(ORDER.c.state == "refunded", ORDER.c.tickets != "[]"))


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


def _sold_rows(sc: Scope, raffle: str | None, since_ms: int | None, until_ms: int | None) -> Any:
    """Every sale in scope as one row shape (a subquery): POS sales accepted by the server, and
    online orders that made tickets (:data:`_SOLD_ORDER`), with ``voided``/``refunded`` as 0 or 1.

    A POS sale's time is the server's clock of the record (``anchor_ms + elapsed_ms``); an online
    order's is its ``updated_at_ms`` while ``ticketed`` (when it was ticketed) and its
    ``created_at_ms`` once voided or refunded (the update time is then the refund's)."""
    pos_at = SALE.c.anchor_ms + SALE.c.elapsed_ms
    pos = select(
        SALE.c.raffle_id.label("raffle_id"),
        VENUE.c.id.label("venue_id"),
        SALE.c.device_id.label("device_id"),
        SALE.c.seller_id.label("seller_id"),
        SALE.c.payment_method.label("payment_method"),
        pos_at.label("at_ms"),
        SALE.c.quantity.label("quantity"),
        SALE.c.amount_cents.label("amount_cents"),
        case((SALE.c.voided, 1), else_=0).label("voided"),
        literal(0).label("refunded"),
    ).select_from(SALE.join(RAFFLE, RAFFLE.c.id == SALE.c.raffle_id).join(VENUE, VENUE.c.id == RAFFLE.c.venue_id))
    pos = pos.where(SALE.c.kind == "sale", SALE.c.status == "accepted", *sc.where())
    online_at = case((ORDER.c.state == "ticketed", ORDER.c.updated_at_ms), else_=ORDER.c.created_at_ms)
    online = select(
        ORDER.c.raffle_id,
        VENUE.c.id,
        literal(ONLINE, String),
        cast(null(), String),
        literal(ONLINE, String),
        online_at,
        ORDER.c.quantity,
        ORDER.c.amount_cents,
        case((ORDER.c.state == "voided", 1), else_=0),
        case((ORDER.c.state == "refunded", 1), else_=0),
    ).select_from(ORDER.join(RAFFLE, RAFFLE.c.id == ORDER.c.raffle_id).join(VENUE, VENUE.c.id == RAFFLE.c.venue_id))
    online = online.where(_SOLD_ORDER, *sc.where())
    if raffle is not None:
        pos, online = pos.where(SALE.c.raffle_id == raffle), online.where(ORDER.c.raffle_id == raffle)
    if since_ms is not None:
        pos, online = pos.where(pos_at >= since_ms), online.where(online_at >= since_ms)
    if until_ms is not None:
        pos, online = pos.where(pos_at < until_ms), online.where(online_at < until_ms)
    return union_all(pos, online).subquery("sold")


def sales(
    app: Tombola,
    principal: Principal,
    *,
    group_by: str = "raffle",
    raffle: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Sales grouped by ``group_by`` (:data:`GROUP_BY`), in ``[since, until)`` on the server's clock,
    of one raffle if given: POS sales accepted by the server and online orders that made tickets
    (device and payment method ``online``, no seller; :func:`_sold_rows`). Voided sales and refunded
    orders are counted and subtracted (``net_cents``, the raffle's jackpot base); rejected records
    are not sales (the exception report lists them).

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
    sold = _sold_rows(sc, raffle, since_ms, until_ms)
    key: ColumnElement[Any] = {
        "raffle": sold.c.raffle_id,
        "venue": sold.c.venue_id,
        "device": sold.c.device_id,
        "seller": sold.c.seller_id,
        "payment_method": sold.c.payment_method,
        "hour": cast(sold.c.at_ms / literal(HOUR_MS), Integer),
    }[group_by]
    query = (
        select(
            key.label("group"),
            func.count().label("sales"),
            func.coalesce(func.sum(sold.c.quantity), 0).label("tickets"),
            func.coalesce(func.sum(sold.c.amount_cents), 0).label("gross_cents"),
            func.coalesce(func.sum(sold.c.voided), 0).label("voided_sales"),
            func.coalesce(func.sum(sold.c.voided * sold.c.quantity), 0).label("voided_tickets"),
            func.coalesce(func.sum(sold.c.voided * sold.c.amount_cents), 0).label("voided_cents"),
            func.coalesce(func.sum(sold.c.refunded), 0).label("refunded_sales"),
            func.coalesce(func.sum(sold.c.refunded * sold.c.amount_cents), 0).label("refunded_cents"),
        )
        .group_by(key)
        .order_by(key.asc().nulls_last())
        .limit(MAX_ROWS)
    )
    with app.engine.connect() as conn:
        rows = []
        for r in conn.execute(query):
            row = {k: int(v) if k != "group" else v for k, v in r._mapping.items()}
            if group_by == "hour":
                row["group"] = _iso(int(r.group) * HOUR_MS)
            row["net_cents"] = row["gross_cents"] - row["voided_cents"] - row["refunded_cents"]
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
    code, the sale, device, seller, reason and when (server clock).

    A number of an online order refunded before close (state ``voided``) shows device ``online``,
    ``voided_by`` ``service:stripe-webhook`` (the refund came through Stripe's webhook), the order's
    reason and its update time."""
    sc = scope(principal)
    _check_raffle(app, sc, raffle)
    rows = []
    with app.engine.connect() as conn:
        orders = {
            r.id: r
            for r in conn.execute(
                select(ORDER.c.id, ORDER.c.reason, ORDER.c.updated_at_ms).where(
                    ORDER.c.raffle_id == raffle, ORDER.c.state == "voided"
                )
            )
        }
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
        v, o = voids.get(t.sale_id), orders.get(t.sale_id)
        row = {
            "number": t.number,
            "verification_code": t.verification_code,
            "status": t.status,
            "sale_id": t.sale_id,
            "device_id": t.device_id,
            "voided_by": v.seller_id if v is not None else "",
            "reason": v.void_reason if v is not None else "",
            "voided_at": _iso(v.anchor_ms + v.elapsed_ms) if v is not None else "",
        }
        if o is not None:
            row |= {
                "device_id": ONLINE,
                "voided_by": ORDER_ACTOR,
                "reason": o.reason,
                "voided_at": _iso(o.updated_at_ms),
            }
        rows.append(row)
    columns = ["number", "verification_code", "status", "sale_id", "device_id", "voided_by", "reason", "voided_at"]
    return {"report": "voided-numbers", "raffle": raffle, "columns": columns, "rows": rows}


#: the audit event types the exception report lists: the type, and for an entry's payload the
#: row's ``exception`` (None leaves the entry out). Adding a type is one line here.
AUDIT_EXCEPTIONS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "grant.issued": lambda p: "extension" if p.get("kind") == "extension" else None,
    "auth.break_glass": lambda p: "extension_approval" if p.get("kind") == "extension" else "break_glass",
    "draw.redrawn": lambda p: "redraw",
    "draw.remainder_voided": lambda p: "void_remainder",
    "grant.voided": lambda p: "grant_void",
    "device.revoked": lambda p: "revocation",
}
#: the ``exception`` values (``kind=`` filter): the ``sale`` table's, then the audit log's
ExceptionKind = Literal[
    "void",
    "rejection",
    "extension",
    "extension_approval",
    "break_glass",
    "redraw",
    "void_remainder",
    "grant_void",
    "revocation",
]
EXCEPTION_KINDS: tuple[str, ...] = get_args(ExceptionKind)
EXCEPTION_COLUMNS = (
    "at",
    "exception",
    "event_type",
    "raffle_id",
    "venue_id",
    "device_id",
    "seq",
    "record_id",
    "actor",
    "seller_id",
    "code",
    "detail",
    "voids_sale_id",
    "audit_index",
)
#: audit entries read per query (the report pages through the log by index)
AUDIT_PAGE = 1000


def _sale_exceptions(
    app: Tombola, sc: Scope, raffle: str | None, since_ms: int | None, until_ms: int | None, kind: str | None
) -> list[tuple[int, dict[str, Any]]]:
    """Accepted voids and rejected records of the ``sale`` table, as ``(at_ms, row)``."""
    if kind not in (None, "void", "rejection"):
        return []
    at = SALE.c.anchor_ms + SALE.c.elapsed_ms
    exception = case((SALE.c.status == "rejected", literal("rejection")), else_=literal("void"))
    query = (
        select(
            at.label("at_ms"),
            exception.label("exception"),
            SALE.c.raffle_id,
            VENUE.c.id.label("venue_id"),
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
        .limit(MAX_ROWS + 1)
    )
    if kind == "void":
        query = query.where(SALE.c.status == "accepted")
    elif kind == "rejection":
        query = query.where(SALE.c.status == "rejected")
    if raffle is not None:
        query = query.where(SALE.c.raffle_id == raffle)
    if since_ms is not None:
        query = query.where(at >= since_ms)
    if until_ms is not None:
        query = query.where(at < until_ms)
    out = []
    with app.engine.connect() as conn:
        for r in conn.execute(query):
            rejection = r.exception == "rejection"
            row = {
                "at": _iso(r.at_ms),
                "exception": r.exception,
                "event_type": "",
                "raffle_id": r.raffle_id,
                "venue_id": r.venue_id,
                "device_id": r.device_id,
                "seq": r.seq,
                "record_id": r.record_id,
                "actor": f"device:{r.device_id}",
                "seller_id": r.seller_id,
                "code": r.reject_code if rejection else "",
                "detail": r.reject_detail if rejection else r.void_reason,
                "voids_sale_id": r.voids_sale_id,
                "audit_index": None,
            }
            out.append((int(r.at_ms), row))
    return out


def _audit_entries(
    app: Tombola, tenant: str | None, type_: str, since_ms: int | None, until_ms: int | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, entry)`` of the log's entries of exactly ``type_`` (of ``tenant``; every tenant when
    None) in ``[since_ms, until_ms)``, oldest first, read :data:`AUDIT_PAGE` at a time by index."""
    after = -1
    while True:
        page = app.core.audit.entries(
            tenant=tenant, type_prefix=type_, after=after, limit=AUDIT_PAGE, since_ms=since_ms, until_ms=until_ms
        )
        for index, data in page:
            entry = json.loads(data)
            if entry["type"] == type_:  # the query matches a prefix
                yield index, entry
        if len(page) < AUDIT_PAGE:
            return
        after = page[-1][0]


def _audit_exceptions(
    app: Tombola, sc: Scope, raffle: str | None, since_ms: int | None, until_ms: int | None, kind: str | None
) -> list[tuple[int, dict[str, Any]]]:
    """The audit log's exceptional events (:data:`AUDIT_EXCEPTIONS`) in scope, as ``(at_ms, row)``:
    one row per entry, or per grant of an entry that lists several. The tenant filter is in the
    query; the venue is the payload's, else its raffle's or device's venue (business database)."""
    if kind in ("void", "rejection"):
        return []
    out: list[tuple[int, dict[str, Any]]] = []
    for type_, classify in AUDIT_EXCEPTIONS.items():
        for index, entry in _audit_entries(app, sc.tenant, type_, since_ms, until_ms):
            payload = entry.get("payload") or {}
            exception = classify(payload)
            if exception is None or (kind is not None and exception != kind):
                continue
            action = payload.get("action", "")
            detail = payload.get("reason") or payload.get("error") or ""
            for subject in payload.get("grants") or [payload]:
                row = {
                    "at": _iso(int(entry["time_ms"])),
                    "exception": exception,
                    "event_type": type_,
                    "raffle_id": str(subject.get("raffle_id") or ""),
                    "venue_id": str(subject.get("venue_id") or payload.get("venue_id") or ""),
                    "device_id": str(subject.get("device_id") or ""),
                    "seq": None,
                    "record_id": str(subject.get("approval_id") or subject.get("grant_id") or ""),
                    "actor": entry["actor"],
                    "seller_id": "",
                    "code": str(action),
                    "detail": str(detail),
                    "voids_sale_id": "",
                    "audit_index": index,
                }
                out.append((int(entry["time_ms"]), row))
            if len(out) > MAX_ROWS:
                break
    _resolve_venues(app, [row for _, row in out])
    if raffle is not None:
        out = [(at, row) for at, row in out if row["raffle_id"] == raffle]
    if sc.venues is not None:
        out = [(at, row) for at, row in out if row["venue_id"] in sc.venues]
    return out


def _resolve_venues(app: Tombola, rows: list[dict[str, Any]]) -> None:
    """Fill ``venue_id`` from the row's raffle, else its device (two queries in all)."""
    raffles = {r["raffle_id"] for r in rows if not r["venue_id"] and r["raffle_id"]}
    devices = {r["device_id"] for r in rows if not r["venue_id"] and r["device_id"]}
    venue_of: dict[tuple[str, str], str] = {}
    with app.engine.connect() as conn:
        for chunk in _chunks(sorted(raffles)):
            for found in conn.execute(select(RAFFLE.c.id, RAFFLE.c.venue_id).where(RAFFLE.c.id.in_(chunk))):
                venue_of["raffle", found.id] = found.venue_id
        for chunk in _chunks(sorted(devices)):
            for found in conn.execute(select(DEVICE.c.id, DEVICE.c.venue_id).where(DEVICE.c.id.in_(chunk))):
                venue_of["device", found.id] = found.venue_id
    for row in rows:
        if not row["venue_id"]:
            by_raffle = venue_of.get(("raffle", row["raffle_id"]))
            row["venue_id"] = by_raffle or venue_of.get(("device", row["device_id"]), "")


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def exceptions(
    app: Tombola,
    principal: Principal,
    *,
    raffle: str | None = None,
    since: str | None = None,
    until: str | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """GLI-31 2.8.1 exception report, oldest first: voids and rejected records from devices (the
    ``sale`` table) and the audit log's exceptional events (:data:`AUDIT_EXCEPTIONS`) with their
    audit index; in ``[since, until)``, of one raffle and one ``kind`` (:data:`EXCEPTION_KINDS`)
    if given. At most :data:`MAX_ROWS` rows (``truncated`` says when more matched).

    Raises:
        Forbidden: a role without reports.
        InvalidRequest: an unknown ``kind`` or a time that is not ISO 8601.
        NotFound: ``raffle`` is not in the principal's scope.
    """
    sc = scope(principal)
    audit.drain(app)  # events committed but not yet in the log are listed too
    if kind is not None and kind not in EXCEPTION_KINDS:
        raise InvalidRequest(f"kind is one of {', '.join(EXCEPTION_KINDS)}, not {kind[:40]!r}", field="kind")
    if raffle is not None:
        _check_raffle(app, sc, raffle)
    since_ms, until_ms = _time(since), _time(until)
    found = _sale_exceptions(app, sc, raffle, since_ms, until_ms, kind)
    found += _audit_exceptions(app, sc, raffle, since_ms, until_ms, kind)
    found.sort(key=lambda x: (x[0], x[1]["audit_index"] is not None, x[1]["device_id"], x[1]["seq"] or 0))
    rows = [row for _, row in found[:MAX_ROWS]]
    return {
        "report": "exceptions",
        "raffle": raffle,
        "kind": kind,
        "from": since,
        "to": until,
        "columns": list(EXCEPTION_COLUMNS),
        "rows": rows,
        "truncated": len(found) > MAX_ROWS,
    }


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
