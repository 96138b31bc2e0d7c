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
    bulk_insert_rows(conn, table, columns, [tuple(row[c] for c in columns) for row in rows])


def bulk_insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples of the values of ``columns``, in that order) into ``table``."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name == "sqlite":  # the driver's executemany: no per-row work in SQLAlchemy
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',  # noqa: S608 - names from the table
            list(rows),
        )
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        write = copy.write_row
        for row in rows:
            write(row)
