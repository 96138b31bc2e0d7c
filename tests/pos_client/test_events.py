"""Device events in the SDK: chained and durable, recorded with what they record, sent with sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pos_client import BadInput, ManualClock, PosClient
from pos_client import events as ev
from pos_client.errors import ClockBackwards, NetworkError, ServerError
from sync_protocol.chain import verify_event_chain
from sync_protocol.messages import GENESIS_HASH, EventRecord
from tests.pos_client.conftest import FAST_RETRY, reopen
from tests.pos_client.fake_server import FakeServer


def _chain(pos: PosClient) -> list[EventRecord]:
    with pos.store.read() as conn:
        rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
    return [EventRecord.model_validate_json(row[0]) for row in rows]


def test_events_form_a_verifiable_chain_of_their_own(enrolled: PosClient) -> None:
    enrolled.record_event("app.start", {"version": "1.2.3"})
    sale = enrolled.sell("R1", 1)
    enrolled.record_event("seller.pin_failed", {"attempt": 2, "locked": False}, seller_id="s-1")
    enrolled.void(sale.sale_id, "wrong raffle")
    chain = _chain(enrolled)
    assert [(e.seq, e.type) for e in chain] == [(1, "app.start"), (2, "seller.pin_failed"), (3, "sale.voided")]
    assert verify_event_chain(chain, device_id=enrolled.device_id or "", prev_seq=0, prev_hash=GENESIS_HASH) == (
        chain[-1].hash
    )
    assert chain[1].seller_id == "s-1" and chain[1].detail == {"attempt": 2, "locked": False}
    assert [r.seq for r in enrolled.records()] == [1, 2]  # the sale chain is untouched by events


def test_an_event_is_durable_and_survives_a_restart(
    enrolled: PosClient, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    enrolled.record_event("printer.error", {"reason": "paper out"})
    again = reopen(enrolled, db_path, clock, http)
    try:
        assert [(e.type, e.detail) for e in again.events()] == [("printer.error", {"reason": "paper out"})]
    finally:
        again.close()


def test_nothing_is_recorded_before_enrollment(pos: PosClient) -> None:
    assert pos.record_event("app.start") is None
    assert pos.events() == []


@pytest.mark.parametrize(
    ("type_", "detail"),
    [
        ("app.exploded", None),
        ("app.start", {f"k{i}": i for i in range(9)}),
        ("app.start", {"Bad Key": 1}),
        ("app.start", {"nested": {"a": 1}}),
        ("app.start", {"big": 2**60}),
    ],
)
def test_a_bad_event_is_refused_and_nothing_is_written(enrolled: PosClient, type_: str, detail: object) -> None:
    with pytest.raises(BadInput):
        enrolled.record_event(type_, detail)  # type: ignore[arg-type]
    assert enrolled.events() == []


def test_long_text_is_cut_to_the_protocol_bound(enrolled: PosClient) -> None:
    event = enrolled.record_event("printer.error", {"reason": "x" * 500, "none": None})
    assert event is not None and event.detail == {"reason": "x" * 200}


def test_a_void_and_its_event_commit_together(enrolled: PosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sale = enrolled.sell("R1", 1)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone (simulated) while recording the event")

    monkeypatch.setattr(ev, "record", broken)
    with pytest.raises(OSError):
        enrolled.void(sale.sale_id, "oops")
    monkeypatch.undo()
    assert [r.seq for r in enrolled.records()] == [1]  # no void without its event
    assert enrolled.events() == []

    void = enrolled.void(sale.sale_id, "oops", seller_id="bob")
    (event,) = enrolled.events()
    assert (event.type, event.seller_id) == ("sale.voided", "bob")
    assert event.detail == {"sale_id": sale.sale_id, "void_id": void.void_id, "raffle_id": "R1", "reason": "oops"}


def test_a_refused_void_records_no_void_event(enrolled: PosClient) -> None:
    with pytest.raises(Exception, match="no sale"):
        enrolled.void("no-such-sale", "x")
    assert enrolled.events() == []


def test_clock_backwards_records_a_clock_jump_and_the_refusal_stands(enrolled: PosClient, clock: ManualClock) -> None:
    enrolled.sell("R1", 1)
    clock.set_wall(clock.wall_ms() - 3_600_000)
    with pytest.raises(ClockBackwards):
        enrolled.sell("R1", 1, seller_id="amy")
    (event,) = enrolled.events()
    assert (event.type, event.seller_id, event.detail["source"]) == ("clock.jump", "amy", "sale")
    assert event.detail["behind_ms"] >= 3_600_000
    assert [r.seq for r in enrolled.records()] == [1]


def test_a_sync_answer_showing_the_clock_moved_records_a_clock_jump(enrolled: PosClient) -> None:
    with enrolled.store.write() as conn:
        assert ev.note_clock_offset(conn, enrolled.store, enrolled.clock, old_offset_ms=0, new_offset_ms=59_000) is None
        jump = ev.note_clock_offset(conn, enrolled.store, enrolled.clock, old_offset_ms=0, new_offset_ms=-120_000)
    assert jump is not None and jump.detail == {"source": "sync", "change_ms": -120_000}


def test_connection_lost_once_then_back(enrolled: PosClient, server: FakeServer) -> None:
    for _ in range(2):
        server.fail_next(*["drop_before"] * FAST_RETRY.attempts)
        with pytest.raises(NetworkError):
            enrolled.sync()
    assert [e.type for e in enrolled.events()] == ["connection.lost"]  # once, not per failed try
    enrolled.sync()
    assert [e.type for e in enrolled.events()] == ["connection.lost", "connection.back"]
    enrolled.sync()
    assert len(enrolled.events()) == 2


def test_a_failed_sync_records_sync_failed(enrolled: PosClient, server: FakeServer) -> None:
    server.fail_next(*["503"] * FAST_RETRY.attempts)
    with pytest.raises(ServerError):
        enrolled.sync()
    (event,) = enrolled.events()
    assert (event.type, event.detail["code"]) == ("sync.failed", "server_unavailable")


def test_a_server_without_events_keeps_them_pending_and_sales_sync(enrolled: PosClient, server: FakeServer) -> None:
    """The fake server speaks 1.0: it verifies the batch (the events are in the signed header) and
    ignores them; the device's sales are acknowledged and its events wait for a 1.1 server."""
    enrolled.record_event("app.start")
    enrolled.sell("R1", 2)
    result = enrolled.sync()
    assert (result.acked_seq, result.pending, result.events_sent, result.events_pending) == (1, 0, 0, 1)
    assert result.batches == 1
    assert not enrolled.events()[0].synced
