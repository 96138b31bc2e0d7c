"""Audit events of the business database: the outbox, and its drain into the core's audit log.

A business change (a device enrolled or revoked, an enrollment code, a sync batch accepted or
refused, a failed login...) writes its event into ``audit_outbox`` on the same connection and
transaction as the change (:func:`record`), so both commit or neither does (invariant I7).
:func:`drain` then appends the rows to the core's log with their outbox id as ``source_id`` and
deletes them: the core appends each ``source_id`` once, so a drain that crashes after the core
commit and before the delete appends nothing twice when it runs again (exactly-once effect).

The server drains after every write request and on a timer; ``tombola`` commands drain before
they exit. :func:`record_now` is for events without a business change (a refused request).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import uuid6
from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from gli_core.api import AuditEvent, current_actor
from server.context import Tombola
from server.models import AuditOutbox, Organisation, Venue

OUTBOX = AuditOutbox.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
_TENANT_OF_VENUE = select(VENUE.c.organisation_id).where(VENUE.c.id == bindparam("venue_id"))
ORG = Organisation.__table__  # type: ignore[attr-defined]

log = logging.getLogger("tombola.audit")


def tenant_of_venue(conn: Connection, venue_id: str) -> str:
    """The organisation (audit tenant) a venue belongs to; '' when unknown."""
    return str(conn.execute(_TENANT_OF_VENUE, {"venue_id": venue_id}).scalar_one_or_none() or "")


def record(
    conn: Connection,
    app: Tombola,
    type_: str,
    payload: Mapping[str, Any],
    *,
    tenant: str = "",
    actor: str | None = None,
) -> None:
    """Write an audit event into the outbox on ``conn``'s transaction.

    The event is checked now (type, actor, no card data or secrets): a bad event fails the
    business change it belongs to rather than the drain later.
    """
    event = AuditEvent(type=type_, actor=actor or current_actor(), payload=dict(payload), tenant=tenant)
    event.check()
    conn.execute(
        insert(OUTBOX).values(
            id=str(uuid6.uuid7()),
            time_ms=app.now_ms(),
            actor=event.actor,
            tenant=tenant,
            type=type_,
            payload=json.dumps(dict(payload), sort_keys=True),
        )
    )


def record_now(
    app: Tombola, type_: str, payload: Mapping[str, Any], *, tenant: str = "", actor: str | None = None
) -> None:
    """An event with no business change of its own, in a transaction of its own, then drained."""
    with app.engine.begin() as conn:
        record(conn, app, type_, payload, tenant=tenant, actor=actor)
    drain(app)


def drain(app: Tombola, batch: int = 500) -> int:
    """Move outbox rows into the core's audit log; returns how many rows were moved.

    Safe to run from several processes at once: a row two drains take is appended once (unique
    ``source_id``); the drain that loses the race stops and leaves the rows to the next run.
    """
    moved = 0
    while True:
        with app.engine.connect() as conn:
            rows = conn.execute(select(OUTBOX).order_by(OUTBOX.c.id).limit(batch)).all()
        if not rows:
            return moved
        events = [
            AuditEvent(
                type=r.type,
                actor=r.actor,
                payload=json.loads(r.payload),
                tenant=r.tenant,
                time_ms=r.time_ms,
                source_id=r.id,
            )
            for r in rows
        ]
        try:
            app.core.audit_append(events)
        except (IntegrityError, OperationalError) as exc:  # another process drained the same rows
            log.info("audit outbox drain deferred: %s", exc.__class__.__name__)
            return moved
        with app.engine.begin() as conn:
            conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows])))
        moved += len(rows)
        if len(rows) < batch:
            return moved


def pending(app: Tombola) -> int:
    """Outbox rows not yet in the core's log."""
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one())


#: Settings whose values are logged (by fingerprint and value) when they change; secrets never are.
_LOGGED_SETTINGS = (
    "grant_size",
    "lease_s",
    "max_numbers_per_device",
    "topup_threshold",
    "enrollment_code_ttl_s",
    "clock_skew_ms",
    "max_body_bytes",
    "hsm_module",
    "hsm_token_label",
)


def settings_changed(app: Tombola) -> bool:
    """Log ``settings.changed`` when the effective non-secret settings differ from the last logged."""
    values = {name: getattr(app.settings, name) for name in _LOGGED_SETTINGS if hasattr(app.settings, name)}
    values["audit_signer"] = app.core.audit_config.signer
    values["audit_archive"] = app.core.audit_config.archive
    fingerprint = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
    last = app.core.audit.entries(type_prefix="settings.changed", after=-1, limit=1_000_000)
    if last and json.loads(last[-1][1])["payload"].get("fingerprint") == fingerprint:
        return False
    record_now(
        app,
        "settings.changed",
        {"fingerprint": fingerprint, "values": {k: str(v) for k, v in values.items()}},
        actor="service:server",
    )
    return True
