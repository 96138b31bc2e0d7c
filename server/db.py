"""The business database: engine and Alembic migrations (same engine rules as the core's)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gli_core.api import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["make_engine", "migrate"]


def migrate(url: str, revision: str = "head") -> None:
    """Bring the business database at ``url`` to ``revision``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)
