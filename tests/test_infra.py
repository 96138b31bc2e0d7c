"""Checks of the test infrastructure itself: the database fixtures give working databases."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support.postgres import DB_PREFIX, DbUrls, pg_database_name


def test_db_backend_connects(db_backend: DbUrls) -> None:
    for url in (db_backend.core, db_backend.business):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.dialect.name == db_backend.backend
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()


def test_db_backend_databases_are_empty_and_separate(db_backend: DbUrls) -> None:
    assert db_backend.core != db_backend.business
    core = create_engine(db_backend.core)
    business = create_engine(db_backend.business)
    try:
        assert inspect(core).get_table_names() == []
        assert inspect(business).get_table_names() == []
        with core.begin() as conn:
            conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
        assert inspect(core).get_table_names() == ["probe"]
        assert inspect(business).get_table_names() == []
    finally:
        core.dispose()
        business.dispose()


def test_pg_database_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert pg_database_name("7_core") == f"{DB_PREFIX}7_core"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert pg_database_name("7_core") == f"{DB_PREFIX}gw3_7_core"
    assert pg_database_name(f"{DB_PREFIX}given") == f"{DB_PREFIX}given"
    with pytest.raises(ValueError):
        pg_database_name("Bad-Name")
