"""``dbkit.reader``: transactions that only read take no write lock on SQLite (a deferred BEGIN, a
WAL snapshot), so public reads neither wait for a writer nor for each other; writers still
serialise with BEGIN IMMEDIATE."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from dbkit import make_engine, reader


def test_a_reader_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.begin() as writer:  # BEGIN IMMEDIATE: holds the write lock until the block ends
        writer.execute(text("UPDATE t SET v = 2"))
        started = time.monotonic()
        with reader(engine).connect() as conn:
            assert conn.execute(text("SELECT v FROM t")).scalar() == 1  # the snapshot before the writer
        assert time.monotonic() - started < 1.0  # no wait for the lock (busy_timeout is 30 s)
    with reader(engine).connect() as conn:
        assert conn.execute(text("SELECT v FROM t")).scalar() == 2
    engine.dispose()


def test_writers_still_take_the_write_lock(tmp_path: Path) -> None:
    """A plain connection's transaction is a writer: it waits for the first writer to finish."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    done = threading.Event()

    def second_writer() -> None:
        with engine.connect() as other:
            other.execute(text("SELECT 1"))  # autobegin: BEGIN IMMEDIATE, waits for the lock
            done.set()

    with engine.begin() as first:
        first.execute(text("INSERT INTO t VALUES (1)"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not done.wait(0.5)  # still waiting while the first writer holds the lock
    thread.join(10)
    assert done.is_set()
    engine.dispose()
