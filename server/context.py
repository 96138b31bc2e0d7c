"""The application services: settings, the core (through its public API) and the business DB.

One :class:`Tombola` is shared by the HTTP app and the ``tombola`` command line, so both run
exactly the same code paths.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dbkit import reader
from gli_core.api import AuditConfig, Core
from server.config import Settings
from server.db import make_engine, migrate
from server.ratelimit import SharedLimiter

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str, length: int = 10) -> str:
    """A short random id operators can type: ``rf-7K3M9Q2XAB`` (50 bits)."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def system_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Tombola:
    settings: Settings
    core: Core
    engine: Engine
    clock: Callable[[], int] = field(default=system_ms)

    @classmethod
    def open(cls, settings: Settings, *, migrate_dbs: bool = True) -> Tombola:
        """Open both databases (migrating them first) and the core.

        The home must exist (``tombola init`` makes it; tests make their own): nothing but
        ``init`` creates an installation.

        Raises:
            NoHome: ``settings.home`` is not a directory.
        """
        settings.require_home()
        business_url = settings.resolved_business_url()
        if migrate_dbs:
            migrate(business_url)
        core = Core.open(
            settings.resolved_core_url(),
            settings.key_dir,
            run_migrations=migrate_dbs,
            hsm=settings.hsm_config(),
            audit=AuditConfig.from_env(home=settings.home),
        )
        return cls(settings=settings, core=core, engine=make_engine(business_url))

    def now_ms(self) -> int:
        return self.clock()

    @functools.cached_property
    def reads(self) -> Engine:
        """The business database for transactions that only read (no write lock on SQLite)."""
        return reader(self.engine)

    @functools.cached_property
    def limiter(self) -> SharedLimiter:
        """The rate limits every server process shares (``TOMBOLA_RATE_LIMIT_STORAGE``)."""
        return SharedLimiter.open(self.settings.rate_limit_storage, self.engine)

    def close(self) -> None:
        self.engine.dispose()
        self.core.close()
