"""No client input can wedge a device or give a 500 (issue 9, section 2).

Every member of a request or record is bounded to fit its column, so a value the database could
not store is ``malformed`` (422) on SQLite and PostgreSQL alike, nothing is written, and the device
syncs on. Each test runs on both backends (``db_backend``).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from sync_protocol.messages import SaleRecord, VoidRecord
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed, tickets_of

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _tamper(device: RawDevice, **changes: Any) -> SaleRecord | VoidRecord:
    """Replace the device's last record by a copy with ``changes`` (unvalidated, as an outside
    implementation could sign it), sealed and chained like any record."""
    last = device.records.pop()
    bad: SaleRecord | VoidRecord = last.model_copy(update=changes).sealed()
    device.records.append(bad)
    device.head = bad.hash
    return bad


def _forget_last(device: RawDevice) -> None:
    """The device drops its last record (never sent successfully) and goes on from the one before."""
    device.records.pop()
    device.seq = device.records[-1].seq if device.records else 0
    device.head = device.records[-1].hash if device.records else "0" * 64


def test_a_sale_amount_beyond_its_column_is_malformed_and_the_device_syncs_on(
    client: TestClient, tombola: Any, seeded: Seed, device: RawDevice
) -> None:
    """Seen on PostgreSQL: amount_cents 3,000,000,000 was refused as amount_mismatch; once the device
    acknowledged that rejection, storing the rejected record overflowed the INTEGER column and
    every later sync answered 500. Now the record is malformed: never stored, on either backend."""
    device.sale(seeded.raffle_id, 1)
    _tamper(device, amount_cents=3_000_000_000)
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
    assert (resp.json()["field"], resp.json()["seq"]) == ("sale.amount_cents", 1)
    # What the old device did next: acknowledge a rejection. Still refused, never a 500.
    resp = device.post(client, device.batch(1, rejected=[(1, "amount_mismatch")]))
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
    _forget_last(device)
    good = device.sale(seeded.raffle_id, 1)
    ack = device.sync(client, 1)
    assert (ack.acked_seq, ack.applied, ack.rejected) == (1, 1, [])
    assert tickets_of(tombola, seeded.raffle_id) == [(good.numbers[0], good.sale_id)]


#: (what, changes of a sale, the member named): each would have been a rejected record whose row
#: cannot be stored on PostgreSQL (INTEGER overflow, VARCHAR(n) overflow, NUL in text)
SALE_CASES = [
    ("number beyond INTEGER", {"numbers": [2**31]}, "sale.numbers.0"),
    ("raffle id beyond its column", {"raffle_id": "r" * 65}, "sale.raffle_id"),
    ("NUL in the seller id", {"seller_id": "a\x00b"}, "sale.seller_id"),
    ("currency that upper-cases longer", {"currency": "ßßß"}, "sale.currency"),
]


@pytest.mark.parametrize(("what", "changes", "field"), SALE_CASES, ids=[c[0] for c in SALE_CASES])
def test_a_record_value_that_cannot_be_stored_is_malformed(
    client: TestClient, seeded: Seed, device: RawDevice, what: str, changes: dict[str, Any], field: str
) -> None:
    device.sale(seeded.raffle_id, 1)
    _tamper(device, **changes)
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"], resp.json().get("field")) == (422, "malformed", field), resp.text
    _forget_last(device)
    device.sale(seeded.raffle_id, 1)
    assert device.sync(client, 1).applied == 1


def test_a_void_reason_with_nul_is_malformed(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    sale = device.sale(seeded.raffle_id, 1)
    device.void(sale)
    _tamper(device, reason="oops\x00")
    resp = device.post(client, device.batch(1))
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", "void.reason")


def _raffle_body(seeded: Seed, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "venue_id": seeded.venue_id,
        "name": "Bounds 50/50",
        "price_cents": 500,
        "numbers": 1000,
        "closes_at_ms": 4_000_000_000_000,
    }
    return {**body, **changes}


ADMIN_CASES = [
    ("currency not ISO 4217", {"currency": "EURO"}, "body.currency"),
    ("currency lower case", {"currency": "eur"}, "body.currency"),
    ("number space beyond INTEGER", {"numbers": 3_000_000_000}, "body.numbers"),
    ("price beyond INTEGER", {"price_cents": 2**31}, "body.price_cents"),
    ("close beyond I-JSON", {"closes_at_ms": 2**63}, "body.closes_at_ms"),
    ("NUL in the name", {"name": "a\x00"}, "body.name"),
    ("bundle beyond a sale", {"bundles": [[5000, 100]]}, "body.bundles.0.0"),
]


@pytest.mark.parametrize(("what", "changes", "field"), ADMIN_CASES, ids=[c[0] for c in ADMIN_CASES])
def test_raffle_creation_refuses_values_beyond_their_columns(
    client: TestClient, seeded: Seed, what: str, changes: dict[str, Any], field: str
) -> None:
    """Seen: "currency": "EURO" or numbers 3,000,000,000 gave 500 on PostgreSQL, 201 on SQLite."""
    resp = client.post("/v1/admin/raffles", json=_raffle_body(seeded, **changes), headers=ADMIN)
    assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (422, "malformed", field), resp.text


def test_a_revoke_reason_beyond_its_column_is_malformed(client: TestClient, device: RawDevice) -> None:
    resp = client.post(f"/v1/admin/devices/{device.device_id}/revoke", json={"reason": "x" * 501}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
    ack = device.sync(client, 1)  # not revoked: nothing was written
    assert ack.device_status == "active"


def test_a_nul_in_a_url_id_is_malformed(client: TestClient, seeded: Seed) -> None:
    resp = client.post("/v1/admin/raffles/rf-%00/close", headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text
    resp = client.get("/v1/admin/raffles", params={"venue_id": "v\x00"}, headers=ADMIN)
    assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), resp.text


def test_openapi_shows_the_bounds(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    raffle = schemas["RaffleCreateBody"]["properties"]
    assert raffle["numbers"]["maximum"] == 2**31 - 2
    assert raffle["price_cents"]["maximum"] == 2**31 - 1
    assert raffle["currency"]["pattern"] == "^[A-Z]{3}$"
    assert raffle["closes_at_ms"]["maximum"] == 2**53 - 1
    assert schemas["RevokeBody"]["properties"]["reason"]["maxLength"] == 500


def test_bounded_values_at_the_limit_are_accepted(client: TestClient, seeded: Seed, device: RawDevice) -> None:
    """The bounds are the columns' limits, not narrower: the largest values still work."""
    resp = client.post(
        "/v1/admin/raffles",
        json=_raffle_body(seeded, numbers=2**31 - 2, price_cents=2**31 - 1, name="n" * 200, closes_at_ms=2**53 - 1),
        headers=ADMIN,
    )
    assert resp.status_code == 201, resp.text
    device.sale(seeded.raffle_id, 1)
    _tamper(device, seller_id="s" * 64, amount_cents=500)
    assert device.sync(client, 1).applied == 1
