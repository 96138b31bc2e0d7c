"""The ``tombola`` command line, with the stable ``--json`` names scripts rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import cli
from tests.support.postgres import DbUrls


@pytest.fixture
def run(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> dict:  # type: ignore[type-arg]
        result = runner.invoke(cli, list(args), catch_exceptions=not ok)
        if ok:
            assert result.exit_code == 0, result.output
            return json.loads(result.output) if "--json" in args else {"text": result.output}
        return {"exit_code": result.exit_code, "exception": result.exception}

    return invoke


def test_operator_flow(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    init = run("init", "--json")
    assert Path(init["admin_token_file"]).exists() and init["server_keys"][0]["key_id"].startswith("ed25519:")
    assert run("init", "--json")["server_keys"] == init["server_keys"]  # idempotent: same key
    venue = run("venue", "create", "Bingo Hall", "--json")
    raffle = run(
        "raffle",
        "create",
        "--venue",
        venue["id"],
        "--name",
        "Friday 50/50",
        "--price-cents",
        "500",
        "--numbers",
        "100000",
        "--closes-at",
        "2099-01-01T00:00:00Z",
        "--bundle",
        "5:1000",
        "--bundle",
        "30:2000",
        "--json",
    )
    assert raffle["status"] == "open"
    assert raffle["price_points"] == [
        {"quantity": 1, "amount_cents": 500},
        {"quantity": 5, "amount_cents": 1000},
        {"quantity": 30, "amount_cents": 2000},
    ]
    later = run(
        "raffle",
        "create",
        "--venue",
        venue["id"],
        "--name",
        "Later",
        "--price-cents",
        "100",
        "--numbers",
        "10",
        "--opens-at",
        "2098-01-01T00:00:00Z",
        "--closes-at",
        "2099-01-01T00:00:00Z",
        "--json",
    )
    assert later["status"] == "scheduled"
    code = run("device", "enroll-code", "--venue", venue["id"], "--json")
    assert len(code["code"]) == 14
    linked = run("device", "enroll-code", "--venue", venue["id"], "--link", "https://t.example/", "--json")
    assert linked["link"] == f"https://t.example/enroll?code={linked['code']}"  # sync-protocol.md 8.1
    assert run("tickets", "--raffle", raffle["id"], "--json") == []
    closed = run("raffle", "close", raffle["id"], "--json")
    assert closed["status"] == "closed"
    report = run("report", "reconciliation", "--raffle", raffle["id"], "--json")
    assert report["tickets_sold"] == 0 and report["venue"] == "Bingo Hall"


def test_errors_are_codes_not_tracebacks(run) -> None:  # type: ignore[no-untyped-def]
    from sync_protocol.errors import TombolaError

    run("init")
    out = run("raffle", "close", "rf-NOPE", ok=False)
    assert isinstance(out["exception"], TombolaError) and out["exception"].code == "not_found"
    out = run(
        "raffle",
        "create",
        "--venue",
        "x",
        "--name",
        "n",
        "--price-cents",
        "1",
        "--numbers",
        "1",
        "--closes-at",
        "tomorrow",
        ok=False,
    )
    assert out["exception"].code == "invalid_request"
