"""``tombola device events ID [--since ISO] [--type TYPE] [--json]`` over a real installation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from server.app import create_app
from server.cli import cli
from server.config import Settings
from server.context import Tombola
from tests.server.test_device_events import make_events, with_events
from tests.simulators.device import RawDevice
from tests.support.postgres import DbUrls


def test_device_events_lists_filters_and_refuses_with_codes(
    db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, result.output
        error = getattr(result.exception, "code", None)  # a refusal reaches main() as a TombolaError
        return f"{error}: {result.exception}" if isinstance(error, str) else result.output

    run("init")
    venue = json.loads(run("venue", "create", "Bingo Hall", "--json"))
    enroll = json.loads(run("device", "enroll-code", "--venue", venue["id"], "--json"))
    app = Tombola.open(Settings())
    try:
        with TestClient(create_app(tombola=app)) as client:
            device = RawDevice()
            device.enroll(client, enroll["code"])
            events = make_events(device, ["app.start", "printer.error", "printer.error", "app.stop"])
            assert client.post("/v1/sync", json=with_events(device, device.batch(1, 0), events)).status_code == 200
    finally:
        app.close()

    text = run("device", "events", device.device_id)
    lines = text.strip().splitlines()
    assert [line.split()[2] for line in lines] == ["app.start", "printer.error", "printer.error", "app.stop"]
    assert "n=2" in lines[1] and lines[0].startswith("20")  # ISO time first

    rows = json.loads(run("device", "events", device.device_id, "--type", "printer.error", "--json"))
    assert [(r["seq"], r["detail"]) for r in rows] == [(2, {"n": 2}), (3, {"n": 3})]
    from datetime import UTC, datetime

    since = datetime.fromtimestamp((device.anchor_ms + 3000) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert [r["seq"] for r in json.loads(run("device", "events", device.device_id, "--since", since, "--json"))] == [
        3,
        4,
    ]
    assert "invalid_request" in run("device", "events", device.device_id, "--since", "soon", code=1)
    assert "not_found" in run("device", "events", "no-such-device", code=1)
    assert "no events" in run("device", "events", device.device_id, "--type", "clock.jump")
    run("device", "events", device.device_id, "--type", "app.exploded", code=2)  # click's usage error
