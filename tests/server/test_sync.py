"""Delta sync ingest through the HTTP API: acceptance, idempotency and every rejection code.

Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from server.context import Tombola
from server.sync import service as sync_service
from tests.simulators.device import RawDevice
from tests.support.app import HOUR_MS, FakeClock, Seed, tickets_of


def test_enrollment_gives_identity_keys_and_a_grant(device: RawDevice, seeded: Seed) -> None:
    assert device.device_id.startswith("dv-")
    assert [g.raffle_id for g in device.grants] == [seeded.raffle_id]
    grant = device.grants[0]
    assert (grant.first_number, grant.last_number) == (1, 1000)
    assert grant.lease_s == 8 * 3600


def test_enrollment_code_is_single_use(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    other = RawDevice()
    from sync_protocol.messages import EnrollmentRequest
    from sync_protocol.signing import b64u_encode

    req = EnrollmentRequest(code=seeded.code, public_key=b64u_encode(other.signer.public_key)).signed_by(other.signer)
    resp = client.post("/v1/devices/enroll", json=req.to_dict())
    assert resp.status_code == 409
    assert resp.json()["error"] == "enrollment_code_used"


def test_enrollment_is_idempotent_for_the_same_key(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    """The first answer was lost on the way: the same device asking again gets the same identity."""
    from sync_protocol.messages import EnrollmentRequest
    from sync_protocol.signing import b64u_encode

    req = EnrollmentRequest(code=seeded.code, public_key=b64u_encode(device.signer.public_key)).signed_by(device.signer)
    resp = client.post("/v1/devices/enroll", json=req.to_dict())
    assert resp.status_code == 201
    assert resp.json()["device_id"] == device.device_id
    assert [g["grant_id"] for g in resp.json()["grants"]] == [g.grant_id for g in device.grants]


def test_enrollment_code_expires(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> None:
    clock.advance(25 * HOUR_MS)
    from sync_protocol.messages import EnrollmentRequest
    from sync_protocol.signing import b64u_encode

    dev = RawDevice()
    req = EnrollmentRequest(code=seeded.code, public_key=b64u_encode(dev.signer.public_key)).signed_by(dev.signer)
    resp = client.post("/v1/devices/enroll", json=req.to_dict())
    assert (resp.status_code, resp.json()["error"]) == (403, "enrollment_code_expired")


def test_enrollment_needs_proof_of_key(client: TestClient, seeded: Seed) -> None:
    from sync_protocol.messages import EnrollmentRequest
    from sync_protocol.signing import SoftwareSigner, b64u_encode

    dev, thief = SoftwareSigner.generate(), SoftwareSigner.generate()
    req = EnrollmentRequest(code=seeded.code, public_key=b64u_encode(dev.public_key)).signed_by(thief)
    resp = client.post("/v1/devices/enroll", json=req.to_dict())
    assert resp.json()["error"] == "bad_signature"


def test_sales_reach_the_core_once(client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice) -> None:
    s1 = device.sale(seeded.raffle_id, 1)
    s2 = device.sale(seeded.raffle_id, 5, method="card")
    ack = device.sync(client, 1)
    assert (ack.acked_seq, ack.applied, ack.duplicates) == (2, 2, 0)
    assert ack.head_hash == s2.hash
    assert sorted(tickets_of(tombola, seeded.raffle_id)) == sorted(
        [(n, s1.sale_id) for n in s1.numbers] + [(n, s2.sale_id) for n in s2.numbers]
    )
    again = device.sync(client, 1)
    assert (again.acked_seq, again.applied, again.duplicates) == (2, 0, 2)
    assert len(tickets_of(tombola, seeded.raffle_id)) == 6


def test_overlapping_batch_adds_only_its_new_part(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    for _ in range(3):
        device.sale(seeded.raffle_id)
    device.sync(client, 1, last_seq=2)
    device.sale(seeded.raffle_id)
    ack = device.sync(client, 1)
    assert (ack.acked_seq, ack.applied, ack.duplicates) == (4, 2, 2)
    assert len(tickets_of(tombola, seeded.raffle_id)) == 4


def test_gap_is_refused_naming_the_missing_sequence(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    for _ in range(4):
        device.sale(seeded.raffle_id)
    device.sync(client, 1, last_seq=1)
    resp = device.post(client, device.batch(3))
    assert resp.status_code == 409
    assert resp.json()["error"] == "sequence_gap"
    assert resp.json()["missing_seq"] == 2


def test_tampered_record_breaks_the_chain(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    device.sale(seeded.raffle_id)
    batch = device.batch(1).to_dict()
    batch["records"][0]["amount_cents"] = 1
    resp = client.post("/v1/sync", json=batch)
    assert resp.json()["error"] == "broken_chain"
    assert tickets_of(tombola, seeded.raffle_id) == []


def test_batch_signed_by_another_key_is_refused(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    from sync_protocol.signing import SoftwareSigner

    device.sale(seeded.raffle_id)
    batch = device.batch(1).signed_by(SoftwareSigner.generate())
    resp = device.post(client, batch)
    assert (resp.status_code, resp.json()["error"]) == (401, "bad_signature")


def test_batch_replayed_from_another_device_is_refused(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    from server.enrollment import service as enrollment

    other = RawDevice()
    other.enroll(client, enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"])
    device.sale(seeded.raffle_id)
    stolen = device.batch(1).model_copy(update={"device_id": other.device_id}).signed_by(other.signer)
    resp = other.post(client, stolen)
    assert (resp.status_code, resp.json()["error"]) == (403, "device_mismatch")


def test_unknown_and_revoked_devices_are_refused(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    device.sale(seeded.raffle_id)
    ghost = device.batch(1).model_copy(update={"device_id": "dv-NOBODY"})
    assert client.post("/v1/sync", json=ghost.to_dict()).json()["error"] == "unknown_device"
    from server.enrollment import service as enrollment

    enrollment.revoke_device(tombola, device.device_id, "stolen")
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"]) == (403, "device_revoked")


def test_malformed_and_oversized_bodies(client: TestClient, tombola: Tombola) -> None:
    resp = client.post("/v1/sync", content=b"{not json", headers={"content-type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed")
    resp = client.post("/v1/sync", json={"device_id": "x"})
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed")
    big = b"[" + b"0," * (tombola.settings.max_body_bytes // 2) + b"0]"
    resp = client.post("/v1/sync", content=big, headers={"content-type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (413, "payload_too_large")


def test_unsupported_major_version_is_refused(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    batch = device.batch(1).to_dict() | {"protocol_version": "2.0"}
    resp = client.post("/v1/sync", json=batch)
    assert resp.json()["error"] == "unsupported_version"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("outside_grant", "outside_grant"),
        ("sold_twice", "ticket_sold_twice"),
        ("after_close", "sale_after_close"),
        ("lease", "lease_expired"),
        ("unknown_raffle", "unknown_raffle"),
        ("amount", "amount_mismatch"),
        ("anchor", "bad_anchor"),
        ("void_unknown", "unknown_sale"),
    ],
)
def test_each_business_rule_refuses_the_whole_batch(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, clock: FakeClock, case: str, code: str
) -> None:
    good = device.sale(seeded.raffle_id)
    if case == "outside_grant":
        device.sale(seeded.raffle_id, numbers=[5000])
    elif case == "sold_twice":
        device.sale(seeded.raffle_id, numbers=[good.numbers[0]])
    elif case == "after_close":
        from server.raffles import service as raffles

        device.sale(seeded.raffle_id, elapsed_ms=2 * HOUR_MS)
        clock.advance(HOUR_MS)
        raffles.close_raffle(tombola, seeded.raffle_id)
        clock.advance(2 * HOUR_MS)
    elif case == "lease":
        device.sale(seeded.raffle_id, elapsed_ms=8 * HOUR_MS + 1)
        clock.advance(9 * HOUR_MS)
    elif case == "unknown_raffle":
        device.sale("rf-NOPE", numbers=[7])
    elif case == "amount":
        device.sale(seeded.raffle_id, 2, amount_cents=999)  # two singles cost 1000
    elif case == "anchor":
        device.sale(seeded.raffle_id, anchor_ms=device.anchor_ms - 60_000)
    elif case == "void_unknown":
        device.void(good.model_copy(update={"sale_id": "never-sold"}))
    resp = device.post(client, device.batch(1))
    assert resp.status_code in (404, 409, 422), resp.text
    body = resp.json()
    assert body["error"] == code
    assert body["seq"] == 2 and body["detail"]
    assert tickets_of(tombola, seeded.raffle_id) == []  # nothing partly written
    # The device acknowledges the rejection; the server records it as rejected and moves on.
    ack = device.sync(client, 1, rejected=[(2, code)])
    assert ack.acked_seq == 2 and ack.applied == 1
    assert [(r.seq, r.code) for r in ack.rejected] == [(2, code)]
    assert tickets_of(tombola, seeded.raffle_id) == [(n, good.sale_id) for n in good.numbers]


def test_acknowledging_the_wrong_code_does_not_pass(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    device.sale(seeded.raffle_id, numbers=[5000])
    resp = device.post(client, device.batch(1, rejected=[(1, "amount_mismatch")]))
    assert resp.json()["error"] == "outside_grant"


def test_sale_before_close_syncs_after_close(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, clock: FakeClock
) -> None:
    """Judged on server-anchored time: a sale made offline before close is good after close."""
    device.sale(seeded.raffle_id, elapsed_ms=HOUR_MS)
    clock.advance(13 * HOUR_MS)
    from server.raffles import service as raffles

    assert raffles.get_raffle(tombola, seeded.raffle_id)["status"] == "closed"
    ack = device.sync(client, 1)
    assert ack.applied == 1 and not ack.rejected


def test_void_takes_tickets_out(client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice) -> None:
    sale = device.sale(seeded.raffle_id, 5)
    device.sync(client, 1)
    device.void(sale)
    device.sync(client, 2)
    assert {t.status for t in tombola.core.tickets(seeded.raffle_id)} == {"voided"}
    device.void(sale)
    resp = device.post(client, device.batch(3))
    assert resp.json()["error"] == "unknown_sale"  # voiding twice


def test_top_up_at_80_percent(client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice) -> None:
    for _ in range(26):
        device.sale(seeded.raffle_id, 30)  # 780 numbers
    ack = device.sync(client, 1)
    assert len(ack.grants) == 1
    device.sale(seeded.raffle_id, 30)  # 810
    ack = device.sync(client, 27)
    assert [(g.first_number, g.last_number) for g in ack.grants] == [(1, 1000), (1001, 2000)]
    ack = device.sync(client, 28)
    assert len(ack.grants) == 2  # no second top-up until 80% of both is used


def test_admin_extension_is_delivered_on_next_sync(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    from tests.support.app import ADMIN_TOKEN

    resp = client.post(
        f"/v1/admin/devices/{device.device_id}/extend",
        json={"raffle_id": seeded.raffle_id, "numbers": 250, "reason": "queue at the door"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert resp.status_code == 201, resp.text
    ack = device.sync(client, 1)
    assert any(g.size == 250 for g in ack.grants)
    resp = client.post(
        f"/v1/admin/devices/{device.device_id}/extend",
        json={"raffle_id": seeded.raffle_id, "numbers": 1, "reason": "x"},
    )
    assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")


def test_crash_between_core_and_business_commit_loses_nothing(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the core commits the tickets, then the business transaction dies (its
    sale rows, written before the core's recording, are lost with it)."""
    device.sale(seeded.raffle_id, 5)
    device.sale(seeded.raffle_id, 1)
    real_anchor = sync_service.record_anchor

    def boom(*a: object, **k: object) -> None:
        raise ConnectionError("business database went away")

    monkeypatch.setattr(sync_service, "record_anchor", boom)
    with pytest.raises(ConnectionError):
        device.post(client, device.batch(1))
    assert len(tickets_of(tombola, seeded.raffle_id)) == 6  # the core committed
    monkeypatch.setattr(sync_service, "record_anchor", real_anchor)
    ack = device.sync(client, 1)
    assert ack.acked_seq == 2
    tickets = tickets_of(tombola, seeded.raffle_id)
    assert len(tickets) == 6 and len({n for n, _ in tickets}) == 6


def test_reconciliation_report(client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice) -> None:
    from server.reconcile import service as reconcile

    device.sale(seeded.raffle_id, 1)
    device.sale(seeded.raffle_id, 5, method="card")
    s3 = device.sale(seeded.raffle_id, 30)
    device.void(s3)
    device.sync(client, 1)
    rep = reconcile.report(tombola, seeded.raffle_id)
    assert rep["licence_number"] and rep["venue"] == "Test Hall"
    assert rep["tickets_sold"] == 6 and rep["gross_sales_cents"] == 1500
    (dev,) = rep["devices"]
    assert (dev["granted"], dev["sold"], dev["voided"], dev["unused"]) == (1000, 6, 30, 964)
    assert dev["cash_expected_cents"] == 500 and dev["card_cents"] == 1000
    assert rep["sales_by_price_point"] == [
        {"quantity": 1, "amount_cents": 500, "sales": 1, "tickets": 1, "total_cents": 500},
        {"quantity": 5, "amount_cents": 1000, "sales": 1, "tickets": 5, "total_cents": 1000},
    ]
    assert "Gross sales: 15.00 USD" in reconcile.render_text(rep)
    json.dumps(rep)
