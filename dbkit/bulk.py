"""Bulk insert inside an open transaction: PostgreSQL ``COPY FROM STDIN`` (row by row through
psycopg; a few rows as one INSERT), the driver's ``executemany`` on SQLite, SQLAlchemy's insert
elsewhere; and single-statement upserts. A constraint violation aborts the transaction either
way, so nothing is partly written, and raises SQLAlchemy's ``IntegrityError`` either way."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

#: up to this many rows, PostgreSQL gets an INSERT rather than a COPY
FEW_ROWS = 8


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
    if conn.dialect.name != "postgresql" or len(rows) <= FEW_ROWS:
        # A COPY costs three round trips before its first row: a handful of rows (an audit
        # entry, a grant) go faster as one INSERT, with the statement built once per table.
        conn.execute(_insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        with driver.cursor() as cur, cur.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    except psycopg.errors.IntegrityError as exc:  # the same exception as the other paths raise
        raise IntegrityError(statement, None, exc) from exc


@functools.cache
def _insert(table: Table) -> Any:
    return insert(table)


def upsert(
    conn: Connection,
    table: Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str] = (),
    if_greater: str | None = None,
) -> None:
    """One ``INSERT ... ON CONFLICT (key) DO UPDATE SET update = excluded.update [WHERE column
    if_greater < excluded.if_greater]`` (``DO NOTHING`` without ``update``) on PostgreSQL and
    SQLite: one statement instead of a select-then-insert, no race between two writers of one
    key, and the statement built once per shape (its values are parameters)."""
    conn.execute(_upsert(conn.dialect.name, table, tuple(key), tuple(update), if_greater), dict(values))


@functools.cache
def _upsert(dialect: str, table: Table, key: tuple[str, ...], update: tuple[str, ...], if_greater: str | None) -> Any:
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - the two databases Tombola runs on
        raise NotImplementedError(f"upsert on {dialect}")
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(key))
    where = table.c[if_greater] < stmt.excluded[if_greater] if if_greater else None
    return stmt.on_conflict_do_update(index_elements=list(key), set_={c: stmt.excluded[c] for c in update}, where=where)
