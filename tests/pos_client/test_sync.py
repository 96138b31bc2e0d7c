"""Delta sync against the fake server: batches, retries without duplicates, rejections, grants,
revocations, and answers that contradict the device's chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_client import (
    ManualClock,
    NetworkError,
    PosClient,
    SaleRefused,
    ServerError,
    ServerRefused,
    SyncConflict,
)
from sync_protocol.messages import SaleRecord
from tests.pos_client.conftest import FAST_RETRY, reopen
from tests.pos_client.fake_server import HOUR_MS, FakeServer


def _sell(pos: PosClient, n: int) -> list[str]:
    return [pos.sell("R1", 1).sale_id for _ in range(n)]


def _server_log(server: FakeServer, pos: PosClient) -> list[tuple[int, str, str]]:
    return [(r.seq, r.sale_id, r.status) for r in server.records(pos.device_id or "")]


def _local(pos: PosClient) -> list[tuple[int, str]]:
    return [(r.seq, r.sale_id) for r in pos.records()]


def _assert_server_has_exactly(server: FakeServer, pos: PosClient) -> None:
    assert [(seq, sale_id) for seq, sale_id, _ in _server_log(server, pos)] == _local(pos)


def test_sync_uploads_everything_in_batches(enrolled: PosClient, server: FakeServer) -> None:
    enrolled.batch_size = 3
    _sell(enrolled, 7)

    result = enrolled.sync()

    assert (result.batches, result.sent, result.acked_seq, result.pending) == (3, 7, 7, 0)
    assert [(b.first_seq, b.last_seq) for b in server.batches] == [(1, 3), (4, 6), (7, 7)]
    _assert_server_has_exactly(server, enrolled)
    status = enrolled.status()
    assert (status.pending, status.acked_seq, status.last_sync_ms) == (0, 7, enrolled.clock.wall_ms())


def test_sync_sends_only_what_the_server_has_not_acknowledged(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 3)
    enrolled.sync()
    _sell(enrolled, 2)

    result = enrolled.sync()

    assert (result.sent, result.acked_seq) == (2, 5)
    last = server.batches[-1]
    assert (last.first_seq, last.last_seq, last.prev_hash) == (4, 5, server.records(enrolled.device_id or "")[2].hash)
    _assert_server_has_exactly(server, enrolled)


def test_empty_sync_asks_for_grants_and_time(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> None:
    grant = server.issue_grant(enrolled.device_id or "", "R1", 50)
    clock.advance(HOUR_MS)

    result = enrolled.sync()

    batch = server.batches[-1]
    assert (batch.first_seq, batch.last_seq, batch.records, batch.head_hash) == (1, 0, [], batch.prev_hash)
    assert (result.batches, result.sent, result.new_grants) == (1, 0, [grant.grant_id])
    assert result.server_time_ms == clock.wall_ms()
    assert enrolled.status().raffles[0].numbers_granted == 150


def test_a_sync_renews_the_anchor(enrolled: PosClient, clock: ManualClock) -> None:
    clock.advance(HOUR_MS)
    enrolled.sync()
    anchor = clock.wall_ms()
    clock.advance(5000)
    enrolled.sell("R1", 1)
    record = list(enrolled.records())[-1]
    assert (record.anchor_ms, record.elapsed_ms) == (anchor, 5000)
    assert enrolled.status().lease_left_s == 8 * 3600 - 5


def test_max_batches_stops_early(enrolled: PosClient) -> None:
    enrolled.batch_size = 2
    _sell(enrolled, 5)
    result = enrolled.sync(max_batches=1)
    assert (result.batches, result.sent, result.pending) == (1, 2, 3)
    assert enrolled.status().pending == 3


@pytest.mark.parametrize(
    "faults",
    [("503",), ("503", "503", "503"), ("drop_before",), ("drop_after",), ("timeout_after",), ("drop_after", "503")],
    ids=lambda f: "+".join(f),
)
def test_transient_failures_are_retried_without_duplicates(
    enrolled: PosClient, server: FakeServer, faults: tuple[str, ...]
) -> None:
    enrolled.batch_size = 2
    _sell(enrolled, 3)
    server.fail_next(*faults)

    result = enrolled.sync()

    assert (result.acked_seq, result.sent, result.pending) == (3, 3, 0)
    _assert_server_has_exactly(server, enrolled)
    assert server.requests == 2 + len(faults) + 1  # the enrollment, the faults, two batches


def test_committed_then_dropped_reports_the_duplicates(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 2)
    server.fail_next("drop_after")
    enrolled.sync()
    assert len(server.batches) == 2
    assert [b.first_seq for b in server.batches] == [1, 1]
    _assert_server_has_exactly(server, enrolled)


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [("503", ServerError, "server_unavailable"), ("drop_before", NetworkError, "network_error")],
)
def test_retries_are_bounded_then_the_next_sync_succeeds(
    enrolled: PosClient, server: FakeServer, fault: str, error: type[Exception], code: str
) -> None:
    _sell(enrolled, 2)
    server.fail_next(*[fault] * FAST_RETRY.attempts)
    with pytest.raises(error) as info:
        enrolled.sync()
    assert getattr(info.value, "code", None) == code
    assert server.requests == 1 + FAST_RETRY.attempts
    assert enrolled.status().pending == 2

    assert enrolled.sync().acked_seq == 2
    _assert_server_has_exactly(server, enrolled)


def test_crash_after_the_server_committed_resumes_without_duplicates(
    enrolled: PosClient, server: FakeServer, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    _sell(enrolled, 3)
    server.fail_next(*["drop_after"] * FAST_RETRY.attempts)
    with pytest.raises(NetworkError):
        enrolled.sync()
    assert len(server.records(enrolled.device_id or "")) == 3  # the server has them, the device does not know
    assert enrolled.status().pending == 3

    restarted = reopen(enrolled, db_path, clock, http)
    try:
        result = restarted.sync()
        assert (result.sent, result.acked_seq) == (3, 3)
        assert server.batches[-1].first_seq == 1  # re-sent, recognised as duplicates
        _assert_server_has_exactly(server, restarted)
    finally:
        restarted.close()


def test_rejected_record_is_marked_acknowledged_and_the_server_advances(
    enrolled: PosClient, server: FakeServer
) -> None:
    sale_ids = _sell(enrolled, 5)
    server.reject(3, "sale_after_close")

    result = enrolled.sync()

    assert [(r.seq, r.sale_id, r.code) for r in result.rejections] == [(3, sale_ids[2], "sale_after_close")]
    assert (result.acked_seq, result.pending) == (5, 0)
    first, second = server.batches
    assert first.rejected == []
    assert [(r.seq, r.code) for r in second.rejected] == [(3, "sale_after_close")]
    assert [status for _, _, status in _server_log(server, enrolled)] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
    ]
    status = enrolled.status()
    assert [(r.seq, r.sale_id, r.code, r.amount_cents, r.numbers) for r in status.rejected] == [
        (3, sale_ids[2], "sale_after_close", 500, [3])
    ]
    assert status.rejected[0].detail == "record 3 refused (sale_after_close)"
    assert any(a.startswith("rejected_records:") for a in status.alerts)


def test_several_rejections_in_one_batch(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 4)
    server.reject(2, "outside_grant")
    server.reject(4, "amount_mismatch")
    result = enrolled.sync()
    assert [(r.seq, r.code) for r in result.rejections] == [(2, "outside_grant"), (4, "amount_mismatch")]
    assert [(r.seq, r.code) for r in server.batches[-1].rejected] == [(2, "outside_grant"), (4, "amount_mismatch")]
    assert [s for _, _, s in _server_log(server, enrolled)] == ["accepted", "rejected", "accepted", "rejected"]


def test_a_rejection_survives_a_crash_before_the_resend(
    enrolled: PosClient, server: FakeServer, db_path: Path, clock: ManualClock, http: TestClient
) -> None:
    _sell(enrolled, 3)
    server.reject(2, "ticket_sold_twice")
    # The rejection answer arrives, then the network dies for every retry of the re-send.
    original = server._sync
    calls = {"n": 0}

    def flaky(body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            server.fail_next(*["drop_before"] * FAST_RETRY.attempts)
        return original(body)

    server._sync = flaky  # type: ignore[method-assign]
    with pytest.raises(NetworkError):
        enrolled.sync()
    assert [r.seq for r in enrolled.status().rejected] == [2]

    restarted = reopen(enrolled, db_path, clock, http)
    try:
        result = restarted.sync()
        assert [(r.seq, r.code) for r in server.batches[-1].rejected] == [(2, "ticket_sold_twice")]
        assert result.rejections == []  # known already; the server now takes the acknowledgement
        assert [s for _, _, s in _server_log(server, restarted)] == ["accepted", "rejected", "accepted"]
    finally:
        restarted.close()


def test_real_rule_rejection_from_the_server(enrolled: PosClient, server: FakeServer, clock: ManualClock) -> None:
    # The raffle closed on the server before the device heard of it: the sale is after close.
    enrolled.sell("R1", 1)
    server.update_raffle("R1", sales_close_at_ms=clock.wall_ms() - 1)
    result = enrolled.sync()
    assert [(r.seq, r.code) for r in result.rejections] == [(1, "sale_after_close")]
    with pytest.raises(SaleRefused) as info:
        enrolled.sell("R1", 1)
    assert info.value.code == "raffle_closed"


def test_hard_4xx_is_not_retried(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 1)
    del server.devices[enrolled.device_id or ""]
    with pytest.raises(ServerRefused) as info:
        enrolled.sync()
    assert (info.value.code, info.value.http_status) == ("unknown_device", 401)
    assert server.requests == 2
    assert enrolled.status().pending == 1


def test_revoked_device_stops_selling_but_keeps_its_records(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 2)
    server.revoke_device(enrolled.device_id or "")
    with pytest.raises(ServerRefused) as info:
        enrolled.sync()
    assert info.value.code == "device_revoked"
    status = enrolled.status()
    assert (status.device_status, status.pending) == ("revoked", 2)
    assert any(a.startswith("revoked:") for a in status.alerts)
    with pytest.raises(SaleRefused) as refused:
        enrolled.sell("R1", 1)
    assert refused.value.code == "revoked"


def test_revoked_status_in_an_ack_stops_selling(enrolled: PosClient, server: FakeServer) -> None:
    original = server._sync

    def revoking(body: dict[str, Any]) -> dict[str, Any]:
        return {**original(body), "device_status": "revoked"}

    server._sync = revoking  # type: ignore[method-assign]
    assert enrolled.sync().device_status == "revoked"
    with pytest.raises(SaleRefused) as info:
        enrolled.sell("R1", 1)
    assert info.value.code == "revoked"


def test_grant_with_a_bad_signature_is_refused_and_not_stored(enrolled: PosClient, server: FakeServer) -> None:
    device_id = enrolled.device_id or ""
    bad = server.issue_grant(device_id, "R1", 50, tamper=True)
    good = server.issue_grant(device_id, "R1", 10)

    result = enrolled.sync()

    assert result.new_grants == [good.grant_id]
    assert [g.grant_id for g in result.refused_grants] == [bad.grant_id]
    assert result.refused_grants[0].reason.startswith("grant_invalid")
    assert enrolled.status().raffles[0].numbers_granted == 110
    enrolled.sell("R1", 100)
    # 101..150 (the bad grant) are never sold: the next numbers come from the good grant.
    assert enrolled.sell("R1", 1).numbers == [good.first_number]


def test_grants_re_sent_by_the_server_are_not_reset(enrolled: PosClient, server: FakeServer) -> None:
    enrolled.sell("R1", 5)
    enrolled.sync()
    enrolled.sync()  # the ack carries the same grant again
    assert enrolled.sell("R1", 1).numbers == [6]
    assert enrolled.sync().new_grants == []


def test_ack_that_contradicts_the_chain_is_a_conflict(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 2)
    original = server._sync

    def lying(body: dict[str, Any]) -> dict[str, Any]:
        return {**original(body), "head_hash": "f" * 64}

    server._sync = lying  # type: ignore[method-assign]
    with pytest.raises(SyncConflict) as info:
        enrolled.sync()
    assert info.value.code == "sync_conflict"
    assert enrolled.status().acked_seq == 0


def test_ack_beyond_the_chain_is_a_conflict(enrolled: PosClient, server: FakeServer) -> None:
    original = server._sync

    def lying(body: dict[str, Any]) -> dict[str, Any]:
        return {**original(body), "acked_seq": 9}

    server._sync = lying  # type: ignore[method-assign]
    with pytest.raises(SyncConflict):
        enrolled.sync()


def test_server_that_lost_records_gets_them_again(enrolled: PosClient, server: FakeServer) -> None:
    _sell(enrolled, 4)
    enrolled.sync()
    device = server.devices[enrolled.device_id or ""]
    device.log = device.log[:2]  # restored from an old backup: records 3 and 4 are gone
    for number in (3, 4):
        del server.taken[("R1", number)]
    _sell(enrolled, 1)

    with pytest.raises(ServerRefused) as info:
        enrolled.sync()
    assert info.value.code == "sequence_gap"
    result = enrolled.sync()
    assert result.acked_seq == 5
    _assert_server_has_exactly(server, enrolled)


def test_sync_before_enrollment_is_refused(pos: PosClient) -> None:
    with pytest.raises(Exception) as info:
        pos.sync()
    assert getattr(info.value, "code", None) == "not_enrolled"


def test_records_on_the_wire_are_the_records_on_the_device(enrolled: PosClient, server: FakeServer) -> None:
    enrolled.sell("R1", 3, payment="card", reference="R-1")
    enrolled.sync()
    sent = server.batches[-1].records[0]
    local = next(iter(enrolled.records()))
    assert isinstance(sent, SaleRecord)
    assert sent.to_dict() == local.to_dict()
