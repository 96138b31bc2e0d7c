"""The certified core defends itself: ``Core.record`` refuses, inside its own transaction, what
the server's rules would refuse but a caller asks it to record anyway.

Each test calls the core directly (``gli_core.api.Core``), checks the error's code, and checks
that nothing was written: no ticket, no audit entry. Each runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from gli_core.api import Core, TicketSale
from gli_core.errors import CoreError
from server.context import Tombola
from server.raffles import service as raffles
from tests.support.app import HOUR_MS, FakeClock, Seed

DEVICE = "dv-GUARDED001"
OTHER = "dv-GUARDED002"


def sale(
    sale_id: str, numbers: tuple[int, ...], *, device: str = DEVICE, at: int | None = None, raffle: str
) -> TicketSale:
    return TicketSale(sale_id, device, 1, raffle, numbers, "0" * 64, 500 * len(numbers), sold_at_ms=at)


def refused(core: Core, raffle_id: str, sales: list[TicketSale], code: str) -> CoreError:
    """Record ``sales``; assert the core refuses with ``code`` and writes nothing."""
    tickets, entries = core.count_tickets(raffle_id), core.audit.size()
    with pytest.raises(CoreError) as exc:
        core.record(sales)
    assert exc.value.code == code, exc.value.to_dict()
    assert "seq" not in exc.value.extra  # not a record's rejection: the device's protocol never sees one
    assert core.count_tickets(raffle_id) == tickets
    assert core.audit.size() == entries
    return exc.value


@pytest.fixture
def granted(tombola: Tombola, seeded: Seed) -> tuple[int, int]:
    """The first and last number of a grant of the seeded raffle to ``DEVICE``."""
    grant = tombola.core.issue_grant(seeded.raffle_id, DEVICE, numbers=100)
    return grant.first_number, grant.last_number


def test_a_cancelled_raffle_records_nothing(tombola: Tombola, seeded: Seed, granted: tuple[int, int]) -> None:
    first, _ = granted
    tombola.core.record([sale("before", (first,), raffle=seeded.raffle_id, at=tombola.now_ms())])
    tombola.core.draw_cancel(seeded.raffle_id, "venue flooded")  # the core's own cancel route
    error = refused(
        tombola.core, seeded.raffle_id, [sale("after", (first + 1,), raffle=seeded.raffle_id)], "sale_after_close"
    )
    assert error.extra["sale_id"] == "after"
    assert tombola.core.count_tickets(seeded.raffle_id) == {"sold": 1}


def test_a_sale_made_after_close_is_refused_one_made_before_is_recorded(
    tombola: Tombola, seeded: Seed, granted: tuple[int, int], clock: FakeClock
) -> None:
    first, _ = granted
    made_before = tombola.now_ms()
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    closed_at = tombola.core.raffle(seeded.raffle_id).sales_close_at_ms
    refused(
        tombola.core,
        seeded.raffle_id,
        [sale("late", (first,), raffle=seeded.raffle_id, at=closed_at)],
        "sale_after_close",
    )
    # a sale of before the close, synced after it: what reconciliation is for
    result = tombola.core.record([sale("early", (first,), raffle=seeded.raffle_id, at=made_before)])
    assert result.recorded_tickets == 1


def test_a_sale_before_the_opening_is_refused(tombola: Tombola, seeded: Seed, granted: tuple[int, int]) -> None:
    first, _ = granted
    opens = tombola.core.raffle(seeded.raffle_id).sales_open_at_ms
    refused(
        tombola.core,
        seeded.raffle_id,
        [sale("early", (first,), raffle=seeded.raffle_id, at=opens - 1)],
        "sale_before_open",
    )


def test_a_drawn_raffle_records_nothing(
    tombola: Tombola, seeded: Seed, granted: tuple[int, int], clock: FakeClock
) -> None:
    first, _ = granted
    made = tombola.now_ms()
    tombola.core.record([sale("s1", (first,), raffle=seeded.raffle_id, at=made)])
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    tombola.core.void_remainder(DEVICE, seeded.raffle_id, "test device gone")
    tombola.core.draw_initiate(seeded.raffle_id)
    tombola.core.draw_execute(seeded.raffle_id)
    refused(
        tombola.core,
        seeded.raffle_id,
        [sale("s2", (first + 1,), raffle=seeded.raffle_id, at=made)],
        "ticket_set_frozen",
    )


def test_numbers_outside_the_number_space_are_refused(tombola: Tombola, seeded: Seed, granted: tuple[int, int]) -> None:
    space = tombola.core.raffle(seeded.raffle_id).number_space
    for number in (0, -3, space + 1):
        error = refused(
            tombola.core, seeded.raffle_id, [sale("s", (number,), raffle=seeded.raffle_id)], "number_outside_space"
        )
        assert error.extra["number"] == number


def test_numbers_outside_the_devices_grants_are_refused(
    tombola: Tombola, seeded: Seed, granted: tuple[int, int]
) -> None:
    first, last = granted
    raffle = seeded.raffle_id
    theirs = tombola.core.issue_grant(raffle, OTHER, numbers=10)
    cases = {
        "another device's number": [sale("a", (theirs.first_number,), raffle=raffle)],
        "a number granted to no one": [sale("b", (theirs.last_number + 500,), raffle=raffle)],
        "one number of the sale beyond the grant": [sale("c", (last, last + 1), raffle=raffle)],
        "the online channel's grant is not the device's": [sale("d", (first,), device="online", raffle=raffle)],
    }
    for name, sales in cases.items():
        error = refused(tombola.core, raffle, sales, "outside_grant")
        assert error.extra["sale_id"] == sales[0].sale_id, name


def test_a_voided_grant_records_nothing(tombola: Tombola, seeded: Seed, granted: tuple[int, int]) -> None:
    first, _ = granted
    grant_ids = [g.grant.grant_id for g in tombola.core.grants(device_id=DEVICE)]
    tombola.core.void_grants(grant_ids, "device lost")
    refused(tombola.core, seeded.raffle_id, [sale("s", (first,), raffle=seeded.raffle_id)], "outside_grant")


def test_one_bad_sale_refuses_the_whole_recording(tombola: Tombola, seeded: Seed, granted: tuple[int, int]) -> None:
    first, _ = granted
    good = sale("good", (first,), raffle=seeded.raffle_id)
    bad = sale("bad", (first + 1,), device=OTHER, raffle=seeded.raffle_id)
    refused(tombola.core, seeded.raffle_id, [good, bad], "outside_grant")
    assert tombola.core.record([good]).recorded_tickets == 1


def test_a_sale_on_record_is_still_a_harmless_duplicate_after_close(
    tombola: Tombola, seeded: Seed, granted: tuple[int, int], clock: FakeClock
) -> None:
    """Recording stays idempotent: the rules apply to sales not on record yet."""
    first, _ = granted
    made = tombola.now_ms()
    once = sale("once", (first,), raffle=seeded.raffle_id, at=made)
    tombola.core.record([once])
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    assert tombola.core.record([once]).duplicate_sales == 1


def test_online_sales_get_every_number_they_pay_for(tombola: Tombola, seeded: Seed) -> None:
    """An online sale of more numbers than are left is refused with the count left, not cut."""
    small = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=seeded.venue_id,
            name="Small",
            price_cents=500,
            number_space=10,
            sales_close_at_ms=tombola.now_ms() + HOUR_MS,
            grant_size=10,
        ),
    )["id"]
    assert len(tombola.core.generate_tickets(small, 8)) == 8
    with pytest.raises(CoreError) as exc:
        tombola.core.generate_tickets(small, 3)
    assert (exc.value.code, exc.value.extra["left"]) == ("not_enough_numbers", 2)
    assert tombola.core.count_tickets(small) == {"sold": 8}
