"""Voids: a record in the chain that cancels a sale; refusals; numbers are not reused."""

from __future__ import annotations

import pytest

from pos_client import ManualClock, PosClient, SaleRefused
from sync_protocol.messages import VoidRecord
from tests.pos_client.fake_server import HOUR_MS, FakeServer


def test_void_appends_a_record_naming_the_sale(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 3)
    void = enrolled.void(sale.sale_id, "customer changed their mind", seller_id="bob")

    assert (void.seq, void.voids, void.raffle_id) == (2, sale.sale_id, "R1")
    record = list(enrolled.records())[-1]
    assert isinstance(record, VoidRecord)
    assert (record.voids, record.reason, record.seller_id, record.prev_hash) == (
        sale.sale_id,
        "customer changed their mind",
        "bob",
        sale.hash,
    )


def test_voided_numbers_are_not_sold_again(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 3)
    enrolled.void(sale.sale_id, "wrong raffle")
    assert enrolled.sell("R1", 1).numbers == [4]
    assert enrolled.status().raffles[0].numbers_used == 4


def test_void_is_synced_and_accepted(enrolled: PosClient, server: FakeServer) -> None:
    sale = enrolled.sell("R1", 1)
    enrolled.void(sale.sale_id, "test")
    enrolled.sync()
    log = server.records(enrolled.device_id or "")
    assert [(r.record.kind, r.status) for r in log] == [("sale", "accepted"), ("void", "accepted")]


@pytest.mark.parametrize(
    ("target", "code"),
    [("unknown", "sale_not_found"), ("voided", "already_voided"), ("void record", "sale_not_found")],
)
def test_void_refusals(enrolled: PosClient, target: str, code: str) -> None:
    sale = enrolled.sell("R1", 1)
    first_void = enrolled.void(sale.sale_id, "first")
    sale_id = {"unknown": "no-such-sale", "voided": sale.sale_id, "void record": first_void.void_id}[target]
    with pytest.raises(SaleRefused) as info:
        enrolled.void(sale_id, "again")
    assert info.value.code == code
    assert enrolled.status().last_seq == 2


def test_void_needs_a_reason(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 1)
    with pytest.raises(SaleRefused) as info:
        enrolled.void(sale.sale_id, "   ")
    assert info.value.code == "bad_input"


def test_void_after_close_is_refused(enrolled: PosClient, clock: ManualClock) -> None:
    sale = enrolled.sell("R1", 1)
    clock.advance(6 * HOUR_MS)
    with pytest.raises(SaleRefused) as info:
        enrolled.void(sale.sale_id, "too late")
    assert info.value.code == "raffle_closed"


def test_a_rejected_sale_cannot_be_voided(enrolled: PosClient, server: FakeServer) -> None:
    sale = enrolled.sell("R1", 1)
    server.reject(1, "sale_after_close")
    enrolled.sync()
    with pytest.raises(SaleRefused) as info:
        enrolled.void(sale.sale_id, "refund")
    assert info.value.code == "already_rejected"
