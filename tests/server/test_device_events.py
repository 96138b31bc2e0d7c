"""Device events (GLI-31 significant events) on the server: verified, stored once, listed.

Both backends: a batch's events are stored with it (and only with it), a re-sent event is
harmless, a tampered or missing one refuses the batch with a code and writes nothing, a 1.0
batch without events is accepted as before, and the listing filters by time and type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_client import PosClient
from pos_client.errors import ServerRefused
from server.context import Tombola
from server.events import service as device_events
from sync_protocol.messages import GENESIS_HASH, EventRecord, SyncBatch
from tests.simulators.device import RawDevice
from tests.support.app import ADMIN_TOKEN, Seed

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_events(dev: RawDevice, types: list[str], *, start: int = 1, prev: str = GENESIS_HASH) -> list[EventRecord]:
    """A run of sealed events of ``dev``'s event chain from ``start``."""
    out = []
    for i, type_ in enumerate(types):
        event = EventRecord(
            event_id=f"ev-{start + i}",
            device_id=dev.device_id,
            seq=start + i,
            type=type_,  # type: ignore[arg-type]
            detail={"n": start + i},
            device_time_ms=dev.anchor_ms,
            anchor_ms=dev.anchor_ms,
            elapsed_ms=1000 * (start + i),
            prev_hash=prev,
        ).sealed()
        prev = event.hash
        out.append(event)
    return out


def with_events(dev: RawDevice, batch: SyncBatch, events: list[EventRecord], *, resign: bool = True) -> dict[str, Any]:
    """``batch`` carrying ``events`` (protocol 1.1), signed by the device unless told otherwise."""
    carried = batch.model_copy(update={"events": events, "protocol_version": "1.1"})
    return (carried.signed_by(dev.signer) if resign else carried).to_dict()


def stored(tombola: Tombola, device_id: str) -> list[tuple[int, str]]:
    return [(e["seq"], e["type"]) for e in device_events.list_events(tombola, device_id)]


def test_events_are_stored_with_the_batch_and_a_resend_is_harmless(
    client: TestClient, tombola: Tombola, device: RawDevice, seeded: Seed
) -> None:
    device.sale(seeded.raffle_id, 1)
    events = make_events(device, ["app.start", "seller.sign_in", "printer.error"])
    body = with_events(device, device.batch(1), events)

    first = client.post("/v1/sync", json=body)
    assert first.status_code == 200, first.text
    ack = first.json()
    assert (ack["protocol_version"], ack["events_acked_seq"], ack["events_head_hash"]) == ("1.1", 3, events[-1].hash)
    assert stored(tombola, device.device_id) == [(1, "app.start"), (2, "seller.sign_in"), (3, "printer.error")]

    again = client.post("/v1/sync", json=body)  # the ack was lost: the same batch again
    assert again.status_code == 200, again.text
    assert (again.json()["events_acked_seq"], again.json()["duplicates"]) == (3, 1)
    assert len(stored(tombola, device.device_id)) == 3

    # an overlap: events 2..4, of which 4 is new
    more = make_events(device, ["connection.lost"], start=4, prev=events[-1].hash)
    overlap = client.post("/v1/sync", json=with_events(device, device.batch(2), [*events[1:], *more]))
    assert overlap.status_code == 200, overlap.text
    assert overlap.json()["events_acked_seq"] == 4
    assert [seq for seq, _ in stored(tombola, device.device_id)] == [1, 2, 3, 4]


def test_a_batch_without_events_is_a_1_0_batch_answered_as_before(
    client: TestClient, tombola: Tombola, device: RawDevice, seeded: Seed
) -> None:
    device.sale(seeded.raffle_id, 1)
    resp = client.post("/v1/sync", json=device.batch(1).to_dict())
    assert resp.status_code == 200, resp.text
    ack = resp.json()
    assert ack["protocol_version"] == "1.0"
    assert "events_acked_seq" not in ack and "events_head_hash" not in ack
    assert stored(tombola, device.device_id) == []


