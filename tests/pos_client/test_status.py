"""Status: pending records, lease left, numbers per raffle, alerts."""

from __future__ import annotations

from pos_client import ManualClock, PosClient
from tests.pos_client.fake_server import HOUR_MS, FakeServer


def _codes(pos: PosClient) -> list[str]:
    return [alert.split(":")[0] for alert in pos.status().alerts]


def test_status_of_a_fresh_device(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> None:
    status = enrolled.status()
    assert status.device_id == enrolled.device_id
    assert (status.pending, status.acked_seq, status.last_seq, status.lease_left_s) == (0, 0, 0, 8 * 3600)
    assert status.device_status == "active"
    assert status.server_time_ms == clock.wall_ms()
    [raffle] = status.raffles
    assert (raffle.raffle_id, raffle.numbers_granted, raffle.numbers_used, raffle.numbers_left) == ("R1", 100, 0, 100)
    assert raffle.sales_close_at_ms == server.raffles["R1"].sales_close_at_ms
    assert status.alerts == []


def test_pending_counts_unacknowledged_records(enrolled: PosClient) -> None:
    sale = enrolled.sell("R1", 1)
    enrolled.void(sale.sale_id, "oops")
    assert enrolled.status().pending == 2
    enrolled.sync()
    enrolled.sell("R1", 1)
    status = enrolled.status()
    assert (status.pending, status.acked_seq, status.last_seq) == (1, 2, 3)


def test_numbers_80pct_used(enrolled: PosClient) -> None:
    enrolled.sell("R1", 79)
    assert "numbers_80pct_used" not in _codes(enrolled)
    enrolled.sell("R1", 1)
    assert "numbers_80pct_used" in _codes(enrolled)
    assert enrolled.status().raffles[0].numbers_left == 20


def test_lease_alerts(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> None:
    server.update_raffle("R1", sales_close_at_ms=clock.wall_ms() + 48 * HOUR_MS)
    enrolled.sync()
    clock.advance(7 * HOUR_MS)
    assert _codes(enrolled) == []
    clock.advance(1)
    assert _codes(enrolled) == ["lease_under_1h"]
    assert enrolled.status().lease_left_s == 3599
    clock.advance(HOUR_MS)
    assert _codes(enrolled) == ["offline_lease_expired"]
    assert enrolled.status().lease_left_s == 0


def test_sales_closing_within_the_hour(enrolled: PosClient, clock: ManualClock) -> None:
    clock.advance(5 * HOUR_MS - 1)
    assert "sales_closing" not in _codes(enrolled)
    clock.advance(1)
    assert "sales_closing" in _codes(enrolled)
    clock.advance(HOUR_MS)  # closed: no longer "closing"
    assert "sales_closing" not in _codes(enrolled)


def test_status_to_dict_has_stable_keys(enrolled: PosClient) -> None:
    data = enrolled.status().to_dict()
    assert {"device_id", "pending", "raffles", "alerts", "lease_left_s", "rejected", "last_sync_ms"} <= set(data)
    assert set(data["raffles"][0]) >= {"raffle_id", "numbers_left", "numbers_used", "numbers_granted"}


def test_status_before_enrollment(pos: PosClient) -> None:
    status = pos.status()
    assert status.device_id is None
    assert _codes(pos) == ["not_enrolled"]
