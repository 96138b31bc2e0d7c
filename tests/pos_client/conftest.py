"""Fixtures: a manual clock, the fake server on that clock, and PosClients wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import ManualClock, PosClient, RetryPolicy
from tests.pos_client.fake_server import BASE_URL, FakeServer

CODE = "CODE-0001"
# Retries without waiting: the tests exercise the policy, not the clock.
FAST_RETRY = RetryPolicy(attempts=4, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(clock: ManualClock) -> FakeServer:
    """A server whose clock is the device's wall clock (so anchors and raffle times line up)."""
    fake = FakeServer(now_ms=clock.wall_ms)
    fake.add_raffle("R1")
    fake.add_code(CODE)
    return fake


@pytest.fixture
def http(server: FakeServer) -> Iterator[TestClient]:
    with server.client() as client:
        yield client


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pos.db"


@pytest.fixture
def pos(db_path: Path, clock: ManualClock, http: TestClient) -> Iterator[PosClient]:
    client = PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY)
    yield client
    client.close()


@pytest.fixture
def enrolled(pos: PosClient) -> PosClient:
    pos.enroll(CODE, BASE_URL, device_name="till 1")
    return pos


def reopen(pos: PosClient, db_path: Path, clock: ManualClock, http: TestClient) -> PosClient:
    """Close ``pos`` and open the same file again (a restart of the app)."""
    pos.close()
    return PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY)