def test_a_tampered_event_is_refused_and_nothing_of_the_batch_is_written(
    client: TestClient, tombola: Tombola, device: RawDevice, seeded: Seed
) -> None:
    device.sale(seeded.raffle_id, 1)
    events = make_events(device, ["app.start", "seller.pin_failed"])

    # changed after signing: the batch signature covers every event
    changed = with_events(device, device.batch(1), events)
    changed["events"][1]["detail"] = {"n": 99}
    resp = client.post("/v1/sync", json=changed)
    assert (resp.status_code, resp.json()["error"]) == (401, "bad_signature")

    # changed and signed again, hash left: the event's hash no longer matches its content
    forged = events[1].model_copy(update={"detail": {"n": 99}})
    resp = client.post("/v1/sync", json=with_events(device, device.batch(1), [events[0], forged]))
    assert (resp.status_code, resp.json()["error"], resp.json()["event_seq"]) == (409, "event_chain_broken", 2)

    # re-sealed: the link from the event after it breaks
    resealed = events[0].model_copy(update={"type": "app.stop"}).sealed()
    resp = client.post("/v1/sync", json=with_events(device, device.batch(1), [resealed, events[1]]))
    assert (resp.status_code, resp.json()["error"], resp.json()["event_seq"]) == (409, "event_chain_broken", 2)

    assert stored(tombola, device.device_id) == []
    assert list(tombola.core.tickets(seeded.raffle_id)) == []  # the sale of the refused batch is not recorded either

    # the true events go through; a different event 1 later is refused as not the one held
    assert client.post("/v1/sync", json=with_events(device, device.batch(1), events)).status_code == 200
    resp = client.post("/v1/sync", json=with_events(device, device.batch(2, 1), [resealed]))
    assert (resp.status_code, resp.json()["error"], resp.json()["event_seq"]) == (409, "event_chain_broken", 1)
    assert stored(tombola, device.device_id) == [(1, "app.start"), (2, "seller.pin_failed")]


def test_a_gap_in_the_events_names_the_missing_one(client: TestClient, tombola: Tombola, device: RawDevice) -> None:
    events = make_events(device, ["app.start", "app.stop", "app.start"])
    resp = client.post("/v1/sync", json=with_events(device, device.batch(1, 0), events[1:]))
    body = resp.json()
    assert (resp.status_code, body["error"], body["missing_event_seq"]) == (409, "event_sequence_gap", 1)
    resp = client.post("/v1/sync", json=with_events(device, device.batch(1, 0), [events[0], events[2]]))
    assert (resp.status_code, resp.json()["error"], resp.json()["missing_event_seq"]) == (409, "event_sequence_gap", 2)
    assert stored(tombola, device.device_id) == []


def test_an_event_of_another_device_is_refused(client: TestClient, device: RawDevice) -> None:
    other = RawDevice(device_id="someone-else", anchor_ms=device.anchor_ms)
    resp = client.post("/v1/sync", json=with_events(device, device.batch(1, 0), make_events(other, ["app.start"])))
    assert (resp.status_code, resp.json()["error"]) == (403, "device_mismatch")


def test_malformed_events_are_malformed(client: TestClient, device: RawDevice) -> None:
    event = make_events(device, ["app.start"])[0].to_dict()
    for bad in (
        {"type": "app.exploded"},
        {"detail": {f"k{i}": i for i in range(9)}},
        {"detail": {"Bad-Key": 1}},
        {"detail": {"text": "x" * 201}},
        {"detail": {"nested": {"a": 1}}},
        {"seller_id": "s" * 65},
    ):
        body = device.batch(1, 0).model_dump(mode="json", exclude_none=True) | {"events": [event | bad]}
        resp = client.post("/v1/sync", json=body)
        assert (resp.status_code, resp.json()["error"]) == (422, "malformed"), bad


