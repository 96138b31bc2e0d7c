"""The core database: its Alembic history under ``gli_core/migrations`` (engines: :mod:`dbkit`)."""

from __future__ import annotations

from pathlib import Path

from dbkit import migrate as _migrate

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(url: str, revision: str = "head") -> None:
    """Bring the core database at ``url`` to ``revision`` (its own Alembic history)."""
    _migrate(url, MIGRATIONS, revision)
