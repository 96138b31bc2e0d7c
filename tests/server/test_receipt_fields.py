"""Issue 10, receipts: what a receipt prints that a device cannot know reaches it from the server
as optional ``RaffleInfo`` members (organisation, licence number, results URL, claim-by time,
ticket-check page), set by ``tombola raffle create`` and the admin API, bounded, and left out when
the raffle has none. Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pos_client import PosClient
from server.cli import cli
from server.context import Tombola
from server.errors import InvalidRequest
from server.models import Raffle
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, Seed
from tests.support.postgres import DbUrls

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]


def _spec(seeded: Seed, tombola: Tombola, **changes: Any) -> raffles.RaffleCreate:
    close = tombola.now_ms() + 6 * HOUR_MS
    base: dict[str, Any] = {
        "venue_id": seeded.venue_id,
        "name": "Receipts",
        "price_cents": 500,
        "number_space": 10_000,
        "sales_close_at_ms": close,
    }
    return raffles.RaffleCreate(**(base | changes))


def _count(tombola: Tombola) -> int:
    with tombola.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RAFFLE)).scalar_one())


def test_the_receipt_fields_reach_the_device_at_enrollment_and_sync(
    client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    close = tombola.now_ms() + 6 * HOUR_MS
    own = raffles.create_raffle(
        tombola,
        _spec(
            seeded,
            tombola,
            sales_close_at_ms=close,
            licence_number=" RAF-2026-0042 ",
            results_url="https://charity.example/results",
            claim_by_ms=close + 30 * 24 * HOUR_MS,
        ),
    )
    device = RawDevice()
    answer = device.enroll(client, seeded.code).to_dict()
    infos = {r["raffle_id"]: r for r in answer["raffles"]}
    base = tombola.settings.url().rstrip("/")
    assert {k: infos[own["id"]].get(k) for k in ("organisation", "licence_number", "results_url", "claim_by_ms")} == {
        "organisation": tombola.settings.organisation_name,
        "licence_number": "RAF-2026-0042",
        "results_url": "https://charity.example/results",
        "claim_by_ms": close + 30 * 24 * HOUR_MS,
    }
    assert infos[own["id"]]["check_url"] == base + "/check"
    assert infos[own["id"]]["venue_name"] == "Test Hall"  # receipts print the venue's name, not only its id
    # the seeded raffle has no licence, results page or claim time of its own: the organisation's
    # licence stands in, and the members it lacks are left out (optional members, absent)
    plain = infos[seeded.raffle_id]
    assert plain["licence_number"] == tombola.settings.licence_number
    assert "results_url" not in plain and "claim_by_ms" not in plain

    ack = device.sync(client, 1)
    assert {r.raffle_id: r.results_url for r in ack.raffles}[own["id"]] == "https://charity.example/results"

    # a real device keeps them: its stored raffle info has them after enrolling
    with PosClient(tmp_path / "pos.db", http=client) as pos:
        from server.enrollment import service as enrollment

        pos.enroll(enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"], str(client.base_url))
        stored = {
            row["raffle_id"]: json.loads(row["body"]) for row in pos.store.all("SELECT raffle_id, body FROM raffles")
        }
        assert stored[own["id"]]["licence_number"] == "RAF-2026-0042"
        assert stored[own["id"]]["check_url"] == base + "/check"
        sale = pos.sell(own["id"], 1)
        assert ("Venue", f"Test Hall ({seeded.venue_id})") in pos.receipt(sale.sale_id).lines()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"results_url": "ftp://charity.example/results"}, "results_url"),
        ({"results_url": "https://charity.example/" + "r" * 480}, "results_url"),
        ({"results_url": "https://charity.example/a b"}, "results_url"),
        ({"licence_number": "L" * 65}, "licence_number"),
        ({"claim_by_ms": 1}, "claim_by_ms"),
    ],
    ids=["not http", "too long", "a space", "licence too long", "claim before close"],
)
def test_out_of_bounds_receipt_fields_are_refused_and_nothing_is_written(
    tombola: Tombola, seeded: Seed, changes: dict[str, Any], field: str
) -> None:
    before = _count(tombola)
    with pytest.raises(InvalidRequest) as info:
        raffles.create_raffle(tombola, _spec(seeded, tombola, **changes))
    assert (info.value.code, info.value.extra["field"]) == ("invalid_request", field)
    assert _count(tombola) == before


def test_http_raffle_create_takes_the_receipt_fields_bounded(client: TestClient, seeded: Seed) -> None:
    body = {
        "venue_id": seeded.venue_id,
        "name": "HTTP",
        "price_cents": 500,
        "numbers": 1000,
        "closes_at_ms": 4_000_000_000_000,
        "licence_number": "L-7",
        "results_url": "https://charity.example/r",
        "claim_by_ms": 4_100_000_000_000,
    }
    made = client.post("/v1/admin/raffles", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert (made.json()["licence_number"], made.json()["claim_by_ms"]) == ("L-7", 4_100_000_000_000)
    for bad in ({"licence_number": "L" * 65}, {"results_url": "h" * 501}, {"claim_by_ms": -1}):
        resp = client.post("/v1/admin/raffles", json=body | bad, headers=ADMIN)
        assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
    resp = client.post("/v1/admin/raffles", json=body | {"claim_by_ms": 3_000_000_000_000}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "invalid_request", "claim_by_ms")


def test_cli_raffle_create_receipt_options(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--json"]).exit_code == 0
    venue = json.loads(runner.invoke(cli, ["venue", "create", "Hall", "--json"]).output)
    args = ["raffle", "create", "--venue", venue["id"], "--name", "R", "--price-cents", "500", "--numbers", "100"]
    args += ["--closes-at", "2099-01-01T00:00:00Z", "--licence", "RAF-1", "--results-url", "https://c.example/r"]
    made = runner.invoke(cli, [*args, "--claim-by", "2099-03-01T00:00:00Z", "--json"])
    assert made.exit_code == 0, made.output
    raffle = json.loads(made.output)
    assert (raffle["licence_number"], raffle["results_url"]) == ("RAF-1", "https://c.example/r")
    assert raffle["claim_by_ms"] == int(datetime(2099, 3, 1, tzinfo=UTC).timestamp() * 1000)
    refused = runner.invoke(cli, [*args, "--claim-by", "2098-01-01T00:00:00Z"])
    assert refused.exit_code == 1 and isinstance(refused.exception, InvalidRequest)
