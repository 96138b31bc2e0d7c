"""The business database's Alembic history has one head once parallel branches are merged, and a
fresh database migrated to it has every table the models declare."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from server.context import Tombola
from server.db import MIGRATIONS
from server.models import BusinessBase


def test_one_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"unmerged migration branches {heads}: add a merge revision"


def test_every_model_table_exists(tombola: Tombola) -> None:
    tables = set(inspect(tombola.engine).get_table_names())
    missing = set(BusinessBase.metadata.tables) - tables
    assert not missing, f"models without a migration: {sorted(missing)}"
