"""The seller roster on the server: the one service behind ``tombola seller`` and the admin API, its
delivery to devices by enrollment and sync (PIN hashes only), and the raffle setting
``offline_sales``; then a real device signing in offline and its seller seen on the server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from pos_client import PosClient
from pos_client.errors import OfflineSalesNotAllowed
from server import audit
from server.cli import cli
from server.context import Tombola
from server.errors import InvalidRequest, NotFound
from server.models import AuditOutbox, Sale
from server.raffles import service as raffles
from server.sellers import service as sellers
from sync_protocol.pins import PIN_SCHEME, verify_pin
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed
from tests.support.postgres import DbUrls

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_add_list_disable_and_what_is_kept(tombola: Tombola, seeded: Seed, clock: FakeClock) -> None:
    ana = sellers.add_seller(tombola, seeded.venue_id, "  Ana  ", "4821")
    clock.advance(1)
    sue = sellers.add_seller(tombola, seeded.venue_id, "Sue", "90210", supervisor=True)
    assert ana["name"] == "Ana" and ana["status"] == "active" and not ana["supervisor"] and sue["supervisor"]
    assert not {"pin_hash", "pin_salt", "pin_scheme"} & ana.keys()  # operators never see the hash
    assert [s["id"] for s in sellers.list_sellers(tombola, seeded.venue_id)] == [ana["id"], sue["id"]]

    with tombola.engine.connect() as conn:
        outbox = [json.loads(r.payload) for r in conn.execute(select(AuditOutbox.__table__))]  # type: ignore[attr-defined]
    added = [e for e in outbox if e.get("seller_id") == ana["id"]]
    assert added == [{"name": "Ana", "seller_id": ana["id"], "supervisor": False, "venue_id": seeded.venue_id}]
    audit.drain(tombola)  # the core's log takes the event types

    roster = sellers.roster(tombola, seeded.venue_id)
    assert [r.seller_id for r in roster] == [ana["id"], sue["id"]] and roster[0].pin_scheme == PIN_SCHEME
    assert verify_pin("4821", roster[0].stored_pin) and not verify_pin("4822", roster[0].stored_pin)
    clock.advance(1)
    again = sellers.add_seller(tombola, seeded.venue_id, "Ana", "4821")
    assert sellers.roster(tombola, seeded.venue_id)[-1].pin_salt != roster[0].pin_salt  # a salt per seller

    disabled = sellers.disable_seller(tombola, ana["id"])
    assert disabled["status"] == "disabled" and disabled["disabled_at_ms"] == tombola.now_ms()
    assert sellers.disable_seller(tombola, ana["id"]) == disabled  # idempotent
    assert [r.seller_id for r in sellers.roster(tombola, seeded.venue_id)] == [sue["id"], again["id"]]
    assert [s["status"] for s in sellers.list_sellers(tombola, seeded.venue_id)] == ["disabled", "active", "active"]
    audit.drain(tombola)


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "", " 1234", "١٢٣٤"])
def test_a_pin_is_four_to_eight_digits(tombola: Tombola, seeded: Seed, pin: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        sellers.add_seller(tombola, seeded.venue_id, "Ana", pin)
    assert refused.value.extra["field"] == "pin" and "4 to 8 digits" in refused.value.detail
    assert sellers.list_sellers(tombola, seeded.venue_id) == []  # nothing written


def test_refusals_name_what_is_wrong(tombola: Tombola, seeded: Seed) -> None:
    with pytest.raises(NotFound):
        sellers.add_seller(tombola, "vn-NOPE", "Ana", "4821")
    with pytest.raises(NotFound):
        sellers.list_sellers(tombola, "vn-NOPE")
    with pytest.raises(NotFound):
        sellers.disable_seller(tombola, "sl-NOPE")
    with pytest.raises(InvalidRequest) as blank:
        sellers.add_seller(tombola, seeded.venue_id, "  ", "4821")
    assert blank.value.extra["field"] == "name"


def test_the_admin_api_calls_the_same_service(client: TestClient, seeded: Seed) -> None:
    url = f"/v1/admin/venues/{seeded.venue_id}/sellers"
    assert client.post(url, json={"name": "Ana", "pin": "4821"}).status_code == 401
    made = client.post(url, json={"name": "Sue", "pin": "90210", "supervisor": True}, headers=ADMIN)
    assert made.status_code == 201 and made.json()["supervisor"] is True and "pin_hash" not in made.json()
    bad = client.post(url, json={"name": "Ana", "pin": "12"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    nul = client.post(url, json={"name": "A\u0000", "pin": "1234"}, headers=ADMIN)
    assert nul.status_code == 422  # malformed on both backends, never a database error
    assert client.get("/v1/admin/venues/vn-NOPE/sellers", headers=ADMIN).json()["error"] == "not_found"
    listed = client.get(url, headers=ADMIN).json()
    assert [s["name"] for s in listed] == ["Sue"]
    off = client.post(f"/v1/admin/sellers/{listed[0]['id']}/disable", headers=ADMIN)
    assert off.status_code == 200 and off.json()["status"] == "disabled"


def test_enrollment_and_sync_carry_the_roster_and_drop_the_disabled(
    client: TestClient, tombola: Tombola, seeded: Seed
) -> None:
    ana = sellers.add_seller(tombola, seeded.venue_id, "Ana", "4821")
    other_venue = raffles.create_venue(tombola, "Other Hall")
    sellers.add_seller(tombola, other_venue["id"], "Olga", "1111")
    device = RawDevice()
    enrolled = device.enroll(client, seeded.code).to_dict()
    assert [(s["seller_id"], s["name"], s["supervisor"]) for s in enrolled["sellers"]] == [(ana["id"], "Ana", False)]
    assert set(enrolled["sellers"][0]) == {"seller_id", "name", "supervisor", "pin_scheme", "pin_salt", "pin_hash"}
    assert "offline_sales" not in enrolled["raffles"][0]  # allowed: the optional member is left out

    sellers.disable_seller(tombola, ana["id"])
    ack = device.sync(client, 1)
    assert ack.sellers == []  # present and empty: the device's roster empties
    assert "sellers" in ack.to_dict()


def test_a_raffle_without_offline_sales_says_so_to_devices(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    made = client.post(
        "/v1/admin/raffles",
        json={
            "venue_id": seeded.venue_id,
            "name": "Online only",
            "price_cents": 200,
            "numbers": 5000,
            "closes_at_ms": tombola.now_ms() + HOUR_MS,
            "offline_sales": False,
        },
        headers=ADMIN,
    )
    assert made.status_code == 201 and made.json()["offline_sales"] is False
    answer = RawDevice().enroll(client, seeded.code).to_dict()
    flags = {r["raffle_id"]: r.get("offline_sales") for r in answer["raffles"]}
    assert flags == {seeded.raffle_id: None, made.json()["id"]: False}


def test_the_cli(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(cli, list(args), input=stdin)
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if "--json" in args else {"text": result.output}

    run("init", "--json")
    venue = run("venue", "create", "Hall", "--json")["id"]
    ana = run("seller", "add", "--venue", venue, "--name", "Ana", "--pin-stdin", "--json", stdin="4821\n")
    time.sleep(0.002)  # listed oldest first
    sue = run("seller", "add", "--venue", venue, "--name", "Sue", "--pin-stdin", "--supervisor", stdin="90210\n")
    assert ana["name"] == "Ana" and "pin_hash" not in ana and "(supervisor)" in sue["text"]
    listed = run("seller", "list", "--venue", venue, "--json")
    assert [s["name"] for s in listed] == ["Ana", "Sue"]
    assert "Ana" in run("seller", "list", "--venue", venue)["text"]
    assert run("seller", "disable", ana["id"], "--json")["status"] == "disabled"
    assert "disabled" in run("seller", "list", "--venue", venue)["text"]

    for args, stdin in (
        (("--pin-stdin",), "12\n"),  # too short
        (("--pin-stdin",), ""),  # nothing piped
        ((), "4821\n"),  # the PIN is never taken from anywhere but stdin
    ):
        refused = runner.invoke(cli, ["seller", "add", "--venue", venue, "--name", "X", *args], input=stdin)
        assert isinstance(refused.exception, InvalidRequest) and refused.exception.extra["field"] == "pin"
    assert len(run("seller", "list", "--venue", venue, "--json")) == 2

    raffle = run(
        "raffle", "create", "--venue", venue, "--name", "Online", "--price-cents", "100", "--numbers", "1000",
        "--closes-at", "2099-01-01T00:00:00Z", "--no-offline-sales", "--json",
    )  # fmt: skip
    assert raffle["offline_sales"] is False


def test_a_device_signs_in_offline_and_its_seller_reaches_the_server(
    client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    ana = sellers.add_seller(tombola, seeded.venue_id, "Ana", "4821")
    db = tmp_path / "pos.db"
    with PosClient(db, http=client, require_seller=True) as pos:
        pos.enroll(seeded.code, str(client.base_url))
    # the server is gone: the device reaches nothing, and still signs Ana in and sells
    with PosClient(db, http=httpx.Client(), server_url="http://127.0.0.1:9", require_seller=True) as offline:
        assert offline.check_server(timeout_s=0.5) is False
        offline.sign_in(ana["id"], "4821")
        sale = offline.sell(seeded.raffle_id, 5)
    with PosClient(db, http=client) as back:
        back.sync()
    with tombola.engine.connect() as conn:
        row = conn.execute(select(Sale.__table__).where(Sale.__table__.c.id == sale.sale_id)).one()  # type: ignore[attr-defined]
    assert row.seller_id == ana["id"] and row.status == "accepted"


def test_an_online_only_raffle_is_refused_on_a_device_that_lost_the_server(
    client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    online = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=seeded.venue_id,
            name="Online only",
            price_cents=200,
            number_space=5000,
            sales_close_at_ms=tombola.now_ms() + HOUR_MS,
            offline_sales=False,
        ),
    )
    db = tmp_path / "pos.db"
    with PosClient(db, http=client) as pos:
        pos.enroll(seeded.code, str(client.base_url))
        assert pos.sell(online["id"], 1)  # the server answered just now
    with PosClient(db, http=httpx.Client(), server_url="http://127.0.0.1:9") as lost:
        assert lost.check_server(timeout_s=0.5) is False
        with pytest.raises(OfflineSalesNotAllowed):
            lost.sell(online["id"], 1)
        assert lost.sell(seeded.raffle_id, 1)  # the other raffle may be sold offline
