"""Records arriving after a raffle's ticket set froze for its draw (RECONCILED or later): each
such sale or void is rejected with ``ticket_set_frozen`` through the rejection protocol and
stored as rejected in the device's chain, while the rest of the batch is accepted; the frozen
set never changes, so the draw still runs on exactly the set it froze.

Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gli_core.api import TicketSale
from gli_core.draw.verify import verify_proof
from gli_core.errors import CoreError
from pos_client import ManualClock, PosClient, RetryPolicy
from server.context import Tombola
from server.models import Sale
from server.raffles import service as raffles
from tests.simulators.device import RawDevice
from tests.support.app import HOUR_MS, FakeClock, Seed

SALE = Sale.__table__  # type: ignore[attr-defined]


@pytest.fixture
def second_raffle(tombola: Tombola, seeded: Seed) -> str:
    """Another raffle of the venue, still selling when the first one freezes."""
    raffle = raffles.create_raffle(
        tombola,
        raffles.RaffleCreate(
            venue_id=seeded.venue_id,
            name="Next week",
            price_cents=500,
            number_space=100_000,
            sales_close_at_ms=tombola.now_ms() + 48 * HOUR_MS,
            bundles=((5, 1000), (30, 2000)),
        ),
    )
    return str(raffle["id"])


def freeze(client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, device: RawDevice, last: int) -> None:
    """Close the first raffle, let the device sync records up to ``last`` after close, freeze."""
    clock.advance(HOUR_MS)
    raffles.close_raffle(tombola, seeded.raffle_id)
    clock.advance(1000)
    device.sync(client, 1, last_seq=last)
    assert tombola.core.draw_initiate(seeded.raffle_id)["state"] == "RECONCILED"


def sale_rows(tombola: Tombola, device_id: str) -> dict[int, tuple[str, str, bool]]:
    with tombola.engine.connect() as conn:
        rows = conn.execute(
            select(SALE.c.seq, SALE.c.status, SALE.c.reject_code, SALE.c.voided).where(SALE.c.device_id == device_id)
        ).all()
    return {r.seq: (r.status, r.reject_code, bool(r.voided)) for r in rows}


def statuses(tombola: Tombola, raffle_id: str) -> dict[str, int]:
    return tombola.core.count_tickets(raffle_id)


def test_a_void_after_the_freeze_is_rejected_and_the_rest_accepted(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, second_raffle: str
) -> None:
    device = RawDevice()
    device.enroll(client, seeded.code)
    assert {g.raffle_id for g in device.grants} == {seeded.raffle_id, second_raffle}
    s1 = device.sale(seeded.raffle_id, 5)
    device.sale(seeded.raffle_id, 1)
    device.sync(client, 1)
    before_close = device.anchor_ms
    freeze(client, tombola, seeded, clock, device, device.seq)
    root = tombola.core.draw_status(seeded.raffle_id)["ticket_root"]
    void = device.void(s1, anchor_ms=before_close)  # seq 3, made before close: its raffle is frozen
    other = device.sale(second_raffle, 5)  # seq 4: another raffle, still selling
    resp = device.post(client, device.batch(3))
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert (body["error"], body["seq"], body["sale_id"]) == ("ticket_set_frozen", void.seq, void.sale_id)
    assert statuses(tombola, seeded.raffle_id) == {"sold": 6} and statuses(tombola, second_raffle) == {}
    # The device acknowledges the rejection: the void is stored as rejected, the sale accepted.
    ack = device.sync(client, 3, rejected=[(void.seq, "ticket_set_frozen")])
    assert (ack.acked_seq, ack.applied, ack.head_hash) == (4, 1, other.hash)
    assert [(r.seq, r.sale_id, r.code) for r in ack.rejected] == [(3, void.sale_id, "ticket_set_frozen")]
    rows = sale_rows(tombola, device.device_id)
    assert rows[3] == ("rejected", "ticket_set_frozen", False)
    assert rows[1] == ("accepted", "", False)  # the sale the void named is not voided
    assert rows[4] == ("accepted", "", False)
    assert statuses(tombola, seeded.raffle_id) == {"sold": 6} and statuses(tombola, second_raffle) == {"sold": 5}
    # The frozen set is intact: the draw runs on it.
    tombola.core.draw_execute(seeded.raffle_id)
    proof = verify_proof(tombola.core.draw_proof(seeded.raffle_id))
    assert proof.ticket_count == 6 and proof.ticket_root == root
    again = device.sync(client, 3, rejected=[(void.seq, "ticket_set_frozen")])  # a re-send is a duplicate
    assert (again.acked_seq, again.applied, again.duplicates) == (4, 0, 2)


def test_a_sale_for_a_frozen_raffle_is_rejected_and_the_rest_accepted(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, second_raffle: str
) -> None:
    """The device synced only part of its records after close (enough for the gate); a sale
    made before close arrives after the freeze."""
    device = RawDevice()
    device.enroll(client, seeded.code)
    device.sale(seeded.raffle_id, 5)
    late = device.sale(seeded.raffle_id, 30, elapsed_ms=HOUR_MS - 60_000)  # sold before close
    freeze(client, tombola, seeded, clock, device, 1)
    other = device.sale(second_raffle, 1)
    resp = device.post(client, device.batch(2))
    assert resp.status_code == 409, resp.text
    assert (resp.json()["error"], resp.json()["seq"]) == ("ticket_set_frozen", late.seq)
    ack = device.sync(client, 2, rejected=[(late.seq, "ticket_set_frozen")])
    assert (ack.acked_seq, ack.applied) == (other.seq, 1)
    assert [(r.seq, r.code) for r in ack.rejected] == [(late.seq, "ticket_set_frozen")]
    assert sale_rows(tombola, device.device_id)[late.seq] == ("rejected", "ticket_set_frozen", False)
    assert statuses(tombola, seeded.raffle_id) == {"sold": 5} and statuses(tombola, second_raffle) == {"sold": 1}
    tombola.core.draw_execute(seeded.raffle_id)
    assert verify_proof(tombola.core.draw_proof(seeded.raffle_id)).ticket_count == 5


def test_a_freeze_between_judging_and_recording_is_judged_again(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set froze after the rules ran (the rules saw it open): the core's guard refuses the
    recording, nothing is written, and the batch is judged again instead of failing."""
    device = RawDevice()
    device.enroll(client, seeded.code)
    s1 = device.sale(seeded.raffle_id, 5)
    device.sync(client, 1)
    before_close = device.anchor_ms
    freeze(client, tombola, seeded, clock, device, device.seq)
    void = device.void(s1, anchor_ms=before_close)  # made before close (a void after close is sale_after_close)
    real = tombola.core.frozen_raffles
    calls: list[int] = []

    def stale_once(raffle_ids: object) -> set[str]:
        calls.append(1)
        return set() if len(calls) == 1 else real(raffle_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(tombola.core, "frozen_raffles", stale_once)
    resp = device.post(client, device.batch(2))
    assert (resp.status_code, resp.json()["error"], resp.json()["seq"]) == (409, "ticket_set_frozen", void.seq)
    assert len(calls) == 2
    ack = device.sync(client, 2, rejected=[(void.seq, "ticket_set_frozen")])
    assert [(r.seq, r.code) for r in ack.rejected] == [(void.seq, "ticket_set_frozen")]
    assert statuses(tombola, seeded.raffle_id) == {"sold": 5}
    # Judged stale both times: the core's error reaches the device (nothing written).
    monkeypatch.setattr(tombola.core, "frozen_raffles", lambda _ids: set())
    device.void(s1, anchor_ms=before_close)
    resp = device.post(client, device.batch(3))
    assert (resp.status_code, resp.json()["error"]) == (409, "ticket_set_frozen")
    assert "seq" not in resp.json()
    assert statuses(tombola, seeded.raffle_id) == {"sold": 5}


def test_the_core_refuses_to_void_in_a_frozen_set(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock
) -> None:
    device = RawDevice()
    device.enroll(client, seeded.code)
    s1 = device.sale(seeded.raffle_id, 5)
    device.sync(client, 1)
    freeze(client, tombola, seeded, clock, device, device.seq)
    for sales, voids in (
        ([], [s1.sale_id]),
        ([TicketSale("late", device.device_id, 9, seeded.raffle_id, (999,), "0" * 64)], []),
    ):
        with pytest.raises(CoreError) as exc:
            tombola.core.record(sales, voids)
        assert exc.value.code == "ticket_set_frozen"
    assert statuses(tombola, seeded.raffle_id) == {"sold": 5}


def test_a_pos_device_gets_its_late_sale_rejected_and_syncs_on(
    client: TestClient, tombola: Tombola, seeded: Seed, clock: FakeClock, tmp_path: Path, second_raffle: str
) -> None:
    """The device SDK end to end: it syncs one batch after close, the set freezes, its next sync
    gets ``ticket_set_frozen`` for its remaining sale of that raffle, marks it rejected (the
    operator refunds it) and carries on with the rest."""
    http = httpx.Client(transport=client._transport, base_url="http://testserver")  # type: ignore[attr-defined]
    from server.enrollment import service as enrollment

    code = enrollment.create_enrollment_code(tombola, seeded.venue_id)["code"]
    pos_clock = ManualClock(wall_ms=clock.now, monotonic_ms=10**9)
    retry = RetryPolicy(attempts=2, initial_s=0, max_s=0, jitter_s=0, sleep=lambda _s: None)
    with PosClient(tmp_path / "pos.db", clock=pos_clock, http=http, retry=retry, batch_size=1) as pos:
        pos.enroll(code, "http://testserver", device_name="till")
        first = pos.sell(seeded.raffle_id, 5)
        late = pos.sell(seeded.raffle_id, 1)
        clock.advance(HOUR_MS)
        pos_clock.advance(HOUR_MS)
        raffles.close_raffle(tombola, seeded.raffle_id)
        assert pos.sync(max_batches=1).acked_seq == 1  # one batch of one record: the gate opens
        tombola.core.draw_initiate(seeded.raffle_id)
        pos_clock.advance(1000)
        clock.advance(1000)
        other = pos.sell(second_raffle, 5)
        result = pos.sync()
        assert [(r.seq, r.sale_id, r.code) for r in result.rejections] == [
            (late.seq, late.sale_id, "ticket_set_frozen")
        ]
        assert result.acked_seq == other.seq and result.pending == 0
        status = pos.status()
        assert [(r.sale_id, r.code) for r in status.rejected] == [(late.sale_id, "ticket_set_frozen")]
    assert [t.sale_id for t in tombola.core.tickets(seeded.raffle_id)] == [first.sale_id] * 5
    assert statuses(tombola, second_raffle) == {"sold": 5}
