"""Bulk insert inside an open transaction: PostgreSQL ``COPY FROM STDIN`` (row by row through
psycopg), the driver's ``executemany`` on SQLite, SQLAlchemy's insert elsewhere. A constraint
violation aborts the transaction either way, so nothing is partly written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` on ``conn``'s transaction."""
    if not rows:
        return
    columns = list(rows[0].keys())
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "sqlite":  # the driver's executemany: no per-row work in SQLAlchemy
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',  # noqa: S608 - names from the table
            [tuple(row[c] for c in columns) for row in rows],
        )
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
