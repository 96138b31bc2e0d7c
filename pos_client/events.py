"""Device events (GLI-31 significant events): recorded in the device's SQLite, chained, synced.

Each event is an :class:`~sync_protocol.messages.EventRecord` of the device's own event chain
(``seq`` 1, 2, 3..., ``prev_hash``/``hash`` under the domain ``event``), kept apart from the
sale chain so that events never move a sale's ``seq``. The batch that carries them is signed by
the device key (``docs/sync-protocol.md`` section 19), so events are chained and signed like
sales.

Who records what:

- the SDK itself: ``sale.voided`` (in the void's own transaction, :mod:`pos_client.voids`),
  ``clock.jump`` (a sale or void refused with ``clock_backwards``, and a sync answer showing the
  wall clock moved against the server's by more than :data:`CLOCK_JUMP_MS`), ``sync.failed``
  (a sync the server refused or that ended in conflict or 5xx), ``connection.lost`` and
  ``connection.back`` (the first unreachable sync after a reachable one, and the reverse);
- the app, seller sign-in and printing: :meth:`pos_client.PosClient.record_event` for
  ``app.start``, ``app.stop``, ``seller.sign_in``, ``seller.pin_failed``, ``printer.error``...

Events are recorded from enrollment on: before a device has an identity and a time anchor
there is nothing to chain them to, and :func:`record_event` returns ``None``.

``detail`` is a small flat object (at most 8 members; keys ``[a-z][a-z0-9_]*`` up to 32
characters; values true/false, integers within I-JSON, or strings of at most 200 characters,
which :func:`clean_detail` cuts to fit): never a PIN, a card number or anything secret.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import uuid6

from pos_client.clock import Clock, Reading
from pos_client.errors import BadInput
from pos_client.store import Store
from sync_protocol.bounds import SAFE_INT_MAX
from sync_protocol.errors import Malformed
from sync_protocol.messages import EVENT_TYPES, GENESIS_HASH, EventRecord, SyncAck
from sync_protocol.messages.events import MAX_BATCH_EVENTS, MAX_DETAIL_MEMBERS, MAX_DETAIL_TEXT

__all__ = [
    "CLOCK_JUMP_MS",
    "EVENT_TYPES",
    "DeviceEvent",
    "clean_detail",
    "record",
    "record_event",
]

#: a sync answer that shows the wall clock moved by more than this against the server's clock
#: (compared with the previous answer) records a ``clock.jump``
CLOCK_JUMP_MS = 60_000
#: the events a batch carries at most (the protocol allows :data:`MAX_BATCH_EVENTS`)
BATCH_EVENTS = MAX_BATCH_EVENTS


@dataclass(frozen=True)
class DeviceEvent:
    """A committed event."""

    seq: int
    event_id: str
    type: str
    detail: dict[str, Any]
    seller_id: str
    device_time_ms: int
    hash: str
    synced: bool = False


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """``detail`` made to fit the protocol's bounds: strings cut to 200 characters, ``None`` left out.

    Raises:
        BadInput: more than 8 members, a key not of the form ``[a-z][a-z0-9_]*`` (32 characters
            at most), or a value that is not true/false, an I-JSON integer or a string.
    """
    if not detail:
        return {}
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if value is None:
            continue
        if isinstance(value, str):
            value = value.replace("\x00", "")[:MAX_DETAIL_TEXT]
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if not -SAFE_INT_MAX <= value <= SAFE_INT_MAX:
                raise BadInput(f"event detail {key!r}: {value} is beyond the integers I-JSON carries")
        else:
            raise BadInput(f"event detail {key!r}: a value is true/false, an integer or a string, not {value!r}")
        out[str(key)] = value
    if len(out) > MAX_DETAIL_MEMBERS:
        raise BadInput(f"an event detail has at most {MAX_DETAIL_MEMBERS} members, not {len(out)}")
    return out


def _head(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def record(
    conn: sqlite3.Connection,
    store: Store,
    clock: Clock,
    type: str,
    detail: Mapping[str, Any] | None = None,
    *,
    seller_id: str = "",
) -> DeviceEvent | None:
    """Append an event inside the caller's open write transaction (it commits or rolls back with it).

    Returns ``None`` (and writes nothing) before the device is enrolled.

    Raises:
        BadInput: an unknown type, a detail out of bounds, a seller id over 64 characters.
    """
    if type not in EVENT_TYPES:
        raise BadInput(f"{type!r} is not a device event type; the types are: {', '.join(EVENT_TYPES)}")
    if len(seller_id) > 64:
        raise BadInput("a seller id has at most 64 characters")
    body = clean_detail(detail)
    state = store.device()
    if state is None or state.device_id is None or state.anchor is None:
        return None
    now = Reading.of(clock)
    seq, prev = _head(conn)
    try:
        event = EventRecord(
            event_id=str(uuid6.uuid7()),
            device_id=state.device_id,
            seq=seq + 1,
            type=type,  # checked against EVENT_TYPES above
            detail=body,
            seller_id=seller_id,
            device_time_ms=max(0, now.wall_ms),
            anchor_ms=state.anchor.server_time_ms,
            elapsed_ms=state.anchor.elapsed_ms(now),
            prev_hash=prev,
        ).sealed()
    except ValueError as exc:  # pydantic's ValidationError: a detail key of the wrong form
        raise BadInput(f"the event does not fit the protocol: {exc}") from exc
    conn.execute(
        "INSERT INTO events (seq, event_id, type, seller_id, device_time_ms, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.seq, event.event_id, event.type, seller_id, event.device_time_ms, event.hash, _dumps(event)),
    )
    return _event(event, synced=False)


def record_event(
    store: Store, clock: Clock, type: str, detail: Mapping[str, Any] | None = None, *, seller_id: str = ""
) -> DeviceEvent | None:
    """Append an event in its own durable transaction; see :func:`record`."""
    with store.write() as conn:
        return record(conn, store, clock, type, detail, seller_id=seller_id)


def _dumps(event: EventRecord) -> str:
    return json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False)


def _event(event: EventRecord, *, synced: bool) -> DeviceEvent:
    return DeviceEvent(
        seq=event.seq,
        event_id=event.event_id,
        type=event.type,
        detail=dict(event.detail),
        seller_id=event.seller_id,
        device_time_ms=event.device_time_ms,
        hash=event.hash,
        synced=synced,
    )


# --------------------------------------------------------------------------- sync support


def acked(conn: sqlite3.Connection) -> tuple[int, str]:
    """The last event the server acknowledged, and its hash."""
    row = conn.execute("SELECT acked_seq, acked_hash FROM event_ack WHERE id = 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def pending_bodies(conn: sqlite3.Connection, limit: int = BATCH_EVENTS) -> list[dict[str, Any]]:
    """The wire dicts of the first ``limit`` events the server has not acknowledged, in order."""
    after, _ = acked(conn)
    rows = conn.execute("SELECT body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)).fetchall()
    return [json.loads(row[0]) for row in rows]


def pending_count(conn: sqlite3.Connection) -> int:
    """How many events the server has not acknowledged."""
    after, _ = acked(conn)
    return int(conn.execute("SELECT COUNT(*) FROM events WHERE seq > ?", (after,)).fetchone()[0])


def apply_ack(conn: sqlite3.Connection, ack: SyncAck) -> bool:
    """Take the event part of an ack (inside the ack's transaction); ``True`` if it moved.

    The acknowledged head must be this device's own event at that seq; otherwise the server and
    the device disagree about the event chain and nothing is taken (the sale part of the ack is
    unaffected; the next sync sends the events again and the server answers with a coded error).
    """
    if ack.events_acked_seq is None or ack.events_head_hash is None:
        return False
    seq, head = ack.events_acked_seq, ack.events_head_hash
    if seq == 0:
        local: str | None = GENESIS_HASH
    else:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        local = str(row[0]) if row else None
    if local != head:
        return False
    before, _ = acked(conn)
    conn.execute("UPDATE event_ack SET acked_seq = ?, acked_hash = ? WHERE id = 1", (seq, head))
    return seq != before


def rewind_ack(conn: sqlite3.Connection, missing_seq: int) -> bool:
    """The server holds fewer events than it once acknowledged (restored from a backup) and asks
    for ``missing_seq`` on: send from there again (re-sending is harmless). ``True`` if it moved.

    Only ever backwards, and only to an event this device holds (or to the start of its chain).
    """
    before, _ = acked(conn)
    target = missing_seq - 1
    if not 0 <= target < before:
        return False
    if target == 0:
        head: str | None = GENESIS_HASH
    else:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", (target,)).fetchone()
        head = str(row[0]) if row else None
    if head is None:
        return False
    conn.execute("UPDATE event_ack SET acked_seq = ?, acked_hash = ? WHERE id = 1", (target, head))
    return True


def connection_state(conn: sqlite3.Connection) -> str | None:
    """``connection.lost`` or ``connection.back``: the last connection event recorded, if any."""
    row = conn.execute(
        "SELECT type FROM events WHERE type IN ('connection.lost', 'connection.back') ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else None


def note_reachable(store: Store, clock: Clock, *, reachable: bool, detail: Mapping[str, Any] | None = None) -> None:
    """Record ``connection.lost`` / ``connection.back`` when the reachability changes (not on every try)."""
    wanted = "connection.back" if reachable else "connection.lost"
    if store.device() is None:
        return
    with store.read() as conn:  # the common case (no change) writes nothing
        last = connection_state(conn)
    if last == wanted or (reachable and last is None):
        return
    with store.write() as conn:
        last = connection_state(conn)
        if last == wanted or (reachable and last is None):
            return
        record(conn, store, clock, wanted, detail)


def note_clock_offset(
    conn: sqlite3.Connection, store: Store, clock: Clock, *, old_offset_ms: int | None, new_offset_ms: int
) -> DeviceEvent | None:
    """Record ``clock.jump`` (inside the caller's transaction) when the wall clock moved against the
    server's by more than :data:`CLOCK_JUMP_MS` between two sync answers."""
    if old_offset_ms is None:
        return None
    change = new_offset_ms - old_offset_ms
    if abs(change) <= CLOCK_JUMP_MS:
        return None
    return record(conn, store, clock, "clock.jump", {"source": "sync", "change_ms": change})


# --------------------------------------------------------------------------- reading


def list_events(store: Store, *, after_seq: int = 0, type: str | None = None, limit: int = 1000) -> list[DeviceEvent]:
    """Events after ``after_seq`` (of one ``type`` if given), oldest first, at most ``limit``."""
    with store.read() as conn:
        sent, _ = acked(conn)
        sql = "SELECT body FROM events WHERE seq > ?"
        params: list[Any] = [after_seq]
        if type is not None:
            sql += " AND type = ?"
            params.append(type)
        sql += " ORDER BY seq LIMIT ?"
        params.append(max(0, limit))
        rows = conn.execute(sql, params).fetchall()
    out = []
    for row in rows:
        try:
            event = EventRecord.from_dict(json.loads(row[0]))
        except Malformed:  # pragma: no cover - the SDK wrote it
            continue
        out.append(_event(event, synced=event.seq <= sent))
    return out
