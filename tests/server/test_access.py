"""Access to the API: roles, scoped API tokens, break-glass, and the audit log's read rule
("read access to the log is for auditors and system admins only; the tenant boundary holds")."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from gli_core.api import AuditEvent
from server import audit
from server.app import create_app
from server.auth import FailureThrottle, break_glass, create_token, list_tokens, revoke_token, token_digest
from server.cli import cli, main
from server.cli.access import access_group
from server.context import Tombola, new_id
from server.errors import InvalidRequest, NotFound
from server.models import ApiToken, Organisation, Venue
from server.raffles import service as raffles
from tests.support.app import ADMIN_TOKEN, HOUR_MS, FakeClock, Seed, open_tombola
from tests.support.postgres import DbUrls

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORG = Organisation.__table__  # type: ignore[attr-defined]
VENUE = Venue.__table__  # type: ignore[attr-defined]
TOKEN = ApiToken.__table__  # type: ignore[attr-defined]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(app: Tombola, type_: str) -> list[dict[str, Any]]:
    audit.drain(app)
    return [json.loads(d) for _, d in app.core.audit.entries(type_prefix=type_, limit=100_000)]


def all_entries(app: Tombola) -> list[tuple[int, str]]:
    audit.drain(app)
    return app.core.audit.entries(limit=1_000_000)


def token(app: Tombola, role: str, tenant: str = "", **kw: Any) -> dict[str, Any]:
    t = create_token(app, name=f"{role} {tenant or 'all'}", role=role, tenant=tenant, created_by="user:admin", **kw)
    audit.drain(app)
    return t


def organisation_with_raffle(app: Tombola, name: str) -> tuple[str, str]:
    """A second organisation (tenant) with a venue and a raffle, and audit entries of its own."""
    org_id = new_id("org")
    venue_id = new_id("vn")
    with app.engine.begin() as conn:
        conn.execute(insert(ORG).values(id=org_id, name=name, licence_number=""))
        conn.execute(
            insert(VENUE).values(id=venue_id, organisation_id=org_id, name=f"{name} Hall", created_at_ms=app.now_ms())
        )
    raffle = raffles.create_raffle(
        app,
        raffles.RaffleCreate(
            venue_id=venue_id,
            name=f"{name} 50/50",
            price_cents=500,
            number_space=10_000,
            sales_close_at_ms=app.now_ms() + 12 * HOUR_MS,
        ),
    )
    audit.drain(app)
    if not app.core.audit.entries(tenant=org_id, limit=1):  # before raffle creation logs raffle.created
        app.core.audit_append(
            [AuditEvent(type="raffle.created", actor="user:admin", payload={"raffle_id": raffle["id"]}, tenant=org_id)]
        )
    return org_id, raffle["id"]


ADMIN_ROUTES = [
    ("GET", "/v1/admin/raffles"),
    ("POST", "/v1/admin/venues"),
    ("GET", "/core/tickets/raffle/{raffle}"),
    ("POST", "/core/tickets/generate"),
    ("POST", "/raffle/{raffle}/tickets/generate"),
    ("GET", "/core/draw/{raffle}/status"),
    ("POST", "/v1/ingest"),
]


def call(client: TestClient, method: str, path: str, raffle: str, headers: dict[str, str]) -> Any:
    body = {"name": "Hall", "raffle_id": raffle} if method == "POST" else None
    return client.request(method, path.format(raffle=raffle), json=body, headers=headers)


# --- roles ---------------------------------------------------------------------------------------


def test_the_installation_admin_token_works_everywhere(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    for method, path in ADMIN_ROUTES:
        resp = call(client, method, path, seeded.raffle_id, ADMIN)
        assert resp.status_code not in (401, 403), (path, resp.text)
    for path in ("/core/audit/checkpoint", "/core/audit/entries", "/core/audit/checkpoints"):
        assert client.get(path, headers=ADMIN).status_code == 200, path
    assert client.post("/core/audit/checkpoint", headers=ADMIN).status_code == 200
    entries = client.get("/core/audit/entries", headers=ADMIN).json()["entries"]
    assert entries and client.get(f"/core/audit/entries/{entries[0]['index']}", headers=ADMIN).status_code == 200


def test_an_installation_wide_admin_api_token_is_a_system_admin(
    client: TestClient, tombola: Tombola, seeded: Seed
) -> None:
    t = token(tombola, "admin")
    assert t["token"].startswith("tmb_") and len(t["token"]) == 4 + 43
    for method, path in ADMIN_ROUTES:
        resp = call(client, method, path, seeded.raffle_id, bearer(t["token"]))
        assert resp.status_code not in (401, 403), (path, resp.text)
    assert client.get("/core/audit/entries", headers=bearer(t["token"])).status_code == 200


def test_an_auditor_reads_the_log_and_nothing_else(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    auditor = bearer(token(tombola, "auditor")["token"])
    entries = client.get("/core/audit/entries", headers=auditor).json()["entries"]
    assert entries
    first = entries[0]["index"]
    assert client.get(f"/core/audit/entries/{first}", headers=auditor).status_code == 200
    assert client.get("/core/audit/checkpoint", headers=auditor).status_code == 200
    assert client.post("/core/audit/checkpoint", headers=auditor).status_code == 200
    assert client.get("/core/audit/checkpoints", headers=auditor).status_code == 200
    proof = client.get("/core/audit/proof/inclusion", params={"index": first}, headers=auditor)
    assert proof.status_code == 200, proof.text
    for method, path in ADMIN_ROUTES:
        resp = call(client, method, path, seeded.raffle_id, auditor)
        assert (resp.status_code, resp.json()["error"]) == (403, "forbidden"), path


def test_no_token_is_401_on_the_audit_log(client: TestClient, seeded: Seed) -> None:
    resp = client.get("/core/audit/entries")
    assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")


def test_the_tenant_boundary_holds(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    org_a, raffle_a = organisation_with_raffle(tombola, "Alpha")
    org_b, raffle_b = organisation_with_raffle(tombola, "Beta")
    a_auditor = bearer(token(tombola, "auditor", org_a)["token"])
    a_admin = bearer(token(tombola, "admin", org_a)["token"])
    everyone = bearer(token(tombola, "auditor")["token"])
    mine = client.get("/core/audit/entries", params={"limit": 1000}, headers=a_auditor).json()["entries"]
    assert mine and {e["entry"]["tenant"] for e in mine} == {org_a}
    asked_b = client.get("/core/audit/entries", params={"tenant": org_b, "limit": 1000}, headers=a_auditor).json()
    assert {e["entry"]["tenant"] for e in asked_b["entries"]} == {org_a}  # the scope wins over the query
    all_seen = client.get("/core/audit/entries", params={"limit": 1000}, headers=everyone).json()["entries"]
    assert {org_a, org_b} <= {e["entry"]["tenant"] for e in all_seen}
    b_index = next(e["index"] for e in all_seen if e["entry"]["tenant"] == org_b)
    a_index = mine[0]["index"]
    for headers in (a_auditor, a_admin):
        resp = client.get(f"/core/audit/entries/{b_index}", headers=headers)
        assert (resp.status_code, resp.json()["error"]) == (404, "audit_entry_not_found")
        resp = client.get("/core/audit/proof/inclusion", params={"index": b_index}, headers=headers)
        assert (resp.status_code, resp.json()["error"]) == (404, "audit_entry_not_found")
        assert client.get(f"/core/audit/entries/{a_index}", headers=headers).status_code == 200
        assert client.get("/core/audit/proof/inclusion", params={"index": a_index}, headers=headers).status_code == 200
    assert client.get(f"/core/audit/entries/{b_index}", headers=everyone).status_code == 200
    # A tenant's admin is no system admin: installation-wide admin routes refuse it.
    for method, path in ADMIN_ROUTES:
        resp = call(client, method, path, raffle_a, a_admin)
        assert (resp.status_code, resp.json()["error"]) == (403, "forbidden"), path
    assert raffle_b


def test_tokens_need_a_known_role_and_organisation(tombola: Tombola) -> None:
    with pytest.raises(InvalidRequest):
        create_token(tombola, name="x", role="operator", created_by="user:admin")
    with pytest.raises(NotFound):
        create_token(tombola, name="x", role="auditor", tenant="org-NOSUCHORG0", created_by="user:admin")
    with pytest.raises(InvalidRequest):
        create_token(tombola, name="  ", role="auditor", created_by="user:admin")
    with pytest.raises(InvalidRequest):
        create_token(tombola, name="x", role="auditor", created_by="user:admin", expires_at_ms=tombola.now_ms())
    assert list_tokens(tombola) == []
    assert audit.pending(tombola) == 0  # a refused change logs nothing


# --- refused authentication ----------------------------------------------------------------------


def failures(app: Tombola) -> list[dict[str, Any]]:
    return [e["payload"] for e in events(app, "auth.login_failed")]


def test_refused_tokens_get_401_and_are_logged(
    client: TestClient, tombola: Tombola, clock: FakeClock, seeded: Seed
) -> None:
    revoked = token(tombola, "auditor")
    short = token(tombola, "auditor", expires_at_ms=clock.now + 60_000)
    assert client.get("/core/audit/entries", headers=bearer(short["token"])).status_code == 200
    revoke_token(tombola, revoked["id"], reason="left the company", revoked_by="user:admin")
    clock.advance(60_000)
    cases = [
        ({}, "no_token", None),
        (bearer("tmb_" + "x" * 43), "unknown_token", None),
        (bearer(revoked["token"]), "revoked", revoked["id"]),
        (bearer(short["token"]), "expired", short["id"]),
    ]
    for headers, reason, token_id in cases:
        resp = client.get("/core/audit/entries", headers=headers)
        assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized"), reason
        logged = failures(tombola)[-1]
        assert logged["reason"] == reason
        assert logged["path"] == "/core/audit/entries" and logged["client"] == "testclient"
        assert logged.get("token_id") == token_id
    entry = events(tombola, "auth.login_failed")[-1]
    assert entry["actor"] == f"user:{short['id']}"
    resp = client.post("/v1/admin/venues", json={"name": "x"}, headers=bearer(revoked["token"]))
    assert resp.status_code == 401 and failures(tombola)[-1]["path"] == "/v1/admin/venues"


def test_a_flood_of_bad_tokens_does_not_flood_the_log(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    before = len(failures(tombola))
    for i in range(40):
        assert client.get("/v1/admin/raffles", headers=bearer(f"guess-{i}")).status_code == 401
    logged = len(failures(tombola)) - before
    assert logged == 10  # FAILED_PER_CLIENT per minute and client


def test_the_throttle_counts_what_it_left_out() -> None:
    throttle = FailureThrottle(per_client="2/second", overall="3/second")
    assert [throttle.admit("a"), throttle.admit("a"), throttle.admit("a"), throttle.admit("a")] == [0, 0, None, None]
    assert throttle.admit("b") == 0
    assert throttle.admit("c") is None  # the overall limit
    time.sleep(1.1)
    assert throttle.admit("a") == 2 and throttle.admit("a") == 0
    assert throttle.admit("c") == 1


# --- successful use --------------------------------------------------------------------------------


def test_use_is_noted_once_a_minute_and_logged_once_an_hour(
    client: TestClient, tombola: Tombola, clock: FakeClock, seeded: Seed
) -> None:
    t = token(tombola, "auditor")
    headers = bearer(t["token"])

    def used() -> int | None:
        with tombola.engine.connect() as conn:
            value = conn.execute(select(TOKEN.c.last_used_at_ms).where(TOKEN.c.id == t["id"])).scalar_one()
            return int(value) if value is not None else None

    def logins() -> list[dict[str, Any]]:
        return [e for e in events(tombola, "auth.login") if e["payload"]["token_id"] == t["id"]]

    assert used() is None
    for _ in range(3):
        assert client.get("/core/audit/checkpoint", headers=headers).status_code == 200
    assert used() == clock.now and len(logins()) == 1
    login = logins()[0]
    assert login["actor"] == f"user:{t['id']}" and login["payload"]["role"] == "auditor"
    start = clock.now
    clock.advance(30_000)
    client.get("/core/audit/checkpoint", headers=headers)
    assert used() == start
    clock.advance(31_000)
    client.get("/core/audit/checkpoint", headers=headers)
    assert used() == clock.now and len(logins()) == 1
    clock.advance(HOUR_MS)
    client.get("/core/audit/checkpoint", headers=headers)
    assert len(logins()) == 2


def test_the_token_is_the_actor_of_what_its_request_changes(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    t = token(tombola, "admin")

    def appended_by(headers: dict[str, str]) -> set[str]:
        before = tombola.core.audit.size()
        resp = client.post("/core/tickets/generate", json={"raffle_id": seeded.raffle_id}, headers=headers)
        assert resp.status_code == 200, resp.text
        audit.drain(tombola)
        entries = [json.loads(d) for _, d in tombola.core.audit.entries(after=before - 1, limit=1000)]
        assert any(e["type"] == "grant.issued" for e in entries)
        return {e["actor"] for e in entries}

    assert appended_by(bearer(t["token"])) == {f"user:{t['id']}"}
    # the next request's actor is its own: nothing leaks from one request into another
    assert appended_by(ADMIN) == {"user:admin"}
    assert appended_by(bearer(t["token"])) == {f"user:{t['id']}"}


# --- permission changes and break-glass -----------------------------------------------------------


def test_creating_and_revoking_a_token_is_logged(tombola: Tombola, seeded: Seed) -> None:
    org, _ = organisation_with_raffle(tombola, "Gamma")
    t = create_token(tombola, name="Jane (auditor)", role="auditor", tenant=org, created_by="user:root@cli")
    audit.drain(tombola)
    created = events(tombola, "auth.permission_changed")[-1]
    assert created["actor"] == "user:root@cli" and created["tenant"] == org
    assert created["payload"] == {
        "action": "token_created",
        "token_id": t["id"],
        "name": "Jane (auditor)",
        "role": "auditor",
        "tenant": org,
        "kind": "api",
        "expires_at_ms": None,
    }
    with pytest.raises(InvalidRequest):
        revoke_token(tombola, t["id"], reason=" ", revoked_by="user:root@cli")
    with pytest.raises(NotFound):
        revoke_token(tombola, "tok-NOSUCHTOKN", reason="x", revoked_by="user:root@cli")
    view = revoke_token(tombola, t["id"], reason="contract ended", revoked_by="user:root@cli")
    assert view["status"] == "revoked" and view["revoke_reason"] == "contract ended"
    revoke_token(tombola, t["id"], reason="again", revoked_by="user:root@cli")  # no change, nothing logged
    changes = events(tombola, "auth.permission_changed")
    assert [c["payload"]["action"] for c in changes] == ["token_created", "token_revoked"]
    assert changes[-1]["payload"]["reason"] == "contract ended" and changes[-1]["tenant"] == org
    listed = list_tokens(tombola)
    assert [x["id"] for x in listed] == [t["id"]] and "token_sha256" not in listed[0] and "token" not in listed[0]


def test_break_glass_is_short_lived_and_logged(
    client: TestClient, tombola: Tombola, clock: FakeClock, seeded: Seed
) -> None:
    with pytest.raises(InvalidRequest):
        break_glass(tombola, reason="", created_by="user:root@cli")
    with pytest.raises(InvalidRequest):
        break_glass(tombola, reason="outage", minutes=241, created_by="user:root@cli")
    bg = break_glass(tombola, reason="HSM outage, INC-42", minutes=30, created_by="user:root@cli")
    audit.drain(tombola)
    logged = events(tombola, "auth.break_glass")
    assert len(logged) == 1 and logged[0]["actor"] == "user:root@cli"
    assert logged[0]["payload"]["reason"] == "HSM outage, INC-42"
    assert logged[0]["payload"]["expires_at_ms"] == clock.now + 30 * 60_000 == bg["expires_at_ms"]
    assert bg["role"] == "admin" and bg["tenant"] == "" and bg["kind"] == "break_glass"
    assert client.get("/v1/admin/raffles", headers=bearer(bg["token"])).status_code == 200
    login = events(tombola, "auth.login")[-1]
    assert login["payload"]["via"] == "break_glass" and login["payload"]["token_id"] == bg["id"]
    clock.advance(30 * 60_000)
    assert client.get("/v1/admin/raffles", headers=bearer(bg["token"])).status_code == 401
    assert failures(tombola)[-1]["reason"] == "expired"


def test_no_token_ever_reaches_the_audit_log(
    client: TestClient, tombola: Tombola, clock: FakeClock, seeded: Seed
) -> None:
    org, _ = organisation_with_raffle(tombola, "Delta")
    made = [
        token(tombola, "admin"),
        token(tombola, "auditor", org),
        token(tombola, "auditor", expires_at_ms=clock.now + 1000),
        break_glass(tombola, reason="drill", created_by="user:root@cli"),
    ]
    for t in made:
        client.get("/core/audit/entries", headers=bearer(t["token"]))
    revoke_token(tombola, made[0]["id"], reason="drill over", revoked_by="user:root@cli")
    clock.advance(HOUR_MS)
    for t in made:
        client.get("/core/audit/entries", headers=bearer(t["token"]))
    client.get("/core/audit/entries", headers=bearer("tmb_not-a-real-token"))
    client.get("/core/audit/entries", headers=ADMIN)
    secrets = [t["token"] for t in made] + [token_digest(t["token"]) for t in made] + [ADMIN_TOKEN]
    secrets += [s.removeprefix("tmb_") for s in secrets if s.startswith("tmb_")]
    secrets.append("tmb_not-a-real-token")
    entries = all_entries(tombola)
    assert {"auth.login", "auth.login_failed", "auth.permission_changed", "auth.break_glass"} <= {
        json.loads(d)["type"] for _, d in entries
    }
    for _, data in entries:
        for secret in secrets:
            assert secret not in data


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def run(db_backend: DbUrls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TOMBOLA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TOMBOLA_CORE_DB_URL", db_backend.core)
    monkeypatch.setenv("TOMBOLA_BUSINESS_DB_URL", db_backend.business)
    monkeypatch.setenv("TOMBOLA_ADMIN_TOKEN", ADMIN_TOKEN)
    if "access" not in cli.commands:  # until server/cli.py registers the group
        monkeypatch.setitem(cli.commands, "access", access_group)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output) if "--json" in args else result.output

    invoke("init")
    return invoke


def test_the_access_commands(run, tmp_path: Path, db_backend: DbUrls) -> None:  # type: ignore[no-untyped-def]
    auditor = run("access", "token", "create", "--name", "Jane", "--role", "auditor", "--expires-days", "90", "--json")
    assert auditor["token"].startswith("tmb_") and auditor["status"] == "active" and auditor["expires_at_ms"]
    text = run("access", "token", "create", "--name", "CI", "--role", "admin")
    ci_token = text.strip().splitlines()[-1]
    assert ci_token.startswith("tmb_") and "Store it now" in text
    bg = run("access", "break-glass", "--reason", "HSM outage", "--minutes", "15", "--json")
    listed = run("access", "token", "list", "--json")
    assert [t["name"] for t in listed] == ["Jane", "CI", "break-glass"]
    listing = run("access", "token", "list")
    assert auditor["id"] in listing and "tmb_" not in listing
    assert all("token" not in t and "token_sha256" not in t for t in listed)
    revoked = run("access", "token", "revoke", auditor["id"], "--reason", "rotation", "--json")
    assert revoked["status"] == "revoked"
    # The events reached the log (the command drains the outbox), attributed to the OS account.
    app = open_tombola(tmp_path / "var", db_backend)
    try:
        with TestClient(create_app(tombola=app)) as client:
            resp = client.get("/core/audit/entries", params={"type": "auth.", "limit": 100}, headers=bearer(ci_token))
            assert resp.status_code == 200, resp.text
            seen = [e["entry"] for e in resp.json()["entries"]]
            assert client.get("/core/audit/entries", headers=bearer(auditor["token"])).status_code == 401
        assert audit.pending(app) == 0
    finally:
        app.close()
    kinds = [(e["type"], e["payload"].get("action")) for e in seen]
    assert kinds[:4] == [
        ("auth.permission_changed", "token_created"),
        ("auth.permission_changed", "token_created"),
        ("auth.break_glass", None),
        ("auth.permission_changed", "token_revoked"),
    ]
    assert all(e["actor"].startswith("user:") and e["actor"].endswith("@cli") for e in seen[:4])
    assert seen[2]["payload"]["reason"] == "HSM outage" and seen[2]["payload"]["token_id"] == bg["id"]


def test_access_refusals_exit_1_with_the_code_and_usage_errors_2(
    run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    for argv, code in [
        (["access", "token", "create", "--name", "x", "--role", "auditor", "--tenant", "org-NOSUCHORG0"], "not_found"),
        (["access", "token", "revoke", "tok-NOSUCHTOKN", "--reason", "x"], "not_found"),
        (["access", "break-glass", "--reason", " "], "invalid_request"),
    ]:
        monkeypatch.setattr(sys, "argv", ["tombola", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 1
        assert capsys.readouterr().err.startswith(f"{code}: ")
    monkeypatch.setattr(sys, "argv", ["tombola", "access", "break-glass"])  # --reason is required
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
