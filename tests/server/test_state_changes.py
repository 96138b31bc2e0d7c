"""Each state change is one service function that the CLI, the admin API and the core's route
call: cancel (both databases whichever way it comes), revoke (a reason; the device's unsold
numbers voided; a second revoke changes nothing), extend (exactly what is asked or refused with
the count left), and a raffle too small for the venue's devices is refused at creation.

Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from gli_core.errors import CoreError
from server import audit
from server.context import Tombola
from server.enrollment import service as enrollment
from server.errors import InvalidRequest
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, HOUR_MS, Seed, tickets_of

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def audit_types(tombola: Tombola) -> list[str]:
    """The core log's entry types, after draining the business outbox into it."""
    audit.drain(tombola)
    return [orjson.loads(d)["type"] for _, d in tombola.core.audit.entries(after=-1, limit=100_000)]


def test_the_cores_cancel_route_cancels_the_raffle_for_the_devices_too(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    """Seen: the core's route cancelled the core draw only; a device sale then synced and was
    recorded as a sold ticket."""
    resp = client.post(f"/core/draw/{seeded.raffle_id}/cancel", json={"reason": "venue flooded"}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "CANCELLED"
    assert raffles.get_raffle(tombola, seeded.raffle_id)["status"] == "cancelled"
    sale = device.sale(seeded.raffle_id, 1)
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"], resp.json()["seq"]) == (422, "sale_after_close", sale.seq)
    ack = device.sync(client, 1, rejected=[(sale.seq, "sale_after_close")])
    assert [r.code for r in ack.rejected] == ["sale_after_close"]
    assert tickets_of(tombola, seeded.raffle_id) == []


def test_cancel_through_the_admin_api_is_idempotent(client: TestClient, tombola: Tombola, seeded: Seed) -> None:
    url = f"/v1/admin/raffles/{seeded.raffle_id}/cancel"
    assert client.post(url, json={"reason": ""}, headers=ADMIN).json()["error"] == "malformed"
    first = client.post(url, json={"reason": "storm"}, headers=ADMIN)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["draw"]["state"]) == ("cancelled", "CANCELLED")
    entries = tombola.core.audit.size()
    again = client.post(url, json={"reason": "storm again"}, headers=ADMIN)
    assert (again.status_code, again.json()["status"]) == (200, "cancelled")
    assert tombola.core.audit.size() == entries  # nothing changed, nothing logged
    # the core's own route after the service: both agree, still nothing changes
    resp = client.post(f"/core/draw/{seeded.raffle_id}/cancel", json={"reason": "x"}, headers=ADMIN)
    assert (resp.status_code, resp.json()["state"]) == (200, "CANCELLED")
    assert tombola.core.audit.size() == entries


def test_revoke_needs_a_reason_voids_the_unsold_numbers_and_happens_once(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    device.sale(seeded.raffle_id, 3, amount_cents=1500)
    device.sync(client, 1)
    with pytest.raises(InvalidRequest):
        enrollment.revoke_device(tombola, device.device_id, "  ")
    resp = client.post(f"/v1/admin/devices/{device.device_id}/revoke", json={}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", "body.reason")
    resp = client.post(f"/v1/admin/devices/{device.device_id}/revoke", json={"reason": " "}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (422, "invalid_request")
    assert tombola.core.grants(device_id=device.device_id)  # still active: nothing happened

    out = enrollment.revoke_device(tombola, device.device_id, "stolen from the bar")
    assert out["status"] == "revoked" and out["revoked_now"]
    [voided] = out["voided_grants"]
    grant = device.grants[0]
    assert (voided["grant_id"], voided["unsold"]) == (grant.grant_id, grant.last_number - grant.first_number + 1 - 3)
    assert tombola.core.grants(device_id=device.device_id) == []  # no active grant left
    assert audit_types(tombola)[-2:] == ["grant.voided", "device.revoked"]
    # its unsold numbers are never recorded, whoever asks
    from gli_core.api import TicketSale

    late = TicketSale("late", device.device_id, 9, seeded.raffle_id, (grant.last_number,), "0" * 64, 500)
    with pytest.raises(CoreError) as exc:
        tombola.core.record([late])
    assert exc.value.code == "outside_grant"
    # a second revoke changes nothing and logs nothing
    entries = len(audit_types(tombola))
    again = enrollment.revoke_device(tombola, device.device_id, "really stolen")
    assert (again["revoked_now"], again["voided_grants"], again["revoke_reason"]) == (False, [], "stolen from the bar")
    assert len(audit_types(tombola)) == entries
    assert len(tickets_of(tombola, seeded.raffle_id)) == 3


def test_a_revoked_device_no_longer_holds_up_the_draw(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    device.sale(seeded.raffle_id, 1)
    device.sync(client, 1)
    tombola.clock.advance(HOUR_MS)  # type: ignore[attr-defined]
    raffles.close_raffle(tombola, seeded.raffle_id)
    assert [d["device_id"] for d in tombola.core.draw_status(seeded.raffle_id)["blocking_devices"]] == [
        device.device_id
    ]
    enrollment.revoke_device(tombola, device.device_id, "lost")
    assert tombola.core.draw_initiate(seeded.raffle_id)["state"] == "RECONCILED"


def test_an_extension_larger_than_what_is_left_is_refused_with_the_count_left(
    client: TestClient, tombola: Tombola, seeded: Seed
) -> None:
    small = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=seeded.venue_id,
            name="Small",
            price_cents=500,
            number_space=1500,
            sales_close_at_ms=tombola.now_ms() + HOUR_MS,
        ),
    )["id"]
    dev = RawDevice()
    dev.enroll(client, enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"])  # holds 1..1000
    before = tombola.core.grants(raffle_id=small)
    resp = client.post(
        f"/v1/admin/devices/{dev.device_id}/extend",
        json={"raffle_id": small, "numbers": 501, "reason": "busy night"},
        headers=ADMIN,
    )
    assert (resp.status_code, resp.json()["error"], resp.json()["left"]) == (409, "not_enough_numbers", 500)
    assert tombola.core.grants(raffle_id=small) == before  # nothing granted, nothing cut
    grant = enrollment.extend_device(tombola, dev.device_id, small, 500, "busy night")
    assert (grant.first_number, grant.last_number) == (1001, 1500)


def test_a_number_space_too_small_for_the_venues_devices_is_refused_at_creation(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    RawDevice().enroll(client, enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"])
    spec = raffles.RaffleCreate(
        venue_id=seeded.venue_id,
        name="Tiny",
        price_cents=500,
        number_space=1500,
        sales_close_at_ms=tombola.now_ms() + HOUR_MS,
        grant_size=1000,
    )
    with pytest.raises(InvalidRequest) as exc:
        raffles.create_raffle(tombola, spec)
    assert "2 device(s)" in exc.value.detail and "at most 750" in exc.value.detail
    made = raffles.create_raffle(tombola, raffles.RaffleCreate(**{**spec.__dict__, "grant_size": None}))
    assert made["grant_size"] == 750  # not given: sized so that each device gets a whole grant
    with pytest.raises(InvalidRequest) as exc:
        raffles.create_raffle(tombola, raffles.RaffleCreate(**{**spec.__dict__, "number_space": 1, "grant_size": None}))
    assert "at least 2 numbers" in exc.value.detail
