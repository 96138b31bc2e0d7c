"""The reconciliation report counts what the server holds: every rejected record, sale or void."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.context import Tombola
from server.reconcile import service as reconcile
from tests.simulators.device import RawDevice
from tests.support.app import Seed


def test_rejected_count_is_every_rejected_record_a_void_included(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    good = device.sale(seeded.raffle_id, 1)
    device.sale(seeded.raffle_id, numbers=[5000])  # seq 2: outside the device's grant
    device.void(good.model_copy(update={"sale_id": "never-sold"}))  # seq 3: voids a sale that does not exist
    ack = device.sync(client, 1, rejected=[(2, "outside_grant"), (3, "unknown_sale")])
    assert [(r.seq, r.code) for r in ack.rejected] == [(2, "outside_grant"), (3, "unknown_sale")]

    rep = reconcile.report(tombola, seeded.raffle_id)
    (dev,) = rep["devices"]
    assert dev["rejected"] == 2  # the rejected void counts too
    assert dev["sold"] == 1 and rep["gross_sales_cents"] == 500
