"""Benchmark: appending to the audit log in batches and verifying it, beside raw SHA-256 and a raw insert.

Appends ``--entries`` events (default 1,000,000; 100,000 with ``TOMBOLA_BENCH_SIZE=small``) in
transactions of ``--batch`` events through :meth:`gli_core.audit.log.AuditLog.append` (checks,
canonical JSON, leaf hash, frontier, stored subtree nodes, head row lock), signs a checkpoint,
then verifies the whole log from the database with :func:`gli_core.audit.verify.verify_chunks`
(every entry parsed, index checked, leaf re-hashed against its stored hash, tree rebuilt,
checkpoint signature and root checked). References measured in the same run:

* ``raw_hash_s``: ``SHA-256(0x00 || entry)`` over exactly the stored entry bytes, in a loop;
* ``raw_insert_per_s``: the same rows (read back from ``core_audit_entry``, every column) inserted
  with the same bulk path (``executemany``/COPY) and batch size, nothing computed, into a scratch
  table with what migration 0003 gives ``core_audit_entry``: the same columns, types and
  nullability, the primary key ``idx``, the unique ``source_id`` and the indexes ``(tenant, idx)``
  and ``(type, idx)``. The bench reads both tables' definitions back from the database and stops
  if they differ (``reference_matches``).

Last line: one JSON object with ``append_per_s``, ``verify_s``, ``raw_hash_s``, the ratios
``append_ratio`` (append / raw insert) and ``verify_ratio`` (raw hash / verify), and ``ok``.
Targets: ``append_per_s >= 20000`` and ``verify_s <= 10`` for 1,000,000 entries.

    .venv/bin/python bench/audit.py [--entries N] [--batch 1000] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Column, Engine, Index, LargeBinary, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import make_url

from dbkit import bulk_insert, make_engine
from gli_core.audit.entry import AuditEvent
from gli_core.audit.log import AuditLog
from gli_core.audit.note import NoteVerifier, SoftwareNoteSigner
from gli_core.audit.verify import verify_chunks
from gli_core.db import migrate
from gli_core.models import AuditEntry

DEFAULT_PG_DSN = "postgresql+psycopg://tombola_test:tombola_test@127.0.0.1:5432/"
ORIGIN = "tombola.local/audit/bench"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pg_database(dsn: str, name: str) -> str:
    url = make_url(dsn)
    conninfo = str(url.set(drivername="postgresql", database="postgres")).replace("***", url.password or "")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


AUDIT_ENTRY = AuditEntry.__table__  # type: ignore[attr-defined]


def reference_table(meta: MetaData) -> Table:
    """A scratch table with ``core_audit_entry``'s columns, keys, constraints and indexes (migration 0003)."""
    table = Table(
        "bench_raw_entry",
        meta,
        Column("idx", BigInteger, primary_key=True, autoincrement=False),
        Column("time_ms", BigInteger, nullable=False),
        Column("actor", String(100), nullable=False),
        Column("tenant", String(64), nullable=False),
        Column("type", String(64), nullable=False),
        Column("source_id", String(64), nullable=True, unique=True),
        Column("data", String, nullable=False),
        Column("leaf_hash", LargeBinary, nullable=False),
    )
    Index("ix_bench_raw_entry_tenant", table.c.tenant, table.c.idx)
    Index("ix_bench_raw_entry_type", table.c.type, table.c.idx)
    return table


def shape(engine: Engine, name: str) -> dict[str, Any]:
    """A table's definition as the database reports it: columns, primary key, unique sets, indexes."""
    found = inspect(engine)
    uniques = {tuple(u["column_names"]) for u in found.get_unique_constraints(name)}
    indexes = {tuple(i["column_names"]) for i in found.get_indexes(name) if not i.get("unique")}
    uniques |= {tuple(i["column_names"]) for i in found.get_indexes(name) if i.get("unique")}
    return {
        "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(name)],
        "primary_key": found.get_pk_constraint(name)["constrained_columns"],
        "unique": sorted(uniques),
        "indexes": sorted(indexes),
    }


