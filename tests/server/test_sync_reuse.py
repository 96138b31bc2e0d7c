"""What the quick first judging of a batch does not look up, the writes meet: a number or a sale
id on record already. Nothing is then written, the batch is judged again with the lookups, and
the device gets the same answer as if they had been looked up first.

Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.context import Tombola
from server.models import Sale
from tests.simulators.device import RawDevice
from tests.support.app import Seed, tickets_of

SALE = Sale.__table__  # type: ignore[attr-defined]


def sale_rows(app: Tombola) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SALE)).scalar_one())


def test_a_number_recorded_by_an_earlier_batch_is_rejected_as_sold_twice(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    first = device.sale(seeded.raffle_id)
    device.sync(client, 1)
    device.sale(seeded.raffle_id)  # a good one before the bad one: nothing of it may be written
    device.sale(seeded.raffle_id, numbers=[first.numbers[0]])
    before = (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola))
    resp = device.post(client, device.batch(2))
    assert resp.status_code == 409, resp.text
    assert (resp.json()["error"], resp.json()["seq"], resp.json()["number"]) == (
        "ticket_sold_twice",
        3,
        first.numbers[0],
    )
    assert (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola)) == before
    ack = device.sync(client, 2, rejected=[(3, "ticket_sold_twice")])
    assert (ack.acked_seq, ack.applied, [r.code for r in ack.rejected]) == (3, 1, ["ticket_sold_twice"])
    assert sorted(s for _, s in tickets_of(tombola, seeded.raffle_id)).count(first.sale_id) == 1


def test_a_sale_id_reused_within_a_batch_refuses_it(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    first = device.sale(seeded.raffle_id)
    device.sale(seeded.raffle_id, sale_id=first.sale_id)
    resp = device.post(client, device.batch(1))
    assert resp.status_code == 409, resp.text
    assert (resp.json()["error"], resp.json()["seq"], resp.json()["sale_id"]) == ("sale_id_reused", 2, first.sale_id)
    assert tickets_of(tombola, seeded.raffle_id) == [] and sale_rows(tombola) == 0


@pytest.mark.parametrize("earlier", ["accepted", "rejected"])
def test_a_sale_id_the_server_holds_refuses_the_batch_and_the_core_records_nothing(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, earlier: str
) -> None:
    """Without the check, the core would commit the tickets and the business insert then fail on
    the sale's primary key: tickets on record that no sale row accounts for."""
    if earlier == "accepted":
        held = device.sale(seeded.raffle_id)
        device.sync(client, 1)
    else:
        held = device.sale(seeded.raffle_id, numbers=[5000])  # outside the grant: rejected
        device.sync(client, 1, rejected=[(1, "outside_grant")])
    before = (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola))
    device.sale(seeded.raffle_id)
    device.sale(seeded.raffle_id, sale_id=held.sale_id)
    resp = device.post(client, device.batch(2))
    assert resp.status_code == 409, resp.text
    assert (resp.json()["error"], resp.json()["seq"], resp.json()["sale_id"]) == ("sale_id_reused", 3, held.sale_id)
    assert (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola)) == before


def test_a_sale_id_recorded_meanwhile_by_another_batch_is_a_refusal_not_a_500(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the sale-id lookup misses an id that another device's batch writes between
    the careful judging and the insert (here, the lookup sees nothing). The primary key refuses
    the insert on every attempt, the core records nothing, and the answer is 409 sale_id_reused."""
    from server.sync import service as sync_service

    held = device.sale(seeded.raffle_id)
    device.sync(client, 1)
    before = (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola))
    monkeypatch.setattr(sync_service, "_refuse_reused_ids", lambda *a, **k: None)
    device.sale(seeded.raffle_id, sale_id=held.sale_id)
    resp = device.post(client, device.batch(2))
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "sale_id_reused"
    assert (tickets_of(tombola, seeded.raffle_id), sale_rows(tombola)) == before
