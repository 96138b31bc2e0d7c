"""Rate limits shared by every server process: the ``limits`` library over a store all processes see.

``tombola serve --workers N`` runs N processes (and production runs N servers behind a load
balancer); a limit kept in each process's memory would let a client through N times over. So the
limits live where every process looks: by default the business database
(:class:`DatabaseStorage`, table ``rate_limit``), else any store ``limits`` knows
(``TOMBOLA_RATE_LIMIT_STORAGE=redis://host:6379``, ``memcached://...``), or ``memory://`` for a
single process that wants no write per request. The default, ``auto``, is the database on
PostgreSQL and memory on SQLite: an SQLite installation is served by one process (``tombola serve``
refuses more workers on it), and a durable write per public request would cap its throughput at
the disk's fsync rate. On PostgreSQL the counting transaction does not wait for the WAL flush.

:class:`DatabaseStorage` is a ``limits`` storage with fixed windows: one row per limit key and
window, counted up by a single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (SQLite and
PostgreSQL), so two processes counting the same key at once never lose a hit; a window that has
ended restarts in the same statement. Rows of ended windows are deleted now and then
(:meth:`DatabaseStorage.sweep`, called by :class:`SharedLimiter` at most once a minute).

:class:`SharedLimiter` is what endpoints use: ``limiter.hit("ticket-check", "20/second", client)``
returns False past the limit, and :meth:`SharedLimiter.check` raises 429 ``rate_limited`` with a
``Retry-After`` (seconds to the end of the window) and a sentence.
"""

from __future__ import annotations

import math
import threading
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gli_core.errors import RateLimited

KEY_MAX = 255
SWEEP_EVERY_S = 60.0

#: the table (server/migrations/versions/0012_rate_limit.py); its own metadata: the business
#: models' metadata need not know it, and Alembic owns its creation
RATE_LIMIT = Table(
    "rate_limit",
    MetaData(),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("window_end_ms", BigInteger, nullable=False),
    Column("hits", Integer, nullable=False),
)
_NOW = bindparam("now_ms", type_=BigInteger)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class DatabaseStorage(Storage):
    """A ``limits`` storage of fixed-window counters in the ``rate_limit`` table of ``engine``."""

    STORAGE_SCHEME = None  # made with an engine, never from a URI string

    def __init__(self, engine: Engine) -> None:
        super().__init__(uri=None, wrap_exceptions=False)
        self.engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        dialect = {"postgresql": postgresql, "sqlite": sqlite}[engine.dialect.name]
        stmt = dialect.insert(RATE_LIMIT)
        # The stored window has ended (its end is not after now): a new one starts with this hit.
        ended = RATE_LIMIT.c.window_end_ms <= _NOW
        self._incr = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "hits": case((ended, stmt.excluded.hits), else_=RATE_LIMIT.c.hits + stmt.excluded.hits),
                "window_end_ms": case((ended, stmt.excluded.window_end_ms), else_=RATE_LIMIT.c.window_end_ms),
            },
        ).returning(RATE_LIMIT.c.hits)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = _now_ms()
        with self.engine.begin() as conn:
            if self._postgresql:
                # a counter lost to a crash costs nothing: do not wait for the WAL flush
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            hits = conn.execute(
                self._incr,
                {"key": key[:KEY_MAX], "window_end_ms": now + expiry * 1000, "hits": amount, "now_ms": now},
            ).scalar_one()
        return int(hits)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(select(RATE_LIMIT).where(RATE_LIMIT.c.key == key[:KEY_MAX])).first()
        return int(row.hits) if row is not None and row.window_end_ms > _now_ms() else 0

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            end = conn.execute(select(RATE_LIMIT.c.window_end_ms).where(RATE_LIMIT.c.key == key[:KEY_MAX])).scalar()
        return (end if end is not None else _now_ms()) / 1000

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(RATE_LIMIT.c.key).limit(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(RATE_LIMIT)).rowcount)

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(RATE_LIMIT).where(RATE_LIMIT.c.key == key[:KEY_MAX]))

    def sweep(self) -> int:
        """Delete the rows of windows that have ended; how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(RATE_LIMIT).where(RATE_LIMIT.c.window_end_ms <= _now_ms())).rowcount)


class SharedLimiter:
    """Named limits over one storage, shared by all processes that use the same store."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}
        self._lock = threading.Lock()
        self._swept_at = time.monotonic()

    @classmethod
    def open(cls, spec: str, engine: Engine) -> SharedLimiter:
        """``spec`` ``database`` (the business database ``engine``), ``auto`` (the database when it
        is PostgreSQL, which several processes share; memory with SQLite, which one process serves)
        or a ``limits`` storage URI."""
        if spec == "auto":
            spec = "database" if engine.dialect.name == "postgresql" else "memory://"
        if spec in ("", "database"):
            return cls(DatabaseStorage(engine))
        storage = storage_from_string(spec)
        if not isinstance(storage, Storage):
            raise ValueError(f"{spec!r} names an asynchronous storage; the server's limits are synchronous")
        return cls(storage)

    @property
    def in_memory(self) -> bool:
        """Whether counting does no I/O (``memory://``): callers on an event loop may count inline."""
        return isinstance(self.storage, MemoryStorage)

    def _item(self, rate: str) -> RateLimitItem:
        item = self._items.get(rate)
        if item is None:
            item = self._items[rate] = parse(rate)
        return item

    def hit(self, name: str, rate: str, who: str, cost: int = 1) -> bool:
        """Count one use of limit ``name`` by ``who``; False when it goes past ``rate`` (e.g. ``20/second``)."""
        self._maybe_sweep()
        return self.limiter.hit(self._item(rate), name, who, cost=cost)

    def check(self, name: str, rate: str, who: str, *, what: str = "requests") -> None:
        """:meth:`hit`, raising 429 ``rate_limited`` (``retry_after_s``, sent as ``Retry-After``) past the limit."""
        if self.hit(name, rate, who):
            return
        stats = self.limiter.get_window_stats(self._item(rate), name, who)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"more than {rate} {what} from {who}; try again in {retry} s", retry_after_s=retry)

    def _maybe_sweep(self) -> None:
        if not isinstance(self.storage, DatabaseStorage) or time.monotonic() - self._swept_at < SWEEP_EVERY_S:
            return
        with self._lock:
            if time.monotonic() - self._swept_at < SWEEP_EVERY_S:
                return
            self._swept_at = time.monotonic()
        try:
            self.storage.sweep()
        except SQLAlchemyError:  # a busy database: the next sweep takes them
            return
