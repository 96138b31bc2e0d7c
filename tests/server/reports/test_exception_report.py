"""The GLI-31 exception report (SQLite and PostgreSQL): besides the devices' voids and rejections,
the audit log's range extensions, two-person requests and break-glass, redraws, revocations and
voided remainders, made through the real service paths, each with who, why, where and its audit
index (whose inclusion proof an auditor fetches); tenants and venues see only their own."""

from __future__ import annotations

import csv
import io
import json
import typing

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from gli_core.api import acting_as
from gli_core.merkle import leaf_hash, verify_inclusion
from server import audit
from server.auth import INSTALLATION_ADMIN, Principal
from server.context import Tombola
from server.enrollment import service as enrollment
from server.errors import InvalidRequest
from server.raffles import service as raffles
from server.reports import service
from tests.flows.test_draw_redraw import drawn
from tests.server.reports.test_reports import _insert, _sale
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, FakeClock, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _org(app: Tombola, venue_id: str) -> str:
    return str(raffles.get_venue(app, venue_id)["organisation_id"])


def _void_and_rejection(app: Tombola, raffle_id: str) -> None:
    sale = _sale(raffle_id, "d-pos", 1, 1, 500, at=1000, voided=True)
    void = _sale(raffle_id, "d-pos", 2, 0, 0, at=2000) | {
        "kind": "void",
        "voids_sale_id": sale["id"],
        "void_reason": "customer changed mind",
    }
    rejected = _sale(raffle_id, "d-pos", 3, 1, 500, at=3000, status="rejected")
    blank = {"voids_sale_id": "", "void_reason": ""}  # one insert takes the first row's keys
    _insert(app, [blank | sale, void, blank | rejected])


