"""The device's hash chain of sale and void records, as rows of the ``records`` table.

Each row keeps the record's wire form (``body``, the exact dict that was hashed) and a few
columns pulled out of it for queries: ``seq`` (the primary key: gapless per device),
``sale_id``, ``kind``, ``raffle_id``, ``hash``, ``device_time_ms``, ``amount_cents``,
``numbers``, ``voids``. Three columns are local bookkeeping, never hashed: ``voided_by`` (on a
sale, the void record's id), and ``rejected_code``/``rejected_detail``/``rejected_at_ms`` (the
server refused the record; the chain goes on, the operator refunds).

All functions take an open connection and run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from sync_protocol.messages import GENESIS_HASH, SaleRecord, VoidRecord, parse_record


@dataclass(frozen=True)
class ChainHead:
    """The last record of the chain (``seq`` 0 and the genesis hash when there is none)."""

    seq: int
    hash: str
    device_time_ms: int | None


@dataclass(frozen=True)
class RejectedRecord:
    """A record the server refused: the operator must refund a rejected sale."""

    seq: int
    sale_id: str
    kind: str
    raffle_id: str
    code: str
    detail: str
    amount_cents: int | None
    numbers: list[int]


def head(conn: sqlite3.Connection) -> ChainHead:
    row = conn.execute("SELECT seq, hash, device_time_ms FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if row is None:
        return ChainHead(seq=0, hash=GENESIS_HASH, device_time_ms=None)
    return ChainHead(seq=row[0], hash=row[1], device_time_ms=row[2])


def append(conn: sqlite3.Connection, record: SaleRecord | VoidRecord) -> None:
    """Insert a sealed record (the caller checked it continues the chain)."""
    body = record.to_dict()
    numbers = orjson.dumps(record.numbers).decode() if isinstance(record, SaleRecord) else None
    conn.execute(
        "INSERT INTO records (seq, sale_id, kind, raffle_id, hash, device_time_ms, amount_cents, numbers, voids, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.seq,
            record.sale_id,
            record.kind,
            record.raffle_id,
            record.hash,
            record.device_time_ms,
            record.amount_cents if isinstance(record, SaleRecord) else None,
            numbers,
            record.voids if isinstance(record, VoidRecord) else None,
            orjson.dumps(body).decode(),
        ),
    )


def hash_at(conn: sqlite3.Connection, seq: int) -> str | None:
    """The hash of record ``seq`` (the genesis hash for 0), ``None`` if there is no such record."""
    if seq == 0:
        return GENESIS_HASH
    row = conn.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def bodies_after(conn: sqlite3.Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """Wire dicts of up to ``limit`` records after ``seq``, in order."""
    rows = conn.execute("SELECT body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
    return [orjson.loads(r[0]) for r in rows]


def iter_bodies(conn: sqlite3.Connection, *, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Every record's wire dict in ``seq`` order, fetched ``chunk`` rows at a time."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (last, chunk)
        ).fetchall()
        if not rows:
            return
        for seq, body in rows:
            last = seq
            yield orjson.loads(body)


def iter_records(conn: sqlite3.Connection) -> Iterator[SaleRecord | VoidRecord]:
    """Every record, parsed, in ``seq`` order."""
    for body in iter_bodies(conn):
        yield parse_record(body)


def count(conn: sqlite3.Connection, *, after: int = 0) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM records WHERE seq > ?", (after,)).fetchone()[0])


def sale_row(conn: sqlite3.Connection, sale_id: str) -> dict[str, Any] | None:
    cursor = conn.execute(
        "SELECT seq, kind, raffle_id, voided_by, rejected_code FROM records WHERE sale_id = ?", (sale_id,)
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def mark_voided(conn: sqlite3.Connection, sale_id: str, void_id: str) -> None:
    conn.execute("UPDATE records SET voided_by = ? WHERE sale_id = ?", (void_id, sale_id))


def mark_rejected(conn: sqlite3.Connection, seq: int, code: str, detail: str, at_ms: int) -> bool:
    """Record that the server refused record ``seq``; ``False`` if it was already marked so."""
    cur = conn.execute(
        "UPDATE records SET rejected_code = ?, rejected_detail = ?, rejected_at_ms = ? "
        "WHERE seq = ? AND (rejected_code IS NULL OR rejected_code != ? OR rejected_detail IS NOT ?)",
        (code, detail, at_ms, seq, code, detail),
    )
    return cur.rowcount > 0


def rejected_code(conn: sqlite3.Connection, seq: int) -> str | None:
    row = conn.execute("SELECT rejected_code FROM records WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else row[0]


def rejections_between(conn: sqlite3.Connection, first: int, last: int) -> list[tuple[int, str]]:
    """``(seq, code)`` of every record marked rejected with ``first <= seq <= last``."""
    rows = conn.execute(
        "SELECT seq, rejected_code FROM records WHERE rejected_code IS NOT NULL AND seq BETWEEN ? AND ? ORDER BY seq",
        (first, last),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def rejected(conn: sqlite3.Connection) -> list[RejectedRecord]:
    rows = conn.execute(
        "SELECT seq, sale_id, kind, raffle_id, rejected_code, rejected_detail, amount_cents, numbers "
        "FROM records WHERE rejected_code IS NOT NULL ORDER BY seq"
    ).fetchall()
    return [
        RejectedRecord(
            seq=r[0],
            sale_id=r[1],
            kind=r[2],
            raffle_id=r[3],
            code=r[4],
            detail=r[5] or "",
            amount_cents=r[6],
            numbers=orjson.loads(r[7]) if r[7] else [],
        )
        for r in rows
    ]
