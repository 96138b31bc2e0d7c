"""Device events on the server: verify and store the events a batch carries, list them.

:func:`apply_events` runs inside the batch's own transaction, with the device's row locked
(``server.sync.service``): the events and the sales of a batch are written together or not at
all. It checks the event chain as section 19 of ``docs/sync-protocol.md`` says (the batch
signature, checked before, covers every event), stores the new events once, and compares a
re-sent one with the event held at its seq; a broken chain refuses the whole batch with
``event_chain_broken`` or ``event_sequence_gap``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select

from dbkit import bulk_insert_rows
from server.context import Tombola
from server.enrollment.service import DEVICE
from server.errors import InvalidRequest, NotFound
from server.events.models import DeviceEvent
from sync_protocol.canonical import canonical_bytes
from sync_protocol.chain import verify_event_chain
from sync_protocol.errors import EventChainBroken, EventSequenceGap
from sync_protocol.messages import EVENT_TYPES, GENESIS_HASH, EventRecord

EVENT = DeviceEvent.__table__  # type: ignore[attr-defined]

#: the most events one listing returns
MAX_LIST = 10_000

_HEAD = (
    select(EVENT.c.seq, EVENT.c.hash)
    .where(EVENT.c.device_id == bindparam("device_id"))
    .order_by(EVENT.c.seq.desc())
    .limit(1)
)
_COLUMNS = (
    "device_id",
    "seq",
    "event_id",
    "type",
    "detail",
    "seller_id",
    "device_time_ms",
    "anchor_ms",
    "elapsed_ms",
    "occurred_at_ms",
    "prev_hash",
    "hash",
    "received_at_ms",
)


def head(conn: Any, device_id: str) -> tuple[int, str]:
    """The last event the server holds of ``device_id``'s chain, and its hash (``(0, GENESIS_HASH)``: none)."""
    row = conn.execute(_HEAD, {"device_id": device_id}).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS_HASH)


def apply_events(conn: Any, device_id: str, events: Sequence[EventRecord], *, now_ms: int) -> tuple[int, str]:
    """Verify ``events`` against the held chain and store the new ones; return the new (acked seq, head hash).

    Raises:
        DeviceMismatch: an event of another device.
        EventSequenceGap: the events start after the event following the held head, or skip one
            (``missing_event_seq`` names where the device must send from).
        EventChainBroken: a link or hash does not match, or a re-sent event differs from the one held.
    """
    held_seq, held_hash = head(conn, device_id)
    if not events:
        return held_seq, held_hash
    first = events[0].seq
    if first > held_seq + 1:
        raise EventSequenceGap(
            f"the server holds events up to {held_seq}; event {held_seq + 1} is missing",
            missing_event_seq=held_seq + 1,
            event_seq=first,
        )
    verify_event_chain(events, device_id=device_id, prev_seq=first - 1, prev_hash=events[0].prev_hash)
    split = max(0, min(len(events), held_seq - first + 1))
    old, new = events[:split], events[split:]
    if old:
        stored = dict(
            conn.execute(
                select(EVENT.c.seq, EVENT.c.hash).where(
                    (EVENT.c.device_id == device_id) & EVENT.c.seq.in_([e.seq for e in old])
                )
            ).all()
        )
        for event in old:
            if stored.get(event.seq) != event.hash:
                raise EventChainBroken(f"event {event.seq} differs from the one the server holds", event_seq=event.seq)
    elif events[0].prev_hash != held_hash:
        raise EventChainBroken(f"the events do not follow event {held_seq} held by the server", event_seq=first)
    if not new:
        return held_seq, held_hash
    bulk_insert_rows(conn, EVENT, _COLUMNS, [_row(e, now_ms) for e in new])
    return new[-1].seq, new[-1].hash


def _row(event: EventRecord, now_ms: int) -> tuple[Any, ...]:
    return (
        event.device_id,
        event.seq,
        event.event_id,
        event.type,
        canonical_bytes(event.detail).decode("utf-8"),
        event.seller_id,
        event.device_time_ms,
        event.anchor_ms,
        event.elapsed_ms,
        event.anchored_time_ms,
        event.prev_hash,
        event.hash,
        now_ms,
    )


def parse_since(text: str) -> int:
    """An ISO 8601 time (naive = UTC; ``Z`` allowed) as Unix milliseconds.

    Raises:
        InvalidRequest: not such a time.
    """
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{text[:64]!r} is not an ISO 8601 time such as 2026-12-31T22:00:00Z") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def list_events(
    app: Tombola,
    device_id: str,
    *,
    since: str | None = None,
    type: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """A device's events in chain order (oldest first): those that happened at or after ``since``
    (ISO 8601, on the server's clock: ``anchor_ms + elapsed_ms``), of one ``type`` if given, at
    most ``limit``.

    The one listing of the CLI (``tombola device events``) and the admin API
    (``GET /v1/admin/devices/{id}/events``).

    Raises:
        NotFound: no such device.
        InvalidRequest: an unknown type, a time that is not ISO 8601, or a limit outside 1..10000.
    """
    since_ms = parse_since(since) if since is not None else None
    if type is not None and type not in EVENT_TYPES:
        raise InvalidRequest(f"{type!r} is not a device event type; the types are: {', '.join(EVENT_TYPES)}")
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"the limit is 1 to {MAX_LIST}, not {limit}")
    query = select(EVENT).where(EVENT.c.device_id == device_id)
    if since_ms is not None:
        query = query.where(EVENT.c.occurred_at_ms >= since_ms)
    if type is not None:
        query = query.where(EVENT.c.type == type)
    query = query.order_by(EVENT.c.seq).limit(limit)
    with app.engine.connect() as conn:
        if conn.execute(select(DEVICE.c.id).where(DEVICE.c.id == device_id)).first() is None:
            raise NotFound(f"no device {device_id}", device_id=device_id)
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows
