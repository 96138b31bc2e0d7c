"""Engines (SQLite or PostgreSQL, with the same transaction rules on both) and Alembic migrations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

#: pooled SQLite connections kept open (file handles are cheap; opening one is not)
SQLITE_POOL_SIZE = 40

#: the execution option that marks a connection as a reader (:func:`reader`)
READ_ONLY = "tombola_read_only"


def reader(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: on SQLite they begin with a plain (deferred)
    ``BEGIN``, a snapshot of the WAL, instead of the ``BEGIN IMMEDIATE`` that serialises writers;
    on PostgreSQL nothing changes. Writing through it is a bug: SQLite refuses to upgrade a stale
    snapshot (``database is locked``), so use it only for reads. Shares ``engine``'s pool."""
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite gets WAL, FULL sync and ``BEGIN IMMEDIATE`` transactions,
    so writers serialise instead of failing at commit; PostgreSQL runs READ COMMITTED with
    explicit row locks where order matters."""
    if url.startswith("sqlite"):
        # As many pooled connections as the server has request threads (anyio's 40): a connection
        # past the pool is opened (four PRAGMAs, the WAL set up) and closed again for every request.
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        kwargs.setdefault("max_overflow", 10)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A reader (see :func:`reader`) takes a WAL snapshot and no lock: public reads neither
            # wait for a writer nor for each other. Everything else is a writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine, IDLE_PING_S)
    return engine


#: a pooled PostgreSQL connection idle longer than this is pinged before it is handed out
IDLE_PING_S = 10.0


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle, not for every checkout.

    ``pool_pre_ping`` costs a round trip on every checkout (a sync takes several); a connection
    returned to the pool moments ago is as alive as the one that just answered. One idle for
    ``idle_s`` or more (a restart or a dropped socket may have happened meanwhile) is pinged,
    and a dead one is replaced: the pool retries the checkout with a fresh connection.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["tombola_checkin"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("tombola_checkin")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:  # the driver's disconnect errors vary; any failure means replace it
            raise DisconnectionError(f"pooled connection idle {time.monotonic() - since:.0f} s is dead") from exc


def migrate(url: str, script_location: Path, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` of the Alembic history in ``script_location``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)
