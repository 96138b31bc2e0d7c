"""Issue 9 on the server: one price rule (singles beside bundles, or bundles only), raffle
creation that refuses disagreeing prices and non-ISO 4217 currencies, money shown as money,
and no void after sales close. Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.cli import cli
from server.context import Tombola
from server.errors import InvalidRequest
from server.models import Raffle
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed, tickets_of
from tests.support.postgres import DbUrls

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RAFFLE = Raffle.__table__  # type: ignore[attr-defined]


def _raffle_count(tombola: Tombola) -> int:
    with tombola.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RAFFLE)).scalar_one())


def _spec(seeded: Seed, tombola: Tombola, **changes: Any) -> raffles.RaffleCreate:
    base: dict[str, Any] = {
        "venue_id": seeded.venue_id,
        "name": "Issue 9",
        "price_cents": 500,
        "number_space": 10_000,
        "sales_close_at_ms": tombola.now_ms() + 6 * HOUR_MS,
    }
    return raffles.RaffleCreate(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"bundles": ((1, 600),)}, "bundles", "1:600 (6.00 USD) disagrees with the price of one ticket (5.00 USD)"),
        ({"bundles": ((5, 2000), (5, 1900))}, "bundles", "another bundle of 5 (20.00 USD)"),
        ({"currency": "XYZ"}, "currency", "not an ISO 4217 currency code"),
        ({"currency": "EURO"}, "currency", "not an ISO 4217 currency code"),
        ({"currency": "XAU"}, "currency", "not an ISO 4217 currency code"),  # gold has no minor unit
    ],
    ids=["bundle 1 other than the price", "two prices for 5", "unknown code", "four letters", "no minor unit"],
)
def test_raffle_create_refuses_a_disagreeing_price_or_a_currency_that_is_not_iso_4217(
    tombola: Tombola, seeded: Seed, changes: dict[str, Any], field: str, words: str
) -> None:
    """Seen: ``--bundle 1:600`` with ``--price-cents 500`` silently became the price."""
    before = _raffle_count(tombola)
    with pytest.raises(InvalidRequest) as info:
        raffles.create_raffle(tombola, _spec(seeded, tombola, **changes))
    assert (info.value.code, info.value.extra["field"]) == ("invalid_request", field)
    assert words in info.value.detail
    assert _raffle_count(tombola) == before  # nothing written


def test_raffle_create_keeps_an_agreeing_bundle_1_and_a_lower_case_code(tombola: Tombola, seeded: Seed) -> None:
    raffle = raffles.create_raffle(tombola, _spec(seeded, tombola, bundles=((1, 500), (5, 2000)), currency="jpy"))
    assert raffle["currency"] == "JPY" and raffle["bundles_only"] is False
    assert raffle["price_points"] == [{"quantity": 1, "amount_cents": 500}, {"quantity": 5, "amount_cents": 2000}]


def test_http_raffle_create_refuses_a_bundle_that_disagrees_with_the_price(client: TestClient, seeded: Seed) -> None:
    body = {
        "venue_id": seeded.venue_id,
        "name": "HTTP",
        "price_cents": 500,
        "numbers": 1000,
        "closes_at_ms": 4_000_000_000_000,
        "bundles": [[1, 600]],
    }
    resp = client.post("/v1/admin/raffles", json=body, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "invalid_request", "bundles")
    resp = client.post("/v1/admin/raffles", json=body | {"bundles": [], "currency": "XYZ"}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "invalid_request", "currency")


def test_cli_raffle_create_bundles_only_and_prices_as_money(
    db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--json"]).exit_code == 0
    venue = json.loads(runner.invoke(cli, ["venue", "create", "Hall", "--json"]).output)
    args = ["raffle", "create", "--venue", venue["id"], "--name", "B", "--price-cents", "500", "--numbers", "10000"]
    args += ["--closes-at", "2099-01-01T00:00:00Z", "--bundle", "5:2000"]
    made = runner.invoke(cli, [*args, "--bundles-only"])
    assert made.exit_code == 0, made.output
    assert "prices: 1 for 5.00 USD, 5 for 20.00 USD; bundles only" in made.output
    refused = runner.invoke(cli, [*args, "--bundle", "1:450"])
    assert refused.exit_code == 1 and isinstance(refused.exception, InvalidRequest)
    assert refused.exception.diagnostics().startswith("invalid_request: bundle 1:450 (4.50 USD) disagrees")


def test_singles_sell_beside_bundles_and_a_wrong_amount_is_named_in_money(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    """Seen: 3 tickets of a raffle priced 5.00 could not be sold at 15.00; 7.77 was sold and then
    rejected. The seeded raffle: 1 for 5.00, 5 for 10.00, 30 for 20.00, singles allowed."""
    three = device.sale(seeded.raffle_id, 3, amount_cents=1500)
    device.sale(seeded.raffle_id, 3, amount_cents=777)
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"], resp.json()["seq"]) == (422, "amount_mismatch", 2)
    assert "cost 15.00 USD, not 7.77 USD" in resp.json()["detail"]
    ack = device.sync(client, 1, rejected=[(2, "amount_mismatch")])
    assert (ack.applied, [r.seq for r in ack.rejected]) == (1, [2])
    assert sorted(tickets_of(tombola, seeded.raffle_id)) == [(n, three.sale_id) for n in three.numbers]
    assert ack.raffles[0].bundles_only is False


def test_a_bundles_only_raffle_sells_only_its_price_points(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    raffle = raffles.create_raffle(tombola, _spec(seeded, tombola, bundles=((5, 2000),), bundles_only=True))
    device = RawDevice()
    device.enroll(client, seeded.code)
    device.sale(raffle["id"], 5, amount_cents=2000)
    device.sale(raffle["id"], 2, amount_cents=1000)
    resp = device.post(client, device.batch(1))
    assert (resp.json()["error"], resp.json()["seq"]) == ("amount_mismatch", 2)
    assert "bundles only" in resp.json()["detail"]
    ack = device.sync(client, 1, rejected=[(2, "amount_mismatch")])
    assert ack.applied == 1
    assert {r.raffle_id: r.bundles_only for r in ack.raffles}[raffle["id"]] is True


def test_a_void_after_close_is_rejected_and_the_gross_stays(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, clock: FakeClock
) -> None:
    """Seen: a device's void after close silently lowered the gross. A void made before close
    still counts when it syncs later; one made at or after close is ``sale_after_close``."""
    sold = device.sale(seeded.raffle_id, 5)
    kept = device.sale(seeded.raffle_id, 1)
    device.sync(client, 1)
    before_close = device.anchor_ms
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    clock.advance(1000)
    device.sync(client, 3)  # a poll: the anchor is now after close
    late = device.void(sold)
    resp = device.post(client, device.batch(3))
    assert (resp.status_code, resp.json()["error"], resp.json()["seq"]) == (422, "sale_after_close", late.seq)
    ack = device.sync(client, 3, rejected=[(late.seq, "sale_after_close")])
    assert [(r.seq, r.code) for r in ack.rejected] == [(late.seq, "sale_after_close")]
    assert len(tickets_of(tombola, seeded.raffle_id)) == 6  # the gross stays: no ticket left the draw
    # a void made before close (offline until now) is still a void
    early = device.void(kept, anchor_ms=before_close, elapsed_ms=60_000)
    ack = device.sync(client, 4)
    assert (ack.applied, ack.rejected) == (1, [])
    assert early.voids == kept.sale_id
