"""What a SyncAck carries besides the records: the device's active grants of open raffles and
the ids of its voided grants (read once per ack), and the venue's raffles.

Each test runs on SQLite and on PostgreSQL (``db_backend``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.context import Tombola
from tests.simulators.device import RawDevice
from tests.support.app import Seed


def test_ack_lists_active_grants_and_revoked_ones(
    client: TestClient, tombola: Tombola, seeded: Seed, device: RawDevice
) -> None:
    (first,) = device.grants
    device.sale(seeded.raffle_id, 1)
    ack = device.sync(client, 1)
    assert [g.grant_id for g in ack.grants] == [first.grant_id] and ack.revoked_grants == []
    assert [r.raffle_id for r in ack.raffles] == [seeded.raffle_id]
    extra = tombola.core.issue_grant(seeded.raffle_id, device.device_id, numbers=50, kind="extension")
    tombola.core.void_grants([first.grant_id], "till stolen")
    ack = device.sync(client, 2)  # a poll
    assert [g.grant_id for g in ack.grants] == [extra.grant_id]
    assert ack.revoked_grants == [first.grant_id]
    assert (ack.acked_seq, ack.applied, ack.duplicates) == (1, 0, 0)
