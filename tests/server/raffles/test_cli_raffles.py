"""``tombola raffle create/edit/open`` with the jurisdiction and terms options, and a refusal's code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from server.cli import cli
from sync_protocol.errors import TombolaError
from tests.support.postgres import DbUrls


@pytest.fixture
def run(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, Any]:
        result = runner.invoke(cli, list(args))
        if result.exit_code == 0 and "--json" in args:
            return 0, json.loads(result.output)
        exc = result.exception
        out = exc.diagnostics() if isinstance(exc, TombolaError) else result.output
        return result.exit_code, out

    return invoke


def test_create_edit_open_with_a_jurisdiction(run: Any) -> None:
    assert run("init", "--json")[0] == 0
    venue = run("venue", "create", "Hall", "--json")[1]["id"]
    base = (
        "raffle",
        "create",
        "--venue",
        venue,
        "--name",
        "Meat raffle",
        "--price-cents",
        "500",
        "--numbers",
        "900",
        "--closes-at",
        "2099-01-01T00:00:00Z",
        "--licence",
        "L-1",
    )
    code, out = run(*base, "--jurisdiction", "ontario", "--json")
    assert code == 1 and "jurisdiction_rule" in out and "POS 1.1.5" in out
    code, r = run(
        *base,
        "--jurisdiction",
        "ontario",
        "--no-offline-sales",
        "--opens-at",
        "2098-01-01T00:00:00Z",
        "--purchase-limit",
        "10",
        "--json",
    )
    assert code == 0 and (r["jurisdiction"], r["offline_sales"], r["status"]) == ("ontario", False, "scheduled")
    code, e = run("raffle", "edit", r["id"], "--bundle", "5:2000", "--rules-text", "18+", "--json")
    assert code == 0 and [p["quantity"] for p in e["price_points"]] == [1, 5] and e["rules_text"] == "18+"
    code, o = run("raffle", "open", r["id"], "--json")
    assert code == 0 and o["status"] == "open"
    code, text = run("raffle", "jurisdictions")
    assert code == 0 and "WAC 230-11-030" in text
