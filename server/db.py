"""The business database: engine and Alembic migrations (same engine rules as the core's)."""

from __future__ import annotations

from pathlib import Path

from gli_core.api import make_engine
from gli_core.api import migrate as _migrate

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["make_engine", "migrate"]


def migrate(url: str, revision: str = "head") -> None:
    """Bring the business database at ``url`` to ``revision`` (its own Alembic history)."""
    _migrate(url, MIGRATIONS, revision)
