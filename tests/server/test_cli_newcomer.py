"""What a new user meets first (issue 9, section 6): no home, what `init` prints, a second demo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from pos_client import PosClient
from server.app import create_app
from server.cli import cli
from server.config import Settings
from tests.support.postgres import DbUrls
from tests.support.processes import TOMBOLA, free_port


@pytest.mark.parametrize(
    "args", [["venue", "list"], ["demo"], ["serve", "--port", "0"], ["audit", "tail"]], ids=lambda a: a[0]
)
def test_no_home_is_said_and_nothing_is_created(tmp_path: Path, args: list[str]) -> None:
    """Run in a folder with no installation, with nothing of Tombola in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOMBOLA_") and k != "SOFTHSM2_CONF"}
    if args[0] == "serve":
        args = ["serve", "--port", str(free_port())]
    out = subprocess.run([TOMBOLA, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.startswith("no_home: there is no Tombola home here: "), out.stderr
    assert "`tombola init`" in out.stderr and "TOMBOLA_HOME" in out.stderr
    assert str(tmp_path / "var") in out.stderr
    assert list(tmp_path.iterdir()) == []  # no var/, nothing


def test_init_says_what_the_token_is_and_where_the_admin_token_is(
    db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, tmp_path, db_backend)
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["init", "--json"], catch_exceptions=False).output)
    text = runner.invoke(cli, ["init"], catch_exceptions=False).output
    label = data["hsm"]["token_label"]
    assert f"token {label!r}," not in text  # the old line read as if it were the admin token
    assert f"admin token (for /v1/admin/* and the core API): in {data['admin_token_file']}" in text
    assert f"HSM token: the PKCS#11 token labelled {label!r}" in text
    key = data["grant_key"]
    assert key in data["server_keys"] and key["key_id"].startswith("ed25519:")
    assert f"key id     {key['key_id']}" in text and f"public key {key['public_key']}" in text


def test_second_demo_knows_the_demo_device_is_enrolled(
    db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, tmp_path, db_backend)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["init"], catch_exceptions=False).exit_code == 0
    first = runner.invoke(cli, ["demo"], catch_exceptions=False).output
    first_json = json.loads(runner.invoke(cli, ["demo", "--json"], catch_exceptions=False).output)
    assert first_json["pos_db_device_id"] is None
    key = first_json["grant_key"]
    assert "tombola-pos --db var/pos-demo.db enroll " in first and f"--server-key {key}" in first

    # The walk-through's enroll line, against the server's app: the demo device is enrolled.
    with TestClient(create_app(Settings())) as http, PosClient(tmp_path / "var" / "pos-demo.db", http=http) as pos:
        device = pos.enroll(first_json["code"], str(http.base_url), server_key=key).device_id

    second = runner.invoke(cli, ["demo"], catch_exceptions=False).output
    assert "--db var/pos-demo.db enroll" not in second
    assert f"var/pos-demo.db is enrolled already (device {device})" in second
    assert "tombola-pos --db var/pos-demo.db sell --raffle " in second
    assert "tombola-pos --db var/pos-demo.db sync" in second
    assert "tombola-pos --db var/pos-demo-2.db enroll " in second  # how to add a second device
    assert json.loads(runner.invoke(cli, ["demo", "--json"]).output)["pos_db_device_id"] == device


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_backend: DbUrls) -> Any:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    monkeypatch.delenv("TOMBOLA_ADMIN_TOKEN", raising=False)