def events(start: int, count: int) -> list[AuditEvent]:
    """Realistic events: a grant or a recorded batch, with ids, numbers and a tenant."""
    out = []
    for i in range(start, start + count):
        if i % 2:
            payload: dict[str, Any] = {
                "grant_id": f"0193a1b2-{i:08x}-7c00-8000-000000000000",
                "raffle_id": f"rf-{i % 97:010d}",
                "device_id": f"dv-{i % 1013:010d}",
                "first_number": i * 1000 + 1,
                "last_number": i * 1000 + 1000,
                "kind": "topup",
                "reason": "",
                "signer_key_id": "ed25519:2c4ec941b9011bdb",
            }
            kind = "grant.issued"
        else:
            payload = {
                "device_id": f"dv-{i % 1013:010d}",
                "sales": 50,
                "tickets": 75,
                "seq_first": i,
                "seq_last": i + 49,
            }
            kind = "tickets.recorded"
        out.append(AuditEvent(type=kind, actor=f"device:dv-{i % 1013:010d}", payload=payload, tenant=f"org-{i % 7}"))
    return out


def main() -> None:
    small = os.environ.get("TOMBOLA_BENCH_SIZE") == "small"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000 if small else 1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default=os.environ.get("TOMBOLA_TEST_PG_DSN") or DEFAULT_PG_DSN)
    parser.add_argument("--out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tombola-bench-audit-"))
    url = f"sqlite:///{scratch / 'core.db'}" if args.db == "sqlite" else pg_database(args.pg_dsn, "tombola_bench_audit")
    migrate(url)
    engine = make_engine(url)
    signer = SoftwareNoteSigner.generate(ORIGIN)
    audit = AuditLog(engine, signer, origin=ORIGIN)
    batches = [events(s, min(args.batch, args.entries - s)) for s in range(0, args.entries, args.batch)]
    log(f"appending {args.entries:,} events in batches of {args.batch} to {args.db} ...")

    start = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            audit.append(conn, batch)
    append_s = time.perf_counter() - start
    checkpoint = audit.checkpoint("bench")
    log(f"appended in {append_s:.2f} s ({args.entries / append_s:,.0f}/s); checkpoint at {checkpoint.size}")

    # reference 1: the same rows, raw, through the same bulk path into a table of the same definition
    scratch_table = reference_table(MetaData())
    scratch_table.create(engine)
    assert shape(engine, "bench_raw_entry") == shape(engine, "core_audit_entry"), "the reference table differs"
    with engine.connect() as conn:
        raw_rows = [dict(r._mapping) for r in conn.execute(select(AUDIT_ENTRY).order_by(AUDIT_ENTRY.c.idx))]
    assert len(raw_rows) == args.entries
    start = time.perf_counter()
    for s in range(0, len(raw_rows), args.batch):
        with engine.begin() as conn:
            bulk_insert(conn, scratch_table, raw_rows[s : s + args.batch])
    raw_insert_s = time.perf_counter() - start
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_raw_entry"))
    rows = [(r["idx"], r["data"].encode(), r["leaf_hash"]) for r in raw_rows]

    # reference 2: raw SHA-256 over the same bytes
    data = [d for _, d, _ in rows]
    start = time.perf_counter()
    sha = hashlib.sha256
    for d in data:
        sha(b"\x00" + d).digest()
    raw_hash_s = time.perf_counter() - start
    del rows, raw_rows, data

    start = time.perf_counter()
    report = verify_chunks(audit.iter_chunks(), [checkpoint.note], [NoteVerifier.from_key(signer)], origin=ORIGIN)
    verify_s = time.perf_counter() - start
    assert report.ok and report.entries == args.entries, report.failure
    log(f"verified in {verify_s:.2f} s; raw SHA-256 {raw_hash_s:.2f} s; raw insert {raw_insert_s:.2f} s")

    append_per_s = args.entries / append_s
    raw_insert_per_s = args.entries / raw_insert_s
    result = {
        "db": args.db,
        "entries": args.entries,
        "batch": args.batch,
        "append_s": round(append_s, 3),
        "append_per_s": round(append_per_s),
        "raw_insert_per_s": round(raw_insert_per_s),
        "append_ratio": round(append_per_s / raw_insert_per_s, 3),
        "verify_s": round(verify_s, 3),
        "raw_hash_s": round(raw_hash_s, 3),
        "verify_ratio": round(raw_hash_s / verify_s, 3),
        "reference_matches": True,
        "ok": append_per_s >= 20_000 and (args.entries > 1_000_000 or verify_s <= 10),
    }
    engine.dispose()
    line = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
