"""Database plumbing shared openly by the core and the server (and the benchmarks).

Both sides run the same engine rules (SQLite: WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``
writers; PostgreSQL: a pool whose idle connections are pinged) and the same bulk writes
(``COPY`` on PostgreSQL) and upserts, each over its own database and Alembic history
(``gli_core/migrations``, ``server/migrations``). It imports nothing of the project, so using it
gives neither side a way into the other (import-linter contract in ``pyproject.toml``).
"""

from dbkit.bulk import bulk_insert, bulk_insert_rows, upsert
from dbkit.engine import make_engine, migrate, reader

__all__ = ["bulk_insert", "bulk_insert_rows", "make_engine", "migrate", "reader", "upsert"]
