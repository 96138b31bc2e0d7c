"""The PostgreSQL pool pings a connection that sat idle before handing it out, and replaces a
dead one, without a round trip on every checkout."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from dbkit import engine as db
from tests.support.postgres import DbUrls


def _kill_backends_of(engine_pids: set[int], admin_url: str) -> None:
    killer = db.create_engine(admin_url)
    with killer.connect() as conn:
        for pid in engine_pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_an_idle_dead_connection_is_replaced(db_backend: DbUrls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # every returned connection counts as idle
    engine = db.make_engine(db_backend.core, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    _kill_backends_of({pid}, db_backend.core)
    with engine.connect() as conn:  # the ping finds the dead socket; the pool connects anew
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_a_busy_connection_is_not_pinged(db_backend: DbUrls, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the idle window no ping is made: a connection killed meanwhile fails its next statement
    (what pessimistic pinging on every checkout would have hidden, at a round trip per checkout)."""
    monkeypatch.setattr(db, "IDLE_PING_S", 3600.0)
    engine = db.make_engine(db_backend.core, pool_size=1, max_overflow=0)
    statements: list[str] = []
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    db.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with engine.connect() as conn:
        conn.execute(text("SELECT 2"))
    assert statements == ["SELECT 2"]  # no ping went ahead of it
    _kill_backends_of({pid}, db_backend.core)
    with pytest.raises(exc.OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 3"))
    with engine.connect() as conn:  # the pool dropped the dead connection: the next one works
        assert conn.execute(text("SELECT 4")).scalar_one() == 4
    engine.dispose()
