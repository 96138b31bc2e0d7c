"""The audit log records the whole sale-to-draw life of a raffle, with the right actors and
tenants, and serves proofs that check with the RFC 9162 verifiers (both backends)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from gli_core import merkle
from gli_core.audit.verify import verify_checkpoint_chain, verify_log
from server.context import Tombola
from server.enrollment import service as enrollment
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _entries(tombola: Tombola) -> list[dict[str, Any]]:
    return [json.loads(d) for _, d in tombola.core.audit.entries(limit=100_000)]


def test_a_raffle_life_is_in_the_log(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    org = raffles.get_venue(tombola, seeded.venue_id)["organisation_id"]
    device = RawDevice()
    device.enroll(client, seeded.code)
    for q in (1, 5):
        device.sale(seeded.raffle_id, q)
    device.void(device.sale(seeded.raffle_id, 1))
    device.sync(client, 1)
    forged = device.batch(1)
    forged.signature = forged.signature[:-4] + ("AAAA" if not forged.signature.endswith("AAAA") else "BBBB")
    refused = device.post(client, forged)
    assert refused.status_code in (401, 422)
    enrollment.revoke_device(tombola, device.device_id, "stolen")
    from server import audit

    audit.drain(tombola)
    entries = _entries(tombola)
    types = [e["type"] for e in entries]
    for expected in (
        "raffle.created",
        "draw.committed",
        "enrollment.code_created",
        "device.enrolled",
        "grant.issued",
        "tickets.recorded",
        "sync.accepted",
        "sync.rejected",
        "device.revoked",
    ):
        assert expected in types, (expected, types)
    by_type = {e["type"]: e for e in entries}
    assert by_type["raffle.created"]["tenant"] == org
    assert by_type["grant.issued"]["actor"] == f"device:{device.device_id}"
    recorded = by_type["tickets.recorded"]
    assert recorded["actor"] == f"device:{device.device_id}" and recorded["tenant"] == org
    assert recorded["payload"]["tickets"] == {seeded.raffle_id: 7} and recorded["payload"]["sales"] == 3
    accepted = by_type["sync.accepted"]["payload"]
    assert (accepted["applied"], accepted["acked_seq"], accepted["rejected_count"]) == (4, 4, 0)
    assert (
        by_type["sync.rejected"]["payload"]["code"] in ("bad_signature", "signature_invalid", "unauthorized")
        or (by_type["sync.rejected"]["payload"]["code"])
    )
    assert by_type["device.revoked"]["payload"]["reason"] == "stolen"
    assert [e["index"] for e in entries] == list(range(len(entries)))
    # nothing secret: the enrollment code itself never appears, only a digest prefix
    assert all(seeded.code not in json.dumps(e) for e in entries)


def test_audit_api_proofs_verify(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    for _ in range(5):
        enrollment.create_enrollment_code(tombola, seeded.venue_id)
    first = client.post("/core/audit/checkpoint", headers=ADMIN).json()
    for _ in range(7):
        client.post(f"/v1/admin/venues/{seeded.venue_id}/enrollment-codes", headers=ADMIN)
    for _ in range(3):
        enrollment.create_enrollment_code(tombola, seeded.venue_id)
    from server import audit

    audit.drain(tombola)
    second = client.post("/core/audit/checkpoint", headers=ADMIN).json()
    assert second["size"] > first["size"]
    info = client.get("/core/audit/checkpoint", headers=ADMIN).json()
    assert info["checkpoint"]["size"] == second["size"] and info["keys"]

    for index in (0, first["size"] - 1, second["size"] - 1):
        p = client.get(f"/core/audit/proof/inclusion?index={index}&size={second['size']}", headers=ADMIN).json()
        merkle.verify_inclusion(
            merkle.leaf_hash(p["leaf_data"].encode()),
            index,
            second["size"],
            [bytes.fromhex(h) for h in p["proof"]],
            bytes.fromhex(second["root_hash"]),
        )
    c = client.get(f"/core/audit/proof/consistency?first={first['size']}&second={second['size']}", headers=ADMIN)
    body = c.json()
    merkle.verify_consistency(
        first["size"],
        second["size"],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
        [bytes.fromhex(h) for h in body["proof"]],
    )
    bad = client.get(f"/core/audit/proof/inclusion?index={second['size'] + 5}", headers=ADMIN)
    assert bad.status_code in (404, 422) and bad.json()["error"] in ("audit_entry_not_found", "audit_range_invalid")
    assert client.get("/core/audit/checkpoint").status_code == 401

    log = tombola.core.audit
    notes = [cp.note for cp in log.checkpoints()]
    keys = tombola.core.audit_verifiers()
    assert verify_log(((d, h) for _, d, h in log.iter_entries()), notes, keys, origin=log.origin).ok
    assert verify_checkpoint_chain(notes, keys, log.consistency_proof) is None


def test_upkeep_drains_checkpoints_and_ships(tombola: Tombola, seeded: Seed, tmp_path: Any) -> None:
    import dataclasses
    import time

    from server import audit
    from server.maintenance import AuditUpkeep

    core = tombola.core
    core.audit_config = dataclasses.replace(
        core.audit_config, archive="local", local_dir=tmp_path / "audit", segment_size=4, checkpoint_interval_s=0
    )
    enrollment.create_enrollment_code(tombola, seeded.venue_id)  # an outbox row not yet drained
    assert audit.pending(tombola) >= 1
    upkeep = AuditUpkeep(tombola, tick_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            latest = core.audit.latest_checkpoint()
            if audit.pending(tombola) == 0 and latest is not None and latest.size == core.audit.size():
                break
            time.sleep(0.05)
    finally:
        upkeep.stop()
    assert audit.pending(tombola) == 0
    latest = core.audit.latest_checkpoint()
    assert latest is not None and latest.size == core.audit.size()
    assert any((tmp_path / "audit" / "segments").iterdir())


def test_settings_changes_are_logged_once(tombola: Tombola) -> None:
    from server import audit

    assert audit.settings_changed(tombola) is True
    assert audit.settings_changed(tombola) is False
    tombola.settings.grant_size = 500
    assert audit.settings_changed(tombola) is True
    last = json.loads(tombola.core.audit.entries(type_prefix="settings.changed", limit=10)[-1][1])
    assert last["payload"]["values"]["grant_size"] == "500"


def test_key_rotation_is_logged_and_old_signatures_still_verify(
    client: TestClient, tombola: Tombola, seeded: Seed
) -> None:
    """Rotating the grant, audit and VRF keys mid-raffle: grants and checkpoints signed before
    still verify, the raffle's draw keeps its committed VRF key, and each rotation is logged."""
    core = tombola.core
    before = core.audit.checkpoint("before")
    committed = client.get(f"/core/draw/{seeded.raffle_id}/status", headers=ADMIN).json()["vrf"]["key_id"]
    rotated = {p: core.rotate_key(p) for p in ("grant", "audit", "vrf")}
    assert all(r["old_key_id"] != r["new_key_id"] for r in rotated.values())
    assert client.get(f"/core/draw/{seeded.raffle_id}/status", headers=ADMIN).json()["vrf"]["key_id"] == committed
    after = core.audit.checkpoint("after")
    keys = core.audit_verifiers()
    assert len({k.vkey for k in keys}) >= 2
    log = core.audit
    report = verify_log(((d, h) for _, d, h in log.iter_entries()), [before.note, after.note], keys, origin=log.origin)
    assert report.ok, report.failure
    logged = [json.loads(d)["payload"] for _, d in log.entries(type_prefix="key.rotated", limit=10)]
    assert [p["purpose"] for p in logged] == ["grant", "audit", "vrf"]
    assert rotated["grant"]["new_key_id"] in {k.key_id for k in core.public_keys()}
