"""Time: anchors, elapsed time on the monotonic clock within a boot, on the wall clock across a
reboot, the lease, and a wall clock that goes backwards."""

from __future__ import annotations

import pytest

from pos_client import ClockBackwards, LeaseExpired, ManualClock, PosClient, SystemClock
from pos_client.clock import Anchor, Reading
from sync_protocol.messages import SaleRecord
from tests.pos_client.fake_server import HOUR_MS, FakeServer

MINUTE_MS = 60_000


@pytest.fixture
def long_raffle(server: FakeServer, clock: ManualClock) -> None:
    """R1 closes in two days, so the lease is what limits selling."""
    server.update_raffle("R1", sales_close_at_ms=clock.wall_ms() + 48 * HOUR_MS)


def _last_record(pos: PosClient) -> SaleRecord:
    record = list(pos.records())[-1]
    assert isinstance(record, SaleRecord)
    return record


def test_records_carry_the_anchor_and_the_monotonic_elapsed_time(enrolled: PosClient, clock: ManualClock) -> None:
    anchor_ms = clock.wall_ms()  # the fake server's clock is the device's wall clock
    clock.advance(90_000)
    clock.set_wall(clock.wall_ms() + 3 * HOUR_MS)  # someone sets the wall clock: elapsed time ignores it
    enrolled.sell("R1", 1)
    record = _last_record(enrolled)
    assert (record.anchor_ms, record.elapsed_ms) == (anchor_ms, 90_000)
    assert record.device_time_ms == clock.wall_ms()


@pytest.mark.usefixtures("long_raffle")
def test_wall_clock_set_forward_does_not_shorten_the_lease(enrolled: PosClient, clock: ManualClock) -> None:
    clock.set_wall(clock.wall_ms() + 10 * HOUR_MS)
    assert enrolled.sell("R1", 1).numbers == [1]


@pytest.mark.usefixtures("long_raffle")
def test_lease_ends_after_lease_s_of_monotonic_time(enrolled: PosClient, clock: ManualClock) -> None:
    clock.advance(8 * HOUR_MS)
    enrolled.sell("R1", 1)  # exactly at the lease: still allowed
    assert enrolled.status().lease_left_s == 0
    clock.advance(1)
    with pytest.raises(LeaseExpired) as info:
        enrolled.sell("R1", 1)
    assert info.value.code == "offline_lease_expired"


@pytest.mark.usefixtures("long_raffle")
def test_after_a_reboot_elapsed_time_is_measured_on_the_wall_clock(enrolled: PosClient, clock: ManualClock) -> None:
    clock.advance(HOUR_MS)
    clock.reboot("boot-2", monotonic_ms=5)
    clock.advance(30 * MINUTE_MS)  # the wall clock keeps counting across the reboot
    enrolled.sell("R1", 1)
    assert _last_record(enrolled).elapsed_ms == 90 * MINUTE_MS

    clock.reboot("boot-3", monotonic_ms=0)
    clock.set_wall(clock.wall_ms() + 7 * HOUR_MS)
    with pytest.raises(LeaseExpired):
        enrolled.sell("R1", 1)


@pytest.mark.usefixtures("long_raffle")
def test_a_reboot_with_the_wall_clock_set_back_is_clock_backwards(enrolled: PosClient, clock: ManualClock) -> None:
    clock.reboot("boot-2")
    clock.set_wall(clock.wall_ms() - 2 * HOUR_MS)
    with pytest.raises(ClockBackwards):
        enrolled.sell("R1", 1)


def test_clock_tolerance_is_configurable(enrolled: PosClient, clock: ManualClock) -> None:
    enrolled.sell("R1", 1)
    enrolled.clock_tolerance_ms = 1000
    clock.set_wall(clock.wall_ms() - 2000)
    with pytest.raises(ClockBackwards) as info:
        enrolled.sell("R1", 1)
    assert info.value.extra["behind_ms"] == 2000


def test_anchor_elapsed_is_never_negative() -> None:
    anchor = Anchor(server_time_ms=1000, wall_ms=5000, monotonic_ms=100, boot_id="a")
    assert anchor.elapsed_ms(Reading(wall_ms=4000, monotonic_ms=50, boot_id="b")) == 0
    assert anchor.raw_elapsed_ms(Reading(wall_ms=4000, monotonic_ms=50, boot_id="b")) == -1000
    assert anchor.server_now_ms(Reading(wall_ms=0, monotonic_ms=350, boot_id="a")) == 1250


def test_system_clock_reads_plausible_values() -> None:
    clock = SystemClock()
    first = clock.monotonic_ms()
    assert clock.wall_ms() > 1_600_000_000_000
    assert clock.monotonic_ms() >= first
    assert clock.boot_id() == SystemClock().boot_id() != ""
