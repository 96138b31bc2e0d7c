"""Each ticket's Merkle leaf hash is stored when it is recorded and the freeze builds the
ticket-set root from the stored hashes; the draw never trusts them: execute recomputes every leaf
from the ticket rows (as the proof and its verifier do) and refuses to draw on any mismatch.

Each test runs on SQLite and on PostgreSQL (where the tickets go in through COPY)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gli_core import merkle
from gli_core.draw import proof as proofs
from gli_core.draw.selection import DrawTicket
from gli_core.draw.verify import verify_proof
from gli_core.errors import CoreError
from server.context import Tombola
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import HOUR_MS, FakeClock, Seed


def sell_sync_close(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock) -> RawDevice:
    """A device sells 41 tickets and voids 5, one online sale of 3; sales close; the device syncs."""
    device = RawDevice()
    device.enroll(client, seeded.code)
    for q in (1, 5, 30, 5):
        device.sale(seeded.raffle_id, q)
    voided = device.sale(seeded.raffle_id, 5)
    device.void(voided)
    device.sync(client, 1)
    tombola.core.generate_tickets(seeded.raffle_id, 3, amount_cents=1500)
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    clock.advance(1000)
    device.sync(client, device.seq + 1)
    return device


Row = tuple[int, str, str, int, str, bytes | None]
"""number, id, sale_id, amount_cents, status, leaf_hash"""


def ticket_rows(tombola: Tombola, raffle_id: str) -> list[Row]:
    with tombola.core.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT number, id, sale_id, amount_cents, status, leaf_hash FROM core_ticket "
                "WHERE raffle_id = :r ORDER BY number"
            ),
            {"r": raffle_id},
        ).all()
    return [(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bytes(r[5])) for r in rows]


def sold_tickets(rows: list[Row]) -> list[DrawTicket]:
    return [DrawTicket(n, i, s, a) for n, i, s, a, status, _ in rows if status == "sold"]


def set_leaf_hash(tombola: Tombola, raffle_id: str, number: int | None, value: bytes | None) -> None:
    where = "raffle_id = :r" + ("" if number is None else " AND number = :n")
    with tombola.core.engine.begin() as conn:
        conn.execute(
            text(f"UPDATE core_ticket SET leaf_hash = :h WHERE {where}"), {"r": raffle_id, "n": number, "h": value}
        )


def test_leaf_hash_encoding() -> None:
    ticket = DrawTicket(42, "0190a1b2-0000-7000-8000-000000000001", "sale-1", 1250)
    assert proofs.ticket_leaf_hash(*ticket) == merkle.leaf_hash(proofs.ticket_leaf(ticket))
    assert proofs.ticket_leaf_hash(0, "t", "s", 0) == merkle.leaf_hash(proofs.ticket_leaf(DrawTicket(0, "t", "s")))
    # The amount is in the leaf.
    assert proofs.ticket_leaf_hash(42, ticket.ticket_id, ticket.sale_id, 1251) != proofs.ticket_leaf_hash(*ticket)
    # No leaf encoding, no stored hash: the draw refuses such a ticket as the proof would.
    assert proofs.ticket_leaf_hash(1, "", "s", 0) is None
    assert proofs.ticket_leaf_hash(1, "t", "\u00e9" * 128, 0) is None  # 256 UTF-8 bytes
    assert proofs.ticket_leaf_hash(1, "t", "\ud800", 0) is None
    assert proofs.ticket_leaf_hash(-1, "t", "s", 0) is None
    assert proofs.ticket_leaf_hash(2**53, "t", "s", 0) is None
    assert proofs.ticket_leaf_hash(1, "t", "s", -1) is None
    assert proofs.ticket_leaf_hash(1, "t", "s", 2**53) is None
    assert proofs.ticket_leaf_hash(1, "t", "s", True) is None


def test_recorded_tickets_carry_their_leaf_hash_and_the_freeze_uses_them(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    sell_sync_close(client, tombola, seeded, clock)
    rows = ticket_rows(tombola, seeded.raffle_id)
    assert len(rows) == 49
    for number, ticket_id, sale_id, amount, _, leaf_hash in rows:
        assert leaf_hash == proofs.ticket_leaf_hash(number, ticket_id, sale_id, amount) and len(leaf_hash) == 32
    frozen = tombola.core.draw_initiate(seeded.raffle_id)
    sold = sold_tickets(rows)
    assert frozen["ticket_count"] == len(sold) == 44
    assert frozen["ticket_root"] == proofs.ticket_root(sold).hex()  # what the verifier recomputes
    tombola.core.draw_execute(seeded.raffle_id)
    verified = verify_proof(tombola.core.draw_proof(seeded.raffle_id))
    assert verified.ticket_count == 44
    # The gross the 50/50 is paid from is re-derived from the tickets' amounts.
    assert verified.gross_sales_cents == sum(t.amount_cents for t in sold) > 0


@pytest.mark.parametrize("when", ["before_freeze", "after_freeze"])
def test_a_tampered_leaf_hash_is_detected_not_used(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, when: str
) -> None:
    """A core_ticket row whose stored leaf hash does not match the ticket stops the draw, before
    any randomness is derived, whether it was altered before or after the freeze."""
    sell_sync_close(client, tombola, seeded, clock)
    rows = ticket_rows(tombola, seeded.raffle_id)
    victim = next(r for r in rows if r[4] == "sold" and r[0] > 10)
    sold = sold_tickets(rows)
    forged = proofs.ticket_leaf_hash(victim[0], victim[1], "another-sale", victim[3])
    if when == "before_freeze":
        set_leaf_hash(tombola, seeded.raffle_id, victim[0], forged)
    frozen = tombola.core.draw_initiate(seeded.raffle_id)
    # The freeze took the stored hashes as they were (it hashes no leaf) ...
    assert (frozen["ticket_root"] == proofs.ticket_root(sold).hex()) is (when == "after_freeze")
    if when == "after_freeze":
        set_leaf_hash(tombola, seeded.raffle_id, victim[0], forged)
    # ... and execute, which recomputes every leaf from the ticket rows, refuses to draw.
    with pytest.raises(CoreError) as exc:
        tombola.core.draw_execute(seeded.raffle_id)
    assert exc.value.code == "ticket_leaf_mismatch"
    assert exc.value.extra["tickets"] == [victim[0]]
    assert tombola.core.draw_status(seeded.raffle_id)["state"] == "RECONCILED"
    with pytest.raises(CoreError) as not_drawn:
        tombola.core.draw_proof(seeded.raffle_id)
    assert not_drawn.value.code == "draw_not_ready"


def test_a_tampered_ticket_row_is_detected(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    """The other way round: the ticket row changed after the freeze, its stored hash did not."""
    sell_sync_close(client, tombola, seeded, clock)
    tombola.core.draw_initiate(seeded.raffle_id)
    number = next(r[0] for r in ticket_rows(tombola, seeded.raffle_id) if r[4] == "sold")
    with tombola.core.engine.begin() as conn:
        conn.execute(
            text("UPDATE core_ticket SET sale_id = 'someone-else' WHERE raffle_id = :r AND number = :n"),
            {"r": seeded.raffle_id, "n": number},
        )
    with pytest.raises(CoreError) as exc:
        tombola.core.draw_execute(seeded.raffle_id)
    assert (exc.value.code, exc.value.extra["tickets"]) == ("ticket_leaf_mismatch", [number])


@pytest.mark.parametrize("delta", [1, -1])
def test_a_changed_ticket_amount_is_detected(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, delta: int
) -> None:
    """A ticket's amount (its share of the gross the 50/50 is paid from) is in its leaf: changing it
    after the freeze is a leaf mismatch, whether or not another ticket's amount keeps the gross."""
    sell_sync_close(client, tombola, seeded, clock)
    tombola.core.draw_initiate(seeded.raffle_id)
    sold = [r for r in ticket_rows(tombola, seeded.raffle_id) if r[4] == "sold"]
    a, b = sold[0], sold[-1]
    with tombola.core.engine.begin() as conn:
        for number, change in ((a[0], delta), (b[0], -delta)):  # the gross stays the same
            conn.execute(
                text("UPDATE core_ticket SET amount_cents = amount_cents + :d WHERE raffle_id = :r AND number = :n"),
                {"r": seeded.raffle_id, "n": number, "d": change},
            )
    with pytest.raises(CoreError) as exc:
        tombola.core.draw_execute(seeded.raffle_id)
    assert (exc.value.code, exc.value.extra["tickets"]) == ("ticket_leaf_mismatch", [a[0], b[0]])
    assert tombola.core.draw_status(seeded.raffle_id)["state"] == "RECONCILED"


def test_tickets_without_a_stored_hash_are_hashed_at_the_freeze(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    """Tickets recorded before migration 0004 have no leaf hash: the freeze computes it."""
    sell_sync_close(client, tombola, seeded, clock)
    rows = ticket_rows(tombola, seeded.raffle_id)
    set_leaf_hash(tombola, seeded.raffle_id, rows[0][0], None)
    set_leaf_hash(tombola, seeded.raffle_id, rows[-1][0], None)
    sold = sold_tickets(rows)
    assert tombola.core.draw_initiate(seeded.raffle_id)["ticket_root"] == proofs.ticket_root(sold).hex()
    tombola.core.draw_execute(seeded.raffle_id)
    assert verify_proof(tombola.core.draw_proof(seeded.raffle_id)).ticket_count == len(sold)
