"""``tombola user`` and ``tombola approval``, and the demo's accounts (``make run``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from server.accounts import mfa
from server.app import create_app
from server.cli import cli
from tests.server.accounts.helpers import PASSWORD, bearer, events, login
from tests.support.app import ADMIN_TOKEN, open_tombola
from tests.support.postgres import DbUrls


@pytest.fixture
def run(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    monkeypatch.setenv("TOMBOLA_ADMIN_TOKEN", ADMIN_TOKEN)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, code: int = 0) -> Any:
        result = runner.invoke(cli, list(args), input=stdin)
        assert result.exit_code == code, (result.output, result.exception)
        if code == 0:
            return json.loads(result.output) if "--json" in args else result.output
        exc = result.exception
        return f"{getattr(exc, 'code', '')}: {exc} {result.output}"  # a refusal: code and sentence

    invoke("init")
    return invoke


def test_user_commands(run: Any, tmp_path: Path, db_backend: DbUrls) -> None:
    made = run(
        "user", "create", "Ann@Example.org", "--role", "customer", "--password-stdin", "--json", stdin=PASSWORD + "\n"
    )
    assert made["email"] == "Ann@Example.org" and made["role"] == "customer" and "password" not in json.dumps(made)
    weak = run("user", "create", "b@example.org", "--role", "customer", "--password-stdin", stdin="password\n", code=1)
    assert "weak_password" in weak
    empty = run("user", "create", "c@example.org", "--role", "customer", "--password-stdin", code=1)
    assert "no password on stdin" in empty
    listed = run("user", "list", "--json")
    assert [u["email"] for u in listed] == ["Ann@Example.org"]
    disabled = run("user", "disable", "ann@example.org", "--reason", "left", "--json")
    assert disabled["status"] == "disabled"
    app = open_tombola(tmp_path / "var", db_backend)
    try:
        with TestClient(create_app(tombola=app)) as client:
            assert login(client, "ann@example.org").json()["error"] == "account_disabled"
            run("user", "enable", made["id"])
            assert login(client, "ann@example.org").status_code == 200
        logged = [(e["payload"]["action"], e["actor"]) for e in events(app, "auth.permission_changed")]
        assert [a for a, _ in logged] == ["user_created", "user_disabled", "user_enabled"]
        assert all(actor.startswith("user:") and actor.endswith("@cli") for _, actor in logged)
    finally:
        app.close()


def test_demo_accounts_and_two_person_approval_from_the_command_line(
    run: Any, tmp_path: Path, db_backend: DbUrls
) -> None:
    shown = run("demo", "--json")
    logins = {entry["role"]: entry for entry in shown["logins"]}
    assert sorted(logins) == sorted(["admin", "auditor", "business_admin", "venue_manager", "salesperson", "customer"])
    assert "totp_secret" in logins["admin"] and "totp_secret" in logins["auditor"] and logins["salesperson"]["pin"]
    again = run("demo", "--json")  # a second make run prints the same logins
    assert again["logins"] == shown["logins"]
    text = run("demo")
    assert logins["customer"]["password"] in text and "tombola user totp admin@demo.tombola.local" in text
    code = run("user", "totp", "admin@demo.tombola.local").strip()
    assert len(code) == 6 and code.isdigit()
    assert run("user", "totp", "business@demo.tombola.local", code=1).startswith("not_found")
    app = open_tombola(tmp_path / "var", db_backend)
    try:
        with TestClient(create_app(tombola=app)) as client:
            for entry in shown["logins"]:
                totp = mfa.code_at(entry["totp_secret"], app.now_ms()) if "totp_secret" in entry else None
                answer = login(client, entry["email"], entry["password"], totp=totp)
                assert answer.status_code == 200 and answer.json()["role"] == entry["role"], answer.text
                assert client.get("/auth/me", headers=bearer(answer.json()["access_token"])).status_code == 200
    finally:
        app.close()
    # break-glass from the command line: the business admin asks (it needs TOTP first), the admin approves
    business = logins["business_admin"]
    refused = run(
        "approval", "break-glass", "--as", business["email"], "--reason", "x", stdin=business["password"] + "\n", code=1
    )
    assert "mfa_required" in refused
    venue = shown["venue_id"]
    assert run("approval", "cap", venue, "--cap", "100", "--json") == {"venue_id": venue, "cap": 100}
    assert run("approval", "list", "--pending").strip() == "no requests"