def test_the_listing_filters_by_time_and_type_on_the_cli_and_the_api(
    client: TestClient, tombola: Tombola, device: RawDevice
) -> None:
    events = make_events(device, ["app.start", "seller.pin_failed", "seller.pin_failed", "app.stop"])
    assert client.post("/v1/sync", json=with_events(device, device.batch(1, 0), events)).status_code == 200
    base = f"/v1/admin/devices/{device.device_id}/events"

    everything = client.get(base, headers=ADMIN).json()
    assert [e["type"] for e in everything] == ["app.start", "seller.pin_failed", "seller.pin_failed", "app.stop"]
    assert everything[0]["detail"] == {"n": 1}
    assert everything[0]["occurred_at_ms"] == device.anchor_ms + 1000

    failed = client.get(base, params={"type": "seller.pin_failed"}, headers=ADMIN).json()
    assert [e["seq"] for e in failed] == [2, 3]
    from datetime import UTC, datetime

    since = datetime.fromtimestamp((device.anchor_ms + 3000) / 1000, tz=UTC).isoformat()
    assert [e["seq"] for e in client.get(base, params={"since": since}, headers=ADMIN).json()] == [3, 4]
    assert [e["seq"] for e in client.get(base, params={"limit": 1}, headers=ADMIN).json()] == [1]

    assert client.get(base).status_code == 401
    bad_type = client.get(base, params={"type": "app.exploded"}, headers=ADMIN)
    assert (bad_type.status_code, bad_type.json()["error"]) == (422, "invalid_request")
    bad_time = client.get(base, params={"since": "yesterday"}, headers=ADMIN)
    assert (bad_time.status_code, bad_time.json()["error"]) == (422, "invalid_request")
    unknown = client.get("/v1/admin/devices/no-such-device/events", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_the_sdk_records_and_syncs_its_events_end_to_end(
    client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    with PosClient(tmp_path / "pos.db", http=client) as pos:
        assert pos.record_event("app.start") is None  # before enrollment: nothing to chain to
        pos.enroll(seeded.code, str(client.base_url))
        pos.record_event("app.start", {"version": "1.0"})
        pos.record_event("seller.pin_failed", {"attempt": 1}, seller_id="s-1")
        sale = pos.sell(seeded.raffle_id, 1)
        pos.void(sale.sale_id, "wrong raffle")
        result = pos.sync()
        assert (result.events_sent, result.events_pending) == (3, 0)
        assert all(e.synced for e in pos.events())
        device_id = pos.device_id or ""

        # the ack was lost: the device sends its events again; nothing is stored twice
        with pos.store.write() as conn:
            conn.execute("UPDATE event_ack SET acked_seq = 0, acked_hash = ?", (GENESIS_HASH,))
        pos.record_event("app.stop")
        assert pos.sync().events_pending == 0
    assert stored(tombola, device_id) == [
        (1, "app.start"),
        (2, "seller.pin_failed"),
        (3, "sale.voided"),
        (4, "app.stop"),
    ]
    voided = device_events.list_events(tombola, device_id, type="sale.voided")[0]
    assert voided["detail"]["sale_id"] == sale.sale_id
    assert voided["detail"]["reason"] == "wrong raffle"
    assert device_events.list_events(tombola, device_id, type="seller.pin_failed")[0]["seller_id"] == "s-1"


def test_a_server_that_lost_events_gets_them_again_and_the_device_syncs_on(
    client: TestClient, tombola: Tombola, seeded: Seed, tmp_path: Path
) -> None:
    """The server restored from a backup holds fewer events than it acknowledged: it refuses the
    next batch with ``event_sequence_gap``. Seen: the device kept its acknowledgement, so every
    later batch, its sales too, was refused the same way and the device could never sync again."""
    from sqlalchemy import text

    with PosClient(tmp_path / "pos.db", http=client) as pos:
        pos.enroll(seeded.code, str(client.base_url))
        for n in range(3):
            pos.record_event("app.start", {"n": n})
        assert pos.sync().events_pending == 0
        device_id = pos.device_id or ""
        with tombola.engine.begin() as conn:  # the backup held only the first event
            conn.execute(text("DELETE FROM device_event WHERE device_id = :d AND seq > 1"), {"d": device_id})
        pos.record_event("app.stop")
        sale = pos.sell(seeded.raffle_id, 1)
        with pytest.raises(ServerRefused) as refused:
            pos.sync()
        assert refused.value.code == "event_sequence_gap"
        result = pos.sync()
        assert (result.pending, result.events_pending) == (0, 0)
    assert stored(tombola, device_id) == [
        (1, "app.start"),
        (2, "app.start"),
        (3, "app.start"),
        (4, "app.stop"),
        (5, "sync.failed"),  # the refusal itself, recorded by the device and now on the server
    ]
    assert sale.numbers[0] in [t.number for t in tombola.core.tickets(seeded.raffle_id)]
