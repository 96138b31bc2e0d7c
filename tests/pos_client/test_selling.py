"""Selling offline: numbers, amounts, the chain, and every local refusal with its code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import ManualClock, NotEnrolled, PosClient, SaleRefused, ServerRefused
from sync_protocol.chain import verify_chain
from sync_protocol.codes import ticket_code
from sync_protocol.messages import GENESIS_HASH, SaleRecord
from tests.pos_client.conftest import FAST_RETRY
from tests.pos_client.fake_server import HOUR_MS, FakeServer

MINUTE_MS = 60_000


def _snapshot(pos: PosClient) -> tuple[int, dict[str, int]]:
    status = pos.status()
    return status.last_seq, {r.raffle_id: r.numbers_left for r in status.raffles}


def test_sale_takes_the_lowest_numbers_and_the_price_point(enrolled: PosClient, clock: ManualClock) -> None:
    first = enrolled.sell("R1", 1)
    clock.advance(1000)
    second = enrolled.sell("R1", 5, payment="card", reference="AUTH-42", seller_id="ann")

    assert (first.seq, first.numbers, first.amount_cents, first.currency) == (1, [1], 500, "EUR")
    assert (second.seq, second.numbers, second.amount_cents) == (2, [2, 3, 4, 5, 6], 2000)
    assert second.codes == [ticket_code("R1", n, second.hash) for n in second.numbers]
    records = list(enrolled.records())
    assert [r.sale_id for r in records] == [first.sale_id, second.sale_id]
    assert verify_chain(records, device_id=enrolled.device_id or "", prev_seq=0, prev_hash=GENESIS_HASH) == second.hash
    record = records[1]
    assert isinstance(record, SaleRecord)
    assert record.payment.method == "card" and record.payment.reference == "AUTH-42"
    assert record.seller_id == "ann"
    assert record.elapsed_ms == 1000
    assert record.device_time_ms == clock.wall_ms()
    assert enrolled.status().raffles[0].numbers_left == 94


def test_a_quantity_that_is_no_price_point_sells_as_singles(enrolled: PosClient) -> None:
    """Issue 9: quantity 2 (R1: 1 for 5.00, 3 for 12.00, 5 for 20.00) used to be refused
    unless the caller gave an amount; singles stay on sale at the single price."""
    sale = enrolled.sell("R1", 2)
    assert (sale.numbers, sale.amount_cents, sale.amount) == ([1, 2], 1000, "10.00 EUR")
    assert enrolled.sell("R1", 7).amount_cents == 3500  # 7 x 5.00, not a bundle


@pytest.mark.parametrize("amount", [1500, 777, 1, 0, -1])
def test_an_amount_other_than_the_raffles_price_is_refused(enrolled: PosClient, amount: int) -> None:
    """Issue 9: ``amount_cents`` other than the price sold, and the server then rejected the
    sale at sync (amount_mismatch): money taken, refund owed. Now nothing is written."""
    with pytest.raises(SaleRefused) as info:
        enrolled.sell("R1", 2, amount_cents=amount)
    assert info.value.code == "bad_amount"
    assert "10.00 EUR" in info.value.detail
    assert enrolled.status().last_seq == 0


def test_the_amount_shown_to_the_customer_sells(enrolled: PosClient) -> None:
    assert enrolled.sell("R1", 3, amount_cents=1200).amount_cents == 1200


def test_a_bundles_only_raffle_refuses_other_quantities(
    enrolled: PosClient, server: FakeServer, clock: ManualClock
) -> None:
    server.update_raffle("R1", bundles_only=True)
    enrolled.sync()
    with pytest.raises(SaleRefused) as info:
        enrolled.sell("R1", 2)
    assert info.value.code == "bad_quantity"
    assert "bundles only" in info.value.detail
    assert [enrolled.sell("R1", q).amount_cents for q in (1, 3, 5)] == [500, 1200, 2000]


def test_sale_spans_two_grants(enrolled: PosClient, server: FakeServer) -> None:
    device_id = enrolled.device_id or ""
    server.next_number["R1"] = 1000  # numbers 101..999 went to other devices
    second = server.issue_grant(device_id, "R1", 10)
    assert enrolled.sync().new_grants == [second.grant_id]
    enrolled.sell("R1", 98)

    sale = enrolled.sell("R1", 5)

    assert sale.numbers == [99, 100, 1000, 1001, 1002]
    assert enrolled.status().raffles[0].numbers_left == 7
    enrolled.sync()
    assert [r.status for r in server.records(device_id)] == ["accepted", "accepted"]


def _revoke_device(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.revoke_device(pos.device_id or "")
    with pytest.raises(ServerRefused, match="revoked"):
        pos.sync()


def _exhaust(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    pos.sell("R1", 100)


def _expire_lease(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.update_raffle("R1", sales_close_at_ms=clock.wall_ms() + 24 * HOUR_MS)
    pos.sync()
    clock.advance(8 * HOUR_MS + 1)


def _pass_close_time(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    clock.advance(6 * HOUR_MS)


def _close_raffle(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.update_raffle("R1", status="closed", sales_close_at_ms=clock.wall_ms())  # as a server closes
    pos.sync()


def _cancel_raffle(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.update_raffle("R1", status="cancelled")
    pos.sync()


def _open_later(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.update_raffle("R1", sales_open_at_ms=clock.wall_ms() + HOUR_MS, status="scheduled")
    pos.sync()


def _set_clock_back(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    pos.sell("R1", 1)
    clock.set_wall(clock.wall_ms() - 6 * MINUTE_MS)


def _revoke_grant(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    device = server.devices[pos.device_id or ""]
    server.revoke_grant(device.device_id, device.grants[0].grant_id)
    assert pos.sync().revoked_grants == [device.grants[0].grant_id]


def _nothing(pos: PosClient, server: FakeServer, clock: ManualClock) -> None:
    return None


Setup = Callable[[PosClient, FakeServer, ManualClock], None]

REFUSALS: dict[str, tuple[Setup, dict[str, object], str]] = {
    "revoked device": (_revoke_device, {}, "revoked"),
    "numbers exhausted": (_exhaust, {}, "numbers_exhausted"),
    "more numbers than left": (_nothing, {"quantity": 101}, "numbers_exhausted"),
    "grant revoked": (_revoke_grant, {}, "numbers_exhausted"),
    "lease expired": (_expire_lease, {}, "offline_lease_expired"),
    "close time passed": (_pass_close_time, {}, "raffle_closed"),
    "raffle closed": (_close_raffle, {}, "raffle_closed"),
    "raffle cancelled": (_cancel_raffle, {}, "raffle_closed"),
    "sales not open": (_open_later, {}, "sales_not_open"),
    "clock went backwards": (_set_clock_back, {}, "clock_backwards"),
    "unknown raffle": (_nothing, {"raffle_id": "R9"}, "raffle_not_known"),
    "quantity zero": (_nothing, {"quantity": 0}, "bad_quantity"),
    "quantity too large": (_nothing, {"quantity": 1001, "amount_cents": 1}, "bad_quantity"),
    "negative amount": (_nothing, {"amount_cents": -1}, "bad_amount"),
    "amount not the price": (_nothing, {"amount_cents": 499}, "bad_amount"),
    "unknown payment method": (_nothing, {"payment": "bitcoin"}, "bad_payment"),
    "seller id too long": (_nothing, {"seller_id": "x" * 65}, "bad_input"),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_name_their_code_and_write_nothing(
    case: str, enrolled: PosClient, server: FakeServer, clock: ManualClock
) -> None:
    setup, overrides, code = REFUSALS[case]
    setup(enrolled, server, clock)
    before = _snapshot(enrolled)
    kwargs: dict[str, object] = {"raffle_id": "R1", "quantity": 1, **overrides}

    with pytest.raises(SaleRefused) as info:
        enrolled.sell(**kwargs)  # type: ignore[arg-type]

    assert info.value.code == code
    assert info.value.diagnostics().startswith(f"{code}: ")
    assert _snapshot(enrolled) == before


def test_not_enrolled(pos: PosClient) -> None:
    with pytest.raises(NotEnrolled) as info:
        pos.sell("R1", 1)
    assert info.value.code == "not_enrolled"


def test_clock_back_within_tolerance_still_sells(enrolled: PosClient, clock: ManualClock) -> None:
    enrolled.sell("R1", 1)
    clock.set_wall(clock.wall_ms() - 4 * MINUTE_MS)
    assert enrolled.sell("R1", 1).seq == 2


def test_scheduled_raffle_sells_once_its_open_time_has_come(
    enrolled: PosClient, server: FakeServer, clock: ManualClock
) -> None:
    _open_later(enrolled, server, clock)
    clock.advance(HOUR_MS)
    assert enrolled.sell("R1", 1).numbers == [1]


def test_sync_renews_the_lease(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> None:
    _expire_lease(enrolled, server, clock)
    with pytest.raises(SaleRefused, match="lease"):
        enrolled.sell("R1", 1)
    enrolled.sync()
    assert enrolled.sell("R1", 1).numbers == [1]


def test_refusal_then_sale_keeps_the_chain_gapless(enrolled: PosClient) -> None:
    enrolled.sell("R1", 1)
    with pytest.raises(SaleRefused):
        enrolled.sell("R1", 1, amount_cents=1)
    assert enrolled.sell("R1", 1).seq == 2


def test_a_second_client_on_the_same_file_continues_the_chain(
    enrolled: PosClient, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    other = PosClient(db_path, clock=clock, http=http, retry=FAST_RETRY)
    try:
        a = enrolled.sell("R1", 1)
        b = other.sell("R1", 1)
        c = enrolled.sell("R1", 1)
    finally:
        other.close()
    assert [(s.seq, s.numbers) for s in (a, b, c)] == [(1, [1]), (2, [2]), (3, [3])]


def test_selling_while_iterating_records(enrolled: PosClient) -> None:
    enrolled.sell("R1", 1)
    seen = []
    for record in enrolled.records():
        seen.append(record.seq)
        if record.seq == 1:
            enrolled.sell("R1", 1)  # no transaction is held across the iteration
    assert seen == [1, 2]
