"""The status functions behind the audit and health pages (server/status.py) without a browser,
on SQLite and PostgreSQL: the verification `tombola audit verify` and the portal share, a tampered
entry found, the checkpoint's key ids, entries scoped by tenant, the health report."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from server import status
from server.auth import Principal
from server.context import Tombola
from server.errors import Forbidden
from server.raffles import service as raffles
from sync_protocol.identity import package_digest


def _admin() -> Principal:
    return Principal(id="user:usr-a", role="admin", tenant=None, via="user", token_id="s1")


def test_verify_passes_then_finds_a_tampered_entry(tombola: Tombola) -> None:
    raffles.ensure_organisation(tombola)
    raffles.create_venue(tombola, "Hall")
    from server import audit

    audit.drain(tombola)
    tombola.core.audit.checkpoint("on-demand:test")
    ok = status.verify_audit(tombola)
    assert ok["ok"] and ok["entries"] >= 2 and ok["checkpoints"] == 1 and ok["failure"] is None
    assert ok["verified_by"] and status.failure_text(ok["failure"]) == ""
    with tombola.core.engine.begin() as conn:
        data = conn.execute(text("SELECT data FROM core_audit_entry WHERE idx = 1")).scalar_one()
        forged = data.replace('"actor":"', '"actor":"x')
        assert forged != data
        conn.execute(text("UPDATE core_audit_entry SET data = :d WHERE idx = 1"), {"d": forged})
    bad = status.verify_audit(tombola)
    assert not bad["ok"] and bad["failure"]["kind"] in ("entry", "checkpoint")
    assert status.failure_text(bad["failure"]).startswith(("entry ", "checkpoint of size "))


def test_the_cli_prints_the_same_verification(tombola: Tombola, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from server.cli import _common as cli_module
    from server.cli import cli

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    tombola.core.audit.checkpoint("on-demand:test")
    expected = status.verify_audit(tombola)
    monkeypatch.setattr(cli_module, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    result = CliRunner().invoke(cli, ["audit", "verify", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    keys = ("ok", "entries", "checkpoints", "latest_checkpoint_size", "source")
    assert {k: out[k] for k in keys} == {k: expected[k] for k in keys}
    text_out = CliRunner().invoke(cli, ["audit", "verify"], catch_exceptions=False).output
    assert text_out.startswith(f"OK: {expected['entries']} entries and 1 checkpoints")


def test_the_checkpoint_names_its_signing_key(tombola: Tombola) -> None:
    tombola.core.audit.checkpoint("on-demand:test")
    cp = status.latest_checkpoint(tombola)
    assert cp is not None
    own = {v.key_id for v in tombola.core.audit_verifiers()}
    assert cp["key_ids"] and set(cp["key_ids"]) <= own and cp["known_key_ids"] == cp["key_ids"]
    assert cp["note"].startswith(tombola.core.audit.origin + "\n")
    assert status.signature_key_ids("a\n\n\u2014 bad notbase64!\n") == []


def test_entries_are_scoped_to_the_tenant_and_paged(tombola: Tombola) -> None:
    from server import audit

    org = raffles.ensure_organisation(tombola)
    from server.accounts import service as accounts

    for n in range(5):  # each account's creation is an entry of the organisation
        accounts.create_user(
            tombola,
            email=f"ba{n}@status.test",
            password="Status-test-1",
            role="business_admin",
            organisation_id=org,
            created_by="service:test",
        )
    audit.drain(tombola)
    everything = status.audit_entries(tombola, _admin(), limit=200)
    tenants = {e["tenant"] for e in everything["entries"]}
    assert org in tenants
    auditor = Principal(id="user:usr-b", role="auditor", tenant="org-other", via="user", token_id="s2")
    assert status.audit_entries(tombola, auditor)["entries"] == []
    own = Principal(id="user:usr-c", role="auditor", tenant=org, via="user", token_id="s3")
    page = status.audit_entries(tombola, own, limit=2)
    assert len(page["entries"]) == 2 and all(e["tenant"] == org for e in page["entries"])
    following = status.audit_entries(tombola, own, after=page["next_after"], limit=200)
    assert following["entries"][0]["index"] > page["entries"][-1]["index"]
    manager = Principal(id="user:usr-d", role="venue_manager", tenant=org, via="user", token_id="s4")
    with pytest.raises(Forbidden):
        status.audit_entries(tombola, manager)


def test_health_reports_every_part(tombola: Tombola) -> None:
    import server

    tombola.core.audit.checkpoint("on-demand:test")
    h = status.health(tombola)
    for part in ("hsm", "business_db", "core_db", "audit", "checkpoint"):
        assert h[part]["ok"], (part, h[part])
    assert h["business_db"]["at_head"] and h["core_db"]["at_head"]
    assert set(h["hsm"]["current"]) == {"grant", "vrf", "audit"}
    assert h["checkpoint"]["waiting"] == 0 and not h["checkpoint"]["stale"]
    assert h["identity"]["sha256"]["server"] == package_digest(Path(server.__file__).parent)
