"""The ``tombola-pos`` CLI through click's CliRunner, against the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from pos_client import ManualClock
from pos_client.cli import cli
from sync_protocol.messages import ExportTrailer
from tests.pos_client.conftest import CODE, FAST_RETRY
from tests.pos_client.fake_server import BASE_URL, FakeServer


@pytest.fixture
def run(db_path: Path, clock: ManualClock, http: TestClient) -> Any:
    runner = CliRunner()

    def invoke(*args: str, db: Path | None = db_path, env: dict[str, str] | None = None) -> Result:
        argv = (["--db", str(db)] if db is not None else []) + list(args)
        return runner.invoke(cli, argv, obj={"http": http, "clock": clock, "retry": FAST_RETRY}, env=env)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_full_flow_with_json(run: Any, server: FakeServer, tmp_path: Path) -> None:
    enrolled = _json(run("enroll", CODE, "--server", BASE_URL, "--name", "till", "--json"))
    assert enrolled["device_id"] in server.devices
    assert enrolled["raffles"] == ["R1"] and len(enrolled["grants"]) == 1

    sale = _json(run("sell", "--raffle", "R1", "--quantity", "3", "--payment", "card", "--reference", "X1", "--json"))
    assert set(sale) >= {"id", "numbers", "codes", "amount_cents", "seq"}
    assert (sale["numbers"], sale["amount_cents"], sale["seq"], len(sale["codes"])) == ([1, 2, 3], 1200, 1, 3)

    singles = _json(run("sell", "--raffle", "R1", "--quantity", "2", "--json"))
    assert (singles["numbers"], singles["amount_cents"], singles["amount"]) == ([4, 5], 1000, "10.00 EUR")

    voided = _json(run("void", sale["id"], "--reason", "changed mind", "--json"))
    assert (voided["voids"], voided["seq"]) == (sale["id"], 3)

    before = _json(run("status", "--json"))
    assert set(before) >= {"pending", "device_id", "raffles", "alerts", "lease_left_s"}
    assert (before["pending"], before["device_id"], before["lease_left_s"]) == (3, enrolled["device_id"], 28800)
    assert before["raffles"][0]["numbers_used"] == 5

    synced = _json(run("sync", "--json"))
    assert (synced["sent"], synced["acked_seq"], synced["pending"], synced["rejections"]) == (3, 3, 0, [])
    assert _json(run("status", "--json"))["pending"] == 0

    out = tmp_path / "export.ndjson"
    exported = _json(run("export", str(out), "--json"))
    assert (exported["records"], exported["last_seq"]) == (3, 3)
    trailer = ExportTrailer.from_dict(json.loads(out.read_text().splitlines()[-1]))
    assert trailer.head_hash == exported["head_hash"]


def test_human_output(run: Any) -> None:
    assert "enrolled as device" in run("enroll", CODE, "--server", BASE_URL).stdout
    sold = run("sell", "--raffle", "R1", "--quantity", "1")
    assert sold.exit_code == 0 and "#1" in sold.stdout
    status = run("status")
    assert "raffle R1" in status.stdout and "1 pending" in status.stdout
    assert "1 record(s) acknowledged" in run("sync").stdout


def test_refusal_prints_code_and_detail_and_exits_1(run: Any) -> None:
    result = run("sell", "--raffle", "R1", "--quantity", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith("not_enrolled: ")
    assert result.stdout == ""

    run("enroll", CODE, "--server", BASE_URL)
    result = run("sell", "--raffle", "R1", "--quantity", "1001", "--json")
    assert (result.exit_code, result.stderr.split(":")[0]) == (1, "bad_quantity")

    result = run("void", "nope", "--reason", "x")
    assert (result.exit_code, result.stderr.split(":")[0]) == (1, "sale_not_found")


def test_server_refusal_exits_1_with_the_servers_code(run: Any) -> None:
    result = run("enroll", "BAD-CODE", "--server", BASE_URL)
    assert result.exit_code == 1
    assert result.stderr.startswith("enrollment_code_invalid: ")


def test_sell_charges_the_raffles_price_and_the_server_accepts_it(run: Any, server: FakeServer) -> None:
    """Issue 9: on a raffle priced 5.00 with no bundles, ``sell --quantity 3`` was refused, and
    ``--amount-cents 1500`` (or 777, or 1) sold and was rejected at sync (amount_mismatch)."""
    server.add_raffle("R2", price_points=((1, 500),), currency="USD")
    run("enroll", CODE, "--server", BASE_URL)

    result = run("sell", "--raffle", "R2", "--quantity", "3")
    assert result.exit_code == 0, result.stderr
    assert "3 ticket(s), 15.00 USD" in result.stdout
    for amount in ("1500", "777", "1"):
        refused = run("sell", "--raffle", "R2", "--quantity", "3", "--amount-cents", amount)
        assert refused.exit_code == 2 and "--amount-cents" in refused.stderr  # no such option: the device prices

    synced = _json(run("sync", "--json"))
    assert (synced["acked_seq"], synced["rejections"]) == (1, [])


def test_usage_errors_are_clicks(run: Any) -> None:
    result = run("sell", "--raffle", "R1", "--quantity", "1", "--payment", "bitcoin")
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_db_comes_from_the_environment(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "env.db"
    result = run("enroll", CODE, "--server", BASE_URL, "--json", db=None, env={"TOMBOLA_POS_DB": str(path)})
    assert result.exit_code == 0, result.stderr
    assert path.exists()
