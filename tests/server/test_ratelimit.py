"""Rate limits are counted in the business database, so every server process sees the same count."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from gli_core.errors import RateLimited
from server.context import Tombola
from server.ratelimit import DatabaseStorage, SharedLimiter
from tests.support.app import ADMIN_TOKEN, FakeClock, open_tombola
from tests.support.postgres import DbUrls


def test_two_servers_share_one_limit(db_backend: DbUrls, tmp_path: Path, clock: FakeClock) -> None:
    """Two Tombola instances over the same business database (two processes' worth of engines and
    limiters) count one client together: the sixth hit is refused whichever server takes it."""
    first = open_tombola(tmp_path / "a", db_backend, clock, rate_limit_storage="database")
    second = open_tombola(tmp_path / "b", db_backend, clock, rate_limit_storage="database")
    try:
        servers = [first.limiter, second.limiter]
        admitted = [servers[i % 2].hit("ticket-check", "5/minute", "203.0.113.7") for i in range(8)]
        assert admitted == [True] * 5 + [False] * 3
        assert servers[1].hit("ticket-check", "5/minute", "198.51.100.1")  # another client has its own count
        with pytest.raises(RateLimited) as refused:
            servers[0].check("ticket-check", "5/minute", "203.0.113.7", what="ticket checks")
        assert refused.value.status == 429
        assert 1 <= refused.value.extra["retry_after_s"] <= 60
        assert "ticket checks" in refused.value.detail
    finally:
        second.close()
        first.close()


def test_concurrent_hits_are_all_counted(tombola: Tombola) -> None:
    """Threads hitting one key at once (each its own connection): no hit is lost to a race."""
    storage = DatabaseStorage(tombola.engine)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(25):
                storage.incr("race", 60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert storage.get("race") == 100


def test_a_window_that_ended_starts_again(tombola: Tombola) -> None:
    storage = DatabaseStorage(tombola.engine)
    assert storage.incr("w", 1) == 1
    assert storage.incr("w", 1) == 2
    time.sleep(1.05)
    assert storage.get("w") == 0
    assert storage.incr("w", 1) == 1  # the same statement restarted the window
    assert storage.sweep() == 0  # the current window is kept
    storage.clear("w")
    assert storage.get("w") == 0


def test_admits_exactly_the_limit(tombola: Tombola) -> None:
    """Within one window, exactly min(hits, limit) hits of a key are admitted (generated sizes)."""
    limiter = SharedLimiter(DatabaseStorage(tombola.engine))
    keys = iter(range(10**6))

    @settings(max_examples=30, deadline=None)
    @given(limit=st.integers(1, 20), hits=st.integers(0, 40))
    def check(limit: int, hits: int) -> None:
        who = f"client-{next(keys)}"
        admitted = sum(limiter.hit("p", f"{limit}/hour", who) for _ in range(hits))
        assert admitted == min(hits, limit)

    check()


def test_memory_store_can_be_chosen(db_backend: DbUrls, tmp_path: Path) -> None:
    app = open_tombola(tmp_path / "var", db_backend, rate_limit_storage="memory://")
    try:
        assert not isinstance(app.limiter.storage, DatabaseStorage)
        assert app.limiter.hit("x", "1/minute", "c")
        assert not app.limiter.hit("x", "1/minute", "c")
    finally:
        app.close()


def test_auto_counts_in_postgresql_and_in_memory_on_sqlite(tombola: Tombola, db_backend: DbUrls) -> None:
    """PostgreSQL installations run several processes: the database. SQLite is served by one
    process: memory, with no durable write per public request."""
    assert tombola.settings.rate_limit_storage == "auto"
    shared = isinstance(tombola.limiter.storage, DatabaseStorage)
    assert shared == (db_backend.backend == "postgresql")


def test_each_caller_has_its_own_limit_across_requests(client: TestClient, tombola: Tombola) -> None:
    """Per person or token: past TOMBOLA_USER_RATE a caller gets 429 with Retry-After; another
    caller is not slowed by it."""
    from server import auth

    tombola.settings.user_rate = "3/minute"
    other = auth.create_token(tombola, name="script", role="admin", created_by="user:admin")["token"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert [client.get("/v1/admin/devices", headers=admin).status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = client.get("/v1/admin/devices", headers=admin)
    assert refused.json()["error"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
    assert client.get("/v1/admin/devices", headers={"Authorization": f"Bearer {other}"}).status_code == 200
