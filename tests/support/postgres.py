"""Database fixtures: the PostgreSQL test server and the SQLite/PostgreSQL ``db_backend`` pair.

Environment:

``TOMBOLA_TEST_PG_DSN``
    SQLAlchemy URL base of the test server, ending in ``/``; ``make test`` sets it to
    ``postgresql+psycopg://tombola_test:tombola_test@127.0.0.1:5432/`` after running
    ``scripts/pg-setup.sh``. The role needs ``CREATEDB``, and membership of ``pg_signal_backend`` so that
    ``DROP DATABASE ... WITH (FORCE)`` may end an autovacuum worker (without it, see ``_drop``).
``CI``
    When set (and not ``0``/``false``/``no``), a missing or unreachable server makes the tests
    that need it FAIL instead of being skipped, so CI never passes without PostgreSQL.
``PYTEST_XDIST_WORKER``
    Set by pytest-xdist; database names then carry the worker id so that workers never collide.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

PG_DSN_ENV = "TOMBOLA_TEST_PG_DSN"
DEFAULT_PG_DSN = "postgresql+psycopg://tombola_test:tombola_test@127.0.0.1:5432/"
DB_PREFIX = "tombola_t_"
MAINTENANCE_DB = "postgres"
CONNECT_TIMEOUT_S = 5
#: Plain DROP DATABASE attempts (each waits up to 5 s for an autovacuum worker) when FORCE is refused.
DROP_ATTEMPTS = 4

_PG_MAX_IDENTIFIER = 63
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_db_counter = itertools.count(1)
#: Per test session, so that two sessions on one server (a developer's run beside CI, or a
#: benchmark) never take, or drop, each other's databases.
_SESSION = f"s{os.getpid()}"


def in_ci() -> bool:
    """True when the environment variable CI says we run in continuous integration."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pg_database_name(name: str) -> str:
    """The full test-database name for ``name``.

    Names already starting with ``tombola_t_`` are taken as they are; others get the prefix, plus
    the pytest-xdist worker id (``tombola_t_gw0_<name>``) when running under xdist.
    """
    if not name.startswith(DB_PREFIX):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "").lower()
        name = DB_PREFIX + (f"{worker}_" if worker else "") + name
    if not _NAME_RE.match(name) or len(name) > _PG_MAX_IDENTIFIER:
        raise ValueError(f"invalid test database name {name!r}: use [a-z0-9_], at most 63 characters")
    return name


def _pg_url(admin_dsn: str) -> URL:
    try:
        url = make_url(admin_dsn)
    except ArgumentError as exc:
        raise ValueError(f"{PG_DSN_ENV} is not a SQLAlchemy URL: {exc}") from None
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"{PG_DSN_ENV} must be a postgresql:// SQLAlchemy URL, got {url!r}")
    return url