def _exceptions(client: TestClient, tombola: Tombola, seeded: Seed) -> dict[str, str]:
    """Make one of each exception through the service paths; returns the ids involved."""
    org = _org(tombola, seeded.venue_id)
    kept = RawDevice()
    kept.enroll(client, seeded.code)
    lost = RawDevice()
    lost.enroll(client, enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"])
    _void_and_rejection(tombola, seeded.raffle_id)
    with acting_as("user:ext-admin"):
        enrollment.extend_device(tombola, kept.device_id, seeded.raffle_id, 10, "printer jam, ran out")
    with acting_as("user:void-admin"):
        enrollment.void_remainder(tombola, kept.device_id, seeded.raffle_id, "tablet dropped in the lake")
    with acting_as("user:rev-admin"):
        enrollment.revoke_device(tombola, lost.device_id, "stolen from the bar")
    # two-person requests as the accounts service logs them (auth.break_glass)
    for actor, payload in (
        ("user:alice", {"action": "requested", "approval_id": "ap-1", "kind": "break_glass", "reason": "incident 42"}),
        (
            "user:bob",
            {"action": "approved", "approval_id": "ap-1", "kind": "break_glass", "requested_by": "user:alice"},
        ),
        (
            "user:alice",
            {
                "action": "requested",
                "approval_id": "ap-2",
                "kind": "extension",
                "reason": "bingo night",
                "device_id": kept.device_id,
                "raffle_id": seeded.raffle_id,
                "numbers": 5000,
                "venue_id": seeded.venue_id,
            },
        ),
    ):
        audit.record_now(tombola, "auth.break_glass", payload | {"user_id": "u1"}, tenant=org, actor=actor)
    # an installation-wide one (no tenant): only installation-wide readers see it
    audit.record_now(
        tombola,
        "auth.break_glass",
        {"action": "requested", "approval_id": "ap-3", "kind": "break_glass", "reason": "root cause"},
        actor="user:root",
    )
    return {"org": org, "kept": kept.device_id, "lost": lost.device_id}


def test_every_exception_with_who_why_where_and_audit_index(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    ids = _exceptions(client, tombola, seeded)
    rep = service.exceptions(tombola, INSTALLATION_ADMIN)
    assert rep["columns"] == list(service.EXCEPTION_COLUMNS) and rep["truncated"] is False
    kinds = [r["exception"] for r in rep["rows"]]
    assert sorted(set(kinds)) == sorted(
        {
            "void",
            "rejection",
            "extension",
            "void_remainder",
            "grant_void",
            "revocation",
            "break_glass",
            "extension_approval",
        }
    )
    assert [r["at"] for r in rep["rows"]] == sorted(r["at"] for r in rep["rows"])  # oldest first
    by = {(r["exception"], r["code"], r["record_id"]): r for r in rep["rows"]}

    (ext,) = [r for r in rep["rows"] if r["exception"] == "extension"]
    assert (ext["raffle_id"], ext["venue_id"], ext["device_id"]) == (seeded.raffle_id, seeded.venue_id, ids["kept"])
    assert (ext["actor"], ext["detail"], ext["event_type"]) == (
        "user:ext-admin",
        "printer jam, ran out",
        "grant.issued",
    )
    (rem,) = [r for r in rep["rows"] if r["exception"] == "void_remainder"]
    assert (rem["actor"], rem["detail"], rem["device_id"]) == (
        "user:void-admin",
        "tablet dropped in the lake",
        ids["kept"],
    )
    assert rem["venue_id"] == seeded.venue_id
    (rev,) = [r for r in rep["rows"] if r["exception"] == "revocation"]
    assert (rev["actor"], rev["detail"], rev["device_id"]) == ("user:rev-admin", "stolen from the bar", ids["lost"])
    grant_voids = [r for r in rep["rows"] if r["exception"] == "grant_void"]
    assert grant_voids and {r["device_id"] for r in grant_voids} == {ids["lost"]}
    assert all(r["detail"] == "device revoked: stolen from the bar" and r["record_id"] for r in grant_voids)
    asked = by["break_glass", "requested", "ap-1"]
    assert (asked["actor"], asked["detail"], asked["venue_id"]) == ("user:alice", "incident 42", "")
    assert by["break_glass", "approved", "ap-1"]["actor"] == "user:bob"
    two = by["extension_approval", "requested", "ap-2"]
    assert (two["device_id"], two["venue_id"], two["detail"]) == (ids["kept"], seeded.venue_id, "bingo night")
    assert by["break_glass", "requested", "ap-3"]["actor"] == "user:root"
    (void,) = [r for r in rep["rows"] if r["exception"] == "void"]
    assert (void["detail"], void["actor"], void["audit_index"]) == ("customer changed mind", "device:d-pos", None)
    (rejected,) = [r for r in rep["rows"] if r["exception"] == "rejection"]
    assert rejected["code"] == "bad" and rejected["venue_id"] == seeded.venue_id

    # every audit row names its entry: the entry is that event, and its inclusion proof verifies
    logged = [r for r in rep["rows"] if r["audit_index"] is not None]
    assert len(logged) == len(rep["rows"]) - 2
    for row in logged:
        _, data = tombola.core.audit.entry(row["audit_index"])
        assert json.loads(data)["type"] == row["event_type"]
    tombola.core.audit.checkpoint("test")
    proof = client.get("/core/audit/proof/inclusion", params={"index": ext["audit_index"]}, headers=ADMIN).json()
    assert json.loads(proof["leaf_data"])["payload"]["kind"] == "extension"
    verify_inclusion(  # raises when the proof does not verify
        leaf_hash(proof["leaf_data"].encode()),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["proof"]],
        bytes.fromhex(proof["root_hash"]),
    )

    # filters: kind, raffle, time
    only = service.exceptions(tombola, INSTALLATION_ADMIN, kind="revocation")["rows"]
    assert [r["exception"] for r in only] == ["revocation"]
    of_raffle = service.exceptions(tombola, INSTALLATION_ADMIN, raffle=seeded.raffle_id)["rows"]
    assert {r["raffle_id"] for r in of_raffle} == {seeded.raffle_id}
    assert "extension" in {r["exception"] for r in of_raffle} and "break_glass" not in {
        r["exception"] for r in of_raffle
    }
    assert service.exceptions(tombola, INSTALLATION_ADMIN, since="2099-01-01")["rows"] == []
    with pytest.raises(InvalidRequest):
        service.exceptions(tombola, INSTALLATION_ADMIN, kind="mischief")


def test_tenants_and_venues_see_only_their_exceptions(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    ids = _exceptions(client, tombola, seeded)
    everything = service.exceptions(tombola, INSTALLATION_ADMIN)["rows"]
    mine = service.exceptions(tombola, Principal("user:ba", "business_admin", ids["org"], "api_token"))["rows"]
    assert mine == [r for r in everything if r["actor"] != "user:root"]  # not the installation-wide entry
    auditor = service.exceptions(tombola, Principal("user:au", "auditor", ids["org"], "api_token"))["rows"]
    assert auditor == mine
    stranger = Principal("user:x", "business_admin", "org-of-someone-else", "api_token")
    assert service.exceptions(tombola, stranger)["rows"] == []
    manager = Principal("user:vm", "venue_manager", ids["org"], "api_token", venues=frozenset({seeded.venue_id}))
    at_venue = service.exceptions(tombola, manager)["rows"]
    assert at_venue == [r for r in mine if r["venue_id"] == seeded.venue_id] and at_venue
    assert "break_glass" not in {r["exception"] for r in at_venue}  # organisation-wide: no venue
    other = raffles.create_venue(tombola, "Other Hall")
    elsewhere = Principal("user:vm2", "venue_manager", ids["org"], "api_token", venues=frozenset({other["id"]}))
    assert service.exceptions(tombola, elsewhere)["rows"] == []


def test_http_csv_cli_and_kinds_agree(
    client: TestClient, tombola: Tombola, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert typing.get_args(service.ExceptionKind) == service.EXCEPTION_KINDS
    _exceptions(client, tombola, seeded)
    as_json = client.get("/reports/exceptions", headers=ADMIN).json()
    assert as_json == service.exceptions(tombola, INSTALLATION_ADMIN)
    as_csv = client.get("/reports/exceptions", params={"format": "csv"}, headers=ADMIN).text
    parsed = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["audit_index"] for r in parsed] == [
        "" if r["audit_index"] is None else str(r["audit_index"]) for r in as_json["rows"]
    ]
    bad = client.get("/reports/exceptions", params={"kind": "mischief"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["error"]) == (422, "malformed")
    redraws = client.get("/reports/exceptions", params={"kind": "extension"}, headers=ADMIN).json()["rows"]
    assert [r["exception"] for r in redraws] == ["extension"]

    from server.cli import _common as cli_module
    from server.cli import cli

    class _Opened:
        @staticmethod
        def open(_settings: object) -> Tombola:
            return tombola

    monkeypatch.setattr(cli_module, "Tombola", _Opened)
    monkeypatch.setattr(tombola, "close", lambda: None)
    out = CliRunner().invoke(cli, ["report", "exceptions", "--kind", "revocation", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert (
        json.loads(out.output) == client.get("/reports/exceptions", params={"kind": "revocation"}, headers=ADMIN).json()
    )


def test_a_redrawn_prize_is_an_exception(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> None:
    first = drawn(client, tombola, seeded, clock)
    tombola.core.draw_publish(seeded.raffle_id)
    (winner,) = first["winners"]
    with acting_as("user:draw-admin"):
        tombola.core.draw_redraw(seeded.raffle_id, winner["tier"], winner["ticket_number"], "unclaimed by the deadline")
    (row,) = service.exceptions(tombola, INSTALLATION_ADMIN, kind="redraw")["rows"]
    assert (row["raffle_id"], row["venue_id"], row["actor"]) == (seeded.raffle_id, seeded.venue_id, "user:draw-admin")
    assert row["detail"] == "unclaimed by the deadline" and row["event_type"] == "draw.redrawn"
    assert (
        json.loads(tombola.core.audit.entry(row["audit_index"])[1])["payload"]["ticket_number"]
        != winner["ticket_number"]
    )
