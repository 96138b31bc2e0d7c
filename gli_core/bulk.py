"""Bulk insert inside an open transaction: PostgreSQL ``COPY FROM STDIN`` (row by row through
psycopg), the driver's ``executemany`` on SQLite, SQLAlchemy's insert elsewhere. A constraint
violation aborts the transaction either way, so nothing is partly written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
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


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Mapping[str, Any] | None = None,
    update_where: Any = None,
) -> None:
    """One ``INSERT ... ON CONFLICT (key) DO UPDATE SET update [WHERE update_where]`` (``DO
    NOTHING`` without ``update``) on PostgreSQL and SQLite: one statement instead of a
    select-then-insert, and no race between two writers of the same key."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values)
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table).values(**values)
    else:  # pragma: no cover - the two databases Tombola runs on
        raise NotImplementedError(f"upsert on {conn.dialect.name}")
    if update:
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=dict(update), where=update_where))
    else:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=list(key)))
