"""A rejected record's numbers are spent, on the server as on the device (issue 9, section 2).

Seen: after a rejected 1,000-ticket sale the device had no numbers left (``numbers_exhausted``)
but a sync brought no top-up, because the server counted only recorded tickets as used."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.simulators.device import RawDevice
from tests.support.app import Seed


def test_a_rejected_sale_spends_its_numbers_and_the_device_gets_a_top_up(
    client: TestClient, seeded: Seed, device: RawDevice
) -> None:
    [grant] = device.grants
    device.sale(seeded.raffle_id, grant.size, amount_cents=1)  # every number of the grant, wrong price
    resp = device.post(client, device.batch(1))
    assert resp.json()["error"] == "amount_mismatch"
    ack = device.sync(client, 1, rejected=[(1, "amount_mismatch")])
    assert [r.code for r in ack.rejected] == ["amount_mismatch"]
    assert len(ack.grants) == 2, "the grant is used up: a top-up comes with the ack"
    topup = next(g for g in ack.grants if g.grant_id != grant.grant_id)
    device.sale(seeded.raffle_id, 1)
    assert device.free_numbers(seeded.raffle_id, 1)[0] > topup.first_number  # sells from the top-up
    assert device.sync(client, 2).applied == 1


def test_rejected_numbers_outside_the_grants_are_not_counted(
    client: TestClient, seeded: Seed, device: RawDevice
) -> None:
    """Only numbers inside the device's active grants count: a sale of numbers it never held
    (outside_grant) does not use up its grant."""
    [grant] = device.grants
    device.sale(seeded.raffle_id, numbers=list(range(grant.last_number + 1, grant.last_number + 1001)), amount_cents=1)
    code = device.post(client, device.batch(1)).json()["error"]
    ack = device.sync(client, 1, rejected=[(1, code)])
    assert [g.grant_id for g in ack.grants] == [grant.grant_id]