def _connect_maintenance(admin_dsn: str) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection to the ``postgres`` database with the DSN's credentials.

    The DSN is SQLAlchemy style (``postgresql+psycopg://``); psycopg gets its parts as keywords,
    which also spares us from re-quoting passwords with special characters.
    """
    url = _pg_url(admin_dsn)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=MAINTENANCE_DB,
        connect_timeout=CONNECT_TIMEOUT_S,
        autocommit=True,
    )


def create_pg_database(admin_dsn: str, name: str) -> str:
    """(Re)create an empty UTF-8 database and return its SQLAlchemy URL.

    ``name`` goes through :func:`pg_database_name` (``tombola_t_`` prefix, xdist worker id).
    An existing database of that name, left over from an interrupted run, is dropped first, even
    with open connections (``WITH (FORCE)``).
    """
    full_name = pg_database_name(name)
    ident = sql.Identifier(full_name)
    with _connect_maintenance(admin_dsn) as conn:
        _drop(conn, ident)
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident))
    return _pg_url(admin_dsn).set(database=full_name).render_as_string(hide_password=False)


def drop_pg_database(admin_dsn: str, name: str) -> None:
    """Drop a database made by :func:`create_pg_database` (same ``name``), closing its connections."""
    ident = sql.Identifier(pg_database_name(name))
    with _connect_maintenance(admin_dsn) as conn:
        _drop(conn, ident)


def _drop(conn: psycopg.Connection, ident: sql.Identifier) -> None:
    """``DROP DATABASE IF EXISTS ... WITH (FORCE)``, and without FORCE when the role may not force.

    PostgreSQL 15 counts an autovacuum worker busy in the database as a session FORCE must
    terminate, and refuses that unless the role is in ``pg_signal_backend`` (which
    ``scripts/pg-setup.sh`` grants). For a role set up without it, a plain DROP asks the
    autovacuum worker to stop and waits up to 5 s for it; it is retried a few times.
    """
    try:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    except psycopg.errors.InsufficientPrivilege:
        pass
    for attempt in range(DROP_ATTEMPTS):
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
            return
        except psycopg.errors.ObjectInUse:
            if attempt == DROP_ATTEMPTS - 1:
                raise
            time.sleep(0.5)


def _masked(dsn: str) -> str:
    """The DSN with its password hidden, for messages."""
    try:
        return make_url(dsn).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def _pg_unavailable(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere; never returns."""
    how = (
        "Run `make test`, or start PostgreSQL with `bash scripts/pg-setup.sh` and "
        f"`export {PG_DSN_ENV}={DEFAULT_PG_DSN}`."
    )
    if in_ci():
        pytest.fail(f"PostgreSQL is required in CI but {reason}. {how}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}. {how}")


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """SQLAlchemy URL base (ending in ``/``) of a reachable PostgreSQL test server.

    Skips the test when ``TOMBOLA_TEST_PG_DSN`` is unset or the server is unreachable, except
    in CI where it fails instead.
    """
    dsn = os.environ.get(PG_DSN_ENV, "").strip()
    if not dsn:
        _pg_unavailable(f"{PG_DSN_ENV} is not set")
    try:
        with _connect_maintenance(dsn) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, ValueError) as exc:
        _pg_unavailable(f"cannot connect with {PG_DSN_ENV}={_masked(dsn)} ({type(exc).__name__}: {exc})")
    _drop_abandoned(dsn)
    return dsn


def _drop_abandoned(dsn: str) -> None:
    """Drop test databases left by sessions whose process is gone (killed runs)."""
    with _connect_maintenance(dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'tombola_t_s%'")]
    for name in names:
        match = re.match(r"^tombola_t_s(\d+)_", name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(psycopg.Error), _connect_maintenance(dsn) as conn:
            _drop(conn, sql.Identifier(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class DbUrls:
    """SQLAlchemy URLs of the two databases of one Tombola install, on one backend."""

    core: str
    business: str
    backend: str  # "sqlite" or "postgresql", the SQLAlchemy dialect name


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbUrls]:
    """Fresh, empty core and business databases; the test runs once per backend.

    - ``sqlite``: ``core.db`` and ``business.db`` in the test's ``tmp_path``;
    - ``postgresql``: two new databases on the ``pg_admin_dsn`` server, dropped after the test.
    """
    backend: str = request.param
    if backend == "sqlite":
        yield DbUrls(
            core=f"sqlite:///{tmp_path / 'core.db'}",
            business=f"sqlite:///{tmp_path / 'business.db'}",
            backend="sqlite",
        )
        return

    admin_dsn: str = request.getfixturevalue("pg_admin_dsn")
    n = next(_db_counter)
    core_name, business_name = f"{_SESSION}_{n}_core", f"{_SESSION}_{n}_business"
    try:
        core = create_pg_database(admin_dsn, core_name)
        business = create_pg_database(admin_dsn, business_name)
        yield DbUrls(core=core, business=business, backend="postgresql")
    finally:
        drop_pg_database(admin_dsn, core_name)
        drop_pg_database(admin_dsn, business_name)


@pytest.fixture
def core_engine(db_backend: DbUrls) -> Iterator[Engine]:
    """An engine on the migrated core database of ``db_backend`` (both backends)."""
    from dbkit import make_engine
    from gli_core.db import migrate

    migrate(db_backend.core)
    engine = make_engine(db_backend.core)
    yield engine
    engine.dispose()
