"""Application fixtures: a Tombola over ``db_backend`` with a controllable clock, its HTTP
client, and a seeded venue and raffle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.context import Tombola
from server.raffles import service as raffles
from tests.support.postgres import DbUrls

ADMIN_TOKEN = "test-admin-token"
HOUR_MS = 3_600_000


class FakeClock:
    """Server time in ms, starting at the real time; tests move it on with :meth:`advance`."""

    def __init__(self, start_ms: int | None = None) -> None:
        self.now = start_ms if start_ms is not None else int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def make_settings(home: Path, urls: DbUrls, **overrides: object) -> Settings:
    return Settings(
        home=home,
        core_db_url=urls.core,
        business_db_url=urls.business,
        admin_token=ADMIN_TOKEN,
        **overrides,  # type: ignore[arg-type]
    )


def open_tombola(home: Path, urls: DbUrls, clock: FakeClock | None = None, **overrides: object) -> Tombola:
    home.mkdir(parents=True, exist_ok=True)  # what `tombola init` makes; Tombola.open never creates it
    app = Tombola.open(make_settings(home, urls, **overrides))
    if clock is not None:
        app.clock = clock
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tombola(db_backend: DbUrls, tmp_path: Path, clock: FakeClock) -> Iterator[Tombola]:
    app = open_tombola(tmp_path / "var", db_backend, clock)
    yield app
    app.close()


@pytest.fixture
def client(tombola: Tombola) -> Iterator[TestClient]:
    with TestClient(create_app(tombola=tombola)) as c:
        yield c


@dataclass
class Seed:
    venue_id: str
    raffle_id: str
    code: str


def seed(
    app: Tombola, *, numbers: int = 1_000_000, close_in_ms: int = 12 * HOUR_MS, grant_size: int | None = None
) -> Seed:
    from server.enrollment import service as enrollment

    venue = raffles.create_venue(app, "Test Hall")
    raffle = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=venue["id"],
            name="Test 50/50",
            price_cents=500,
            number_space=numbers,
            sales_close_at_ms=app.now_ms() + close_in_ms,
            bundles=((5, 1000), (30, 2000)),
            grant_size=grant_size,
        ),
    )
    code = enrollment.create_enrollment_code(app, venue["id"])["code"]
    return Seed(venue["id"], raffle["id"], code)


@pytest.fixture
def seeded(tombola: Tombola) -> Seed:
    return seed(tombola)


def tickets_of(app: Tombola, raffle_id: str) -> list[tuple[int, str]]:
    """(number, sale id) of every ticket of the raffle on record in the core."""
    return [(t.number, t.sale_id) for t in app.core.tickets(raffle_id)]
