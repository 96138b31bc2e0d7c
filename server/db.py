"""The business database: its Alembic history under ``server/migrations`` (engines: :mod:`dbkit`)."""

from __future__ import annotations

from pathlib import Path

from dbkit import make_engine
from dbkit import migrate as _migrate

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["make_engine", "migrate"]


def migrate(url: str, revision: str = "heads") -> None:
    """Bring the business database at ``url`` to ``revision`` (its own Alembic history; ``heads``:
    every head, so work on parallel branches migrates before their merge revision lands)."""
    _migrate(url, MIGRATIONS, revision)
